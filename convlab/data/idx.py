"""The IDX format of (Fashion-)MNIST, and every check a file passes before its data is used.

The magic number, the counts and shapes the header announces against the
official ones, the length, a pinned SHA-256 of the decompressed bytes (Debian
recompresses the ``.gz`` files, so their own hashes differ from the
publisher's), the label range and that labels and images belong together.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlab.errors import DataCorruptError

_UNSIGNED_BYTE = 0x08
"""The IDX type code of ``uint8`` data, the third byte of the magic number."""


@dataclass(frozen=True)
class IdxFile:
    """What one IDX file of a dataset must hold once decompressed.

    Parameters
    ----------
    name : str
        The file's name without ``.gz`` (``"train-images-idx3-ubyte"``).
    shape : tuple of int
        The dimensions its header must announce: ``(count, height, width)``
        for images, ``(count,)`` for labels.
    sha256 : str
        The SHA-256 of the whole decompressed file, header included.
    classes : int, optional
        For a label file: every label must be below it.

    Examples
    --------
    >>> spec = IdxFile("t10k-labels-idx1-ubyte", (10000,), "0" * 64, classes=10)
    >>> hex(spec.magic), spec.what
    ('0x801', 'labels')
    """

    name: str
    shape: tuple[int, ...]
    sha256: str
    classes: int | None = None

    @property
    def magic(self) -> int:
        """The magic number that opens the file: zero, zero, the type code of ``uint8``, the number of dimensions."""
        return (_UNSIGNED_BYTE << 8) | len(self.shape)

    @property
    def what(self) -> str:
        """``"images"`` or ``"labels"``, for messages."""
        return "labels" if len(self.shape) == 1 else "images"


OFFICIAL_FILES: dict[str, tuple[IdxFile, IdxFile]] = {
    "train": (
        IdxFile(
            "train-images-idx3-ubyte",
            (60000, 28, 28),
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        IdxFile(
            "train-labels-idx1-ubyte",
            (60000,),
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            classes=10,
        ),
    ),
    "val": (
        IdxFile(
            "t10k-images-idx3-ubyte",
            (10000, 28, 28),
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        IdxFile(
            "t10k-labels-idx1-ubyte",
            (10000,),
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            classes=10,
        ),
    ),
}
"""Fashion-MNIST's training and test splits: (images, labels) each.

The pins are the SHA-256 of the decompressed official files; the training
labels hold 6,000 of each class and the test labels 1,000.
"""

_LOCAL_REMEDY = (
    "convlab refuses this file; delete it and get a fresh copy "
    "(the apt package dataset-fashion-mnist, or FashionMNIST(download=True))"
)
"""What to do about a damaged file on disk; a damaged download is simply not kept."""


def _damaged(where: str, problem: str, remedy: str) -> DataCorruptError:
    return DataCorruptError(f"{where}: {problem}." + (f" {remedy}" if remedy else ""))


def decompressed(raw: bytes, where: str, remedy: str = _LOCAL_REMEDY) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut-off stream an EOFError
        raise _damaged(where, f"not a complete gzip file ({exc})", remedy) from exc


def read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return decompressed(raw, str(path)) if path.suffix == ".gz" else raw


def verified(
    data: bytes, spec: IdxFile, where: str, images_count: int | None = None, remedy: str = _LOCAL_REMEDY
) -> np.ndarray:
    """The uint8 array of a decompressed IDX file, after every check against ``spec``.

    ``images_count``, for a label file: how many images its labels must
    describe. ``where`` names the file in messages, ``remedy`` ends them.
    """

    def corrupt(problem: str) -> DataCorruptError:
        return _damaged(where, problem, remedy)

    ndim = len(spec.shape)
    if len(data) < 4:
        raise corrupt(f"only {len(data)} bytes long, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != spec.magic:
        hint = " (it is gzip-compressed: name it with .gz)" if data[:2] == b"\x1f\x8b" else ""
        raise corrupt(
            f"bad magic number 0x{magic:08x}{hint}, expected 0x{spec.magic:08x} "
            f"(IDX {spec.what}: unsigned bytes in {ndim} dimension{'s' if ndim > 1 else ''})",
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise corrupt(f"truncated inside its header ({len(data)} of {header} bytes)")
    dims = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if images_count is not None and dims[0] != images_count:
        raise corrupt(
            f"holds {dims[0]} labels for {images_count} images: these labels do not belong to the images beside them",
        )
    if dims[0] != spec.shape[0]:
        raise corrupt(f"holds {dims[0]} {spec.what}, expected {spec.shape[0]}")
    if dims[1:] != spec.shape[1:]:
        size, expected = "x".join(map(str, dims[1:])), "x".join(map(str, spec.shape[1:]))
        raise corrupt(f"holds {size}-pixel images, expected {expected}")
    body, needed = len(data) - header, math.prod(dims)
    if body < needed:
        raise corrupt(f"truncated: {body} bytes of {spec.what} after the header, expected {needed}")
    if body > needed:
        raise corrupt(f"{body - needed} bytes longer than its header announces")
    values = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    if spec.classes is not None and values.size and int(values.max()) >= spec.classes:
        raise corrupt(f"holds label {int(values.max())}, expected labels 0 to {spec.classes - 1}")
    import hashlib  # here, not at the top: `import convlab` stays lean

    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise corrupt(
            f"SHA-256 of its decompressed bytes is {digest}, expected {spec.sha256}: "
            "the file is damaged or is not the official data",
        )
    return values
