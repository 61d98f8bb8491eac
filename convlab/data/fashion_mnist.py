"""Fashion-MNIST for the chapter's LeNet, read offline from the four official IDX files and verified.

:class:`FashionMNIST` mirrors the d2l class of that name: minibatches of the
active backend's tensors, NCHW float32 images in ``[0, 1]`` and integer
labels, in an order drawn by NumPy from a seed, so that every backend sees
the same batches. The files are looked for on disk (``root=``,
``$CONVLAB_DATA``, Debian's ``dataset-fashion-mnist`` package, a user cache);
``download=True`` fetches missing ones into the cache.

Every file is checked before its data is used: the IDX magic number, the
counts and shapes its header announces against the official ones, its
length, a pinned SHA-256 of the decompressed bytes (the package recompresses
the ``.gz`` files, so their own hashes differ from the publisher's), the
label range and that labels and images belong together. Each split is
decoded and verified once per process; later instances share the arrays.
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convlab.backends.base import Backend, Tensor
from convlab.core.checks import check_kernel_size, check_positive
from convlab.core.convert import to_numpy
from convlab.core.memory import check_size
from convlab.core.registry import get_backend
from convlab.data.fetch import OFFICIAL_MIRRORS, fetch, files_in, unwritable
from convlab.data.idx import OFFICIAL_FILES, IdxFile, read_bytes, verified
from convlab.errors import DataNotFoundError

__all__ = ["TEXT_LABELS", "Batches", "FashionMNIST", "IdxFile"]

TEXT_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
"""The ten classes' names, as d2l prints them, by label."""

_PRESIZED_LIMIT_BYTES = 1 << 30
"""Resized splits up to this size are resized once and kept; larger ones (224x224 for AlexNet) per batch."""

_KEPT_SIZES = 2
"""How many resized copies of one split a process keeps."""


# -- reading and verifying one file ------------------------------------------------

# -- one split, decoded once per process -------------------------------------------


def _bilinear_weights(size_in: int, size_out: int) -> np.ndarray:
    """``(size_out, size_in)`` rows of a bilinear resize along one axis, as PIL (so d2l's ``Resize``) computes it.

    Each output pixel averages the input pixels under a triangle centred on
    it, with pixel centres at half-integers. When shrinking, the triangle
    widens by the reduction factor, so every input pixel contributes
    (antialiasing); when enlarging it is plain linear interpolation.
    """
    scale = size_in / size_out
    support = max(scale, 1.0)
    centres = (np.arange(size_out) + 0.5) * scale
    distance = (np.arange(size_in) + 0.5)[None, :] - centres[:, None]
    weights = np.clip(1.0 - np.abs(distance) / support, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def _resizer(shape_in: tuple[int, int], shape_out: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    """A function resizing NCHW float32 images in ``[0, 1]`` from ``shape_in`` to ``shape_out``."""
    rows = _bilinear_weights(shape_in[0], shape_out[0]).astype(np.float32)
    columns = _bilinear_weights(shape_in[1], shape_out[1]).T.astype(np.float32)

    def resize(images: np.ndarray) -> np.ndarray:
        # Separable, as two fixed-size products per image: an image resizes to the same bits in any batch.
        out = rows @ images @ columns
        return np.clip(out, 0.0, 1.0, out=out)  # rounding may step a hair outside [0, 1]

    return resize


@dataclass
class _Split:
    """One split's images (NCHW float32 in [0, 1]) and labels (int64), both read-only."""

    images: np.ndarray
    labels: np.ndarray
    _resized: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def images_at(self, size: tuple[int, int] | None) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray] | None]:
        """The images to batch at ``size``, and the resize still to apply to each batch (``None``: none)."""
        native = self.images.shape[2:]
        if size is None or size == native:
            return self.images, None
        resize = _resizer(native, size)
        if len(self.images) * size[0] * size[1] * 4 > _PRESIZED_LIMIT_BYTES:
            return self.images, resize
        with _lock:
            if size not in self._resized:
                while len(self._resized) >= _KEPT_SIZES:
                    del self._resized[next(iter(self._resized))]
                resized = np.concatenate([resize(chunk) for chunk in np.array_split(self.images, 16)])
                resized.flags.writeable = False
                self._resized[size] = resized
            return self._resized[size], None


_lock = threading.RLock()
_decoded: dict[tuple[Any, ...], tuple[tuple[Any, ...], _Split]] = {}
"""(paths, specs) -> (the files' size, mtime and inode when read, the split): decode and hash once per process."""


def _signature(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns, status.st_ino


def _load_split(images_path: Path, labels_path: Path, images_spec: IdxFile, labels_spec: IdxFile) -> _Split:
    key = (images_path.resolve(), labels_path.resolve(), images_spec, labels_spec)
    signature = (_signature(images_path), _signature(labels_path))
    with _lock:
        cached = _decoded.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        pixels = verified(read_bytes(images_path), images_spec, str(images_path))
        labels = verified(read_bytes(labels_path), labels_spec, str(labels_path), images_count=len(pixels))
        # Divided in float32, as torchvision's ToTensor does, so each value is the float32 nearest k/255.
        images = np.divide(pixels[:, None], np.float32(255), dtype=np.float32)
        split = _Split(images, labels.astype(np.int64))
        split.images.flags.writeable = False
        split.labels.flags.writeable = False
        _decoded[key] = (signature, split)
        return split


# -- the batches -----------------------------------------------------------------


class Batches:
    """The minibatches of one split: each iteration is one pass (an epoch) over it.

    :meth:`FashionMNIST.train_dataloader` and
    :meth:`FashionMNIST.val_dataloader` return one. Each batch is ``(X, y)``:
    ``X`` the images as an NCHW float32 tensor of the backend active when the
    iteration began, ``y`` their labels by ``get_backend().labels``. Every
    batch is a fresh copy, so changing it in place harms nothing. The last
    batch holds what is left (as d2l's loaders).

    Examples
    --------
    >>> import convlab as cl
    >>> val = cl.data.FashionMNIST(batch_size=1000).val_dataloader()
    >>> len(val)
    10
    >>> [X.shape for X, y in val][-1]
    (1000, 1, 28, 28)
    """

    def __init__(
        self,
        split: _Split,
        batch_size: int,
        resize: tuple[int, int] | None,
        order: Callable[[], np.ndarray] | None,
    ) -> None:
        self._split = split
        self._batch_size = batch_size
        self._resize = resize
        self._order = order

    def __len__(self) -> int:
        """The number of batches in one pass."""
        return -(-len(self._split.labels) // self._batch_size)

    def __repr__(self) -> str:
        kind = "shuffled" if self._order is not None else "in file order"
        return f"<Batches: {len(self)} of up to {self._batch_size} from {len(self._split.labels)} examples, {kind}>"

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        # The backend and the order are fixed when the pass starts, not at its first batch.
        backend = get_backend()
        order = None if self._order is None else self._order()
        images, resize = self._split.images_at(self._resize)
        return self._batches(backend, images, resize, order)

    def _batches(
        self,
        backend: Backend,
        images: np.ndarray,
        resize: Callable[[np.ndarray], np.ndarray] | None,
        order: np.ndarray | None,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        labels = self._split.labels
        for start in range(0, len(labels), self._batch_size):
            stop = start + self._batch_size
            if order is None:
                X, y = images[start:stop].copy(), labels[start:stop].copy()
            else:
                chosen = order[start:stop]
                X, y = np.take(images, chosen, axis=0), np.take(labels, chosen)
            if resize is not None:
                X = resize(X)
            yield backend.tensor(X), backend.labels(y)


class FashionMNIST:
    """Fashion-MNIST in minibatches of the active backend's tensors, as d2l's ``FashionMNIST``.

    The 70,000 28x28 grey images of clothes in ten classes (60,000 to train,
    10,000 to validate), read from the four official IDX files, gzipped or
    not. A ``root`` you name is the only place looked in (``download=True``
    then fetches into it), so a mistyped directory is an error, not a quiet
    fallback. Without one, convlab looks in this order, and uses the first
    directory that holds all four:

    1. ``$CONVLAB_DATA/fashion-mnist``, if that variable is set;
    2. ``/usr/share/datasets/fashion-mnist``, where Debian's package
       ``dataset-fashion-mnist`` installs them;
    3. the user cache, ``$XDG_CACHE_HOME/convlab/fashion-mnist`` (by default
       ``~/.cache/convlab/fashion-mnist``), which ``download=True`` fills.

    Each file is verified before use (magic number, counts, 28x28 shapes,
    length, a pinned SHA-256 of the decompressed bytes, labels 0 to 9 and as
    many as images); a split is decoded and verified once per process, so
    further instances are quick.

    Parameters
    ----------
    batch_size : int, default 128
        Examples per batch; the last batch of a pass holds the rest.
    resize : int or (int, int), optional
        Resize every image to ``(height, width)`` (an int ``n``: ``(n, n)``)
        by bilinear interpolation, antialiased when shrinking, as d2l's
        ``transforms.Resize``. It is done once, in NumPy, and kept for the
        process; a size whose copy of the training set would pass 1 GiB
        (over about 66x66) is resized batch by batch instead.
    root : str or os.PathLike, optional
        The directory holding the four files, and then the only one looked in.
    seed : int, default 0
        Seeds the NumPy generator that shuffles the training set: pass ``k``
        over the training data (through any of this object's training
        loaders) uses the ``k``-th permutation drawn from
        ``numpy.random.default_rng(seed)``, on every backend alike.
    download : bool, default False
        If no directory holds all four files, fetch the ones missing from
        :attr:`mirrors` into ``root``, or without one into the user cache. Each is written to a temporary file,
        verified, then renamed into place, so an interrupted or damaged
        download leaves nothing behind.

    Attributes
    ----------
    num_train, num_val : int
        The size of each split.
    directory : pathlib.Path
        Where the files were found.

    Raises
    ------
    DataNotFoundError
        No directory holds the four files (and ``download`` is false, or
        the download failed): the message lists every place looked in and
        how to get the data.
    DataCorruptError
        A file is damaged (truncated, a broken gzip stream, a bad magic
        number, wrong counts or shapes, a wrong hash, labels that do not
        match the images); the message names the file and the problem.

    Examples
    --------
    >>> import convlab as cl
    >>> data = cl.data.FashionMNIST(batch_size=256)
    >>> data.num_train, data.num_val, len(data.train_dataloader())
    (60000, 10000, 235)
    >>> X, y = next(iter(data.val_dataloader()))
    >>> X.shape, X.dtype, float(X.min()), float(X.max())
    ((256, 1, 28, 28), dtype('float32'), 0.0, 1.0)
    >>> data.text_labels(y[:5])
    ['ankle boot', 'pullover', 'trouser', 'trouser', 'shirt']
    >>> X, y = next(iter(cl.data.FashionMNIST(resize=32).train_dataloader()))
    >>> X.shape, y.shape
    ((128, 1, 32, 32), (128,))
    """

    files: dict[str, tuple[IdxFile, IdxFile]] = OFFICIAL_FILES
    """The ``"train"`` and ``"val"`` splits' (images, labels) files and what they must hold."""

    mirrors: tuple[str, ...] = OFFICIAL_MIRRORS
    """Base URLs ``download=True`` tries in turn; each serves ``<name>.gz``."""

    system_dir: Path = Path("/usr/share/datasets/fashion-mnist")
    """Where the Debian package ``dataset-fashion-mnist`` puts the files."""

    def __init__(
        self,
        batch_size: int = 128,
        resize: int | tuple[int, int] | None = None,
        root: str | os.PathLike[str] | None = None,
        seed: int = 0,
        download: bool = False,
    ) -> None:
        self.batch_size = check_positive(batch_size, "batch_size", integer=True)
        self.resize = None if resize is None else check_kernel_size(resize, "resize")
        if self.resize is not None:
            check_size("FashionMNIST", "resize", resize, (self.batch_size, 1, *self.resize), "batch")
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root: expected a directory (a str or os.PathLike), got {root!r}")
        self.root = None if root is None else Path(root)
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise TypeError(f"seed: expected a non-negative int, got {seed!r}")
        if seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
        self.seed = int(seed)
        if not isinstance(download, bool):
            raise TypeError(f"download: expected True or False, got {download!r}")
        paths = self._locate(download)
        self.directory = paths[self.files["train"][0].name].parent
        self._splits = {
            split: _load_split(paths[images.name], paths[labels.name], images, labels)
            for split, (images, labels) in self.files.items()
        }
        self.num_train = len(self._splits["train"].labels)
        self.num_val = len(self._splits["val"].labels)
        self._generator = np.random.default_rng(self.seed)

    def __repr__(self) -> str:
        return (
            f"FashionMNIST(batch_size={self.batch_size}, resize={self.resize}, seed={self.seed}): "
            f"{self.num_train} to train, {self.num_val} to validate, from {self.directory}"
        )

    def train_dataloader(self) -> Batches:
        """The training set in batches, reshuffled for every pass.

        Examples
        --------
        >>> from itertools import islice
        >>> import convlab as cl
        >>> data = cl.data.FashionMNIST(batch_size=4, seed=0)
        >>> train = data.train_dataloader()
        >>> [data.text_labels(y) for X, y in islice(train, 2)]  # two batches of the first pass
        [['sneaker', 'sneaker', 'trouser', 'sneaker'], ['coat', 'trouser', 'shirt', 'dress']]
        >>> [data.text_labels(y) for X, y in islice(train, 2)]  # the second pass: a new permutation
        [['trouser', 'pullover', 'sneaker', 'trouser'], ['shirt', 'sandal', 'coat', 'bag']]
        """
        return Batches(self._splits["train"], self.batch_size, self.resize, self._next_order)

    def val_dataloader(self) -> Batches:
        """The validation (test) set in batches, in file order.

        Examples
        --------
        >>> import convlab as cl
        >>> data = cl.data.FashionMNIST(batch_size=3)
        >>> _, y = next(iter(data.val_dataloader()))
        >>> data.text_labels(y)
        ['ankle boot', 'pullover', 'trouser']
        """
        return Batches(self._splits["val"], self.batch_size, self.resize, None)

    def text_labels(self, indices: Any) -> list[str]:
        """The class names of labels ``indices`` (an int, a sequence, an array or any backend's tensor).

        Examples
        --------
        >>> import convlab as cl
        >>> cl.data.FashionMNIST().text_labels([0, 9, 3])
        ['t-shirt', 'ankle boot', 'dress']
        """
        values = np.asarray(to_numpy(indices)).reshape(-1)
        if values.dtype.kind not in "iu":
            raise TypeError(f"indices: expected integer labels, got an array of dtype {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= len(TEXT_LABELS)):
            bad = values[(values < 0) | (values >= len(TEXT_LABELS))][0]
            raise ValueError(f"indices: expected labels 0 to {len(TEXT_LABELS) - 1}, got {bad}")
        return [TEXT_LABELS[i] for i in values.tolist()]

    @staticmethod
    def cache_dir() -> Path:
        """The user cache directory, which ``download=True`` fills.

        Examples
        --------
        >>> FashionMNIST.cache_dir().parts[-2:]
        ('convlab', 'fashion-mnist')
        """
        base = os.environ.get("XDG_CACHE_HOME") or ""
        root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # as XDG says: relative means unset
        return root / "convlab" / "fashion-mnist"

    def _next_order(self) -> np.ndarray:
        return self._generator.permutation(self.num_train)

    def _specs(self) -> list[IdxFile]:
        return [spec for pair in self.files.values() for spec in pair]

    def _places(self) -> list[tuple[str, Path | None]]:
        """Each place looked in, in order, with how to name it in a message (``None``: not set)."""
        if self.root is not None:  # named by the user: the only place, as torchvision's root
            return [("root=", self.root)]
        data_root = os.environ.get("CONVLAB_DATA")
        places: list[tuple[str, Path | None]] = []
        places.append(("$CONVLAB_DATA", Path(data_root) / "fashion-mnist" if data_root else None))
        places.append(("Debian's package dataset-fashion-mnist", self.system_dir))
        places.append(("the user cache, which download=True fills", self.cache_dir()))
        return places

    def _locate(self, download: bool) -> dict[str, Path]:
        """The path of each file by name: from the first complete directory, downloading first if asked."""
        specs = self._specs()
        report = []
        for label, directory in self._places():
            if directory is None:
                report.append(f"{label}: not set")
                continue
            if not directory.is_dir():
                state = "is not a directory" if directory.exists() else "does not exist"
                report.append(f"{directory} ({label}): {state}")
                continue
            found, missing = files_in(directory, specs)
            if not missing:
                return found
            report.append(
                f"{directory} ({label}): " + ("none of the files" if not found else "lacks " + ", ".join(missing))
            )
        if download:
            return self._download(self.root or self.cache_dir(), specs)
        names = ", ".join(spec.name for spec in specs)
        places = "\n".join(f"  {i}. {line}" for i, line in enumerate(report, start=1))
        if self.root is not None:
            raise DataNotFoundError(
                f"Fashion-MNIST not found in the directory you named: {report[0]}. A named root is the only "
                f"place convlab looks in; it must hold the four IDX files ({names}; each gzipped as .gz or not). "
                "Check the path, pass download=True to fetch the files into it, or leave root unset to search "
                "$CONVLAB_DATA, Debian's dataset-fashion-mnist and the user cache"
            )
        raise DataNotFoundError(
            f"Fashion-MNIST not found: convlab looks for its four IDX files ({names}; each gzipped "
            f"as .gz or not) in these places, in order:\n{places}\nTo get the data, any one of:\n"
            "  - install the Debian/Ubuntu package: sudo apt-get install dataset-fashion-mnist\n"
            f"  - download it once into {self.cache_dir()}: FashionMNIST(download=True)\n"
            "  - put the four files in a directory D and pass root=D, "
            "or set CONVLAB_DATA to a directory holding D as fashion-mnist/"
        )

    def _download(self, directory: Path, specs: list[IdxFile]) -> dict[str, Path]:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unwritable(directory, exc) from exc
        found, _ = files_in(directory, specs)
        for spec in specs:
            if spec.name not in found:
                found[spec.name] = fetch(spec, directory, self.mirrors)
        return found
