"""cl.data.FashionMNIST: decoding, the seeded order on every backend, resizing, verification, search order, download.

The real data (Debian's ``dataset-fashion-mnist``, or wherever the loader
finds it) is read once for the module and checked against a decoder written
here. Everything else runs on tiny synthetic IDX files made in ``tmp_path``,
with their own pins handed to a subclass; downloads come from a loopback HTTP
server the tests start, never from the network.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.server
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import convlab as cl
from convlab.data import fashion_mnist
from convlab.data import fetch as fetch_module
from convlab.data.fashion_mnist import FashionMNIST, IdxFile

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
BOOK_VAL_LABELS = ["ankle boot", "pullover", "trouser", "trouser", "shirt", "trouser", "coat", "shirt", "sandal"]
"""The first validation images' labels under d2l's figure of ``data.visualize(data.val_dataloader())``."""


# -- an independent IDX writer and reader ---------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes, written from the format's description."""
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def read_idx(path: Path) -> np.ndarray:
    """Decode an IDX file (``.gz`` or not) with ``struct``, independently of the loader."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    zero, kind, ndim = struct.unpack_from(">HBB", raw)
    assert (zero, kind) == (0, 0x08)
    shape = struct.unpack_from(f">{ndim}I", raw, 4)
    body = raw[4 + 4 * ndim :]
    assert len(body) == np.prod(shape)
    return np.array(bytearray(body), dtype=np.uint8).reshape(shape)


def as_floats(pixels: np.ndarray) -> np.ndarray:
    """The images d2l's ``ToTensor`` makes: NCHW, k/255 computed in float64 and rounded to float32."""
    return (pixels[:, None].astype(np.float64) / 255).astype(np.float32)


# -- synthetic data sets with their own pins ------------------------------------------


@dataclass
class Synthetic:
    """Arrays by file name, and the pins (a ``FashionMNIST.files`` value) that describe them."""

    arrays: dict[str, np.ndarray]
    files: dict[str, tuple[IdxFile, IdxFile]]

    def write(self, directory: Path, gz: bool = True, edit: dict[str, Callable[[bytes], bytes]] | None = None) -> Path:
        """The four files in ``directory``; ``edit[name]`` changes a file's bytes (compressed ones, if ``gz``)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, array in self.arrays.items():
            data = gzip.compress(idx_bytes(array), mtime=0) if gz else idx_bytes(array)
            if edit and name in edit:
                data = edit[name](data)
            (directory / (name + (".gz" if gz else ""))).write_bytes(data)
        return directory


def synthesize(n_train: int = 12, n_val: int = 8, seed: int = 0, size: tuple[int, int] = (28, 28)) -> Synthetic:
    rng = np.random.default_rng(seed)
    counts = dict(zip(NAMES, (n_train, n_train, n_val, n_val), strict=True))
    arrays = {
        name: rng.integers(0, 256, (n, *size), dtype=np.uint8)
        if "images" in name
        else rng.integers(0, 10, n, dtype=np.uint8)
        for name, n in counts.items()
    }

    def pin(name: str) -> IdxFile:
        digest = hashlib.sha256(idx_bytes(arrays[name])).hexdigest()
        return IdxFile(name, arrays[name].shape, digest, classes=None if "images" in name else 10)

    return Synthetic(arrays, {"train": (pin(NAMES[0]), pin(NAMES[1])), "val": (pin(NAMES[2]), pin(NAMES[3]))})


def loader_for(files: dict[str, tuple[IdxFile, IdxFile]], system_dir: Path, mirrors: tuple[str, ...] = ()) -> type:
    """``FashionMNIST`` checking against ``files``, with its system directory and mirrors moved."""
    attributes = {"files": files, "system_dir": system_dir, "mirrors": mirrors}
    return type("SyntheticFashionMNIST", (FashionMNIST,), attributes)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A clean environment: no $CONVLAB_DATA, the user cache inside ``tmp_path``."""
    monkeypatch.delenv("CONVLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


@pytest.fixture
def tiny() -> Synthetic:
    return synthesize()


# -- the real data, read once ---------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> tuple[FashionMNIST, dict[str, np.ndarray]]:
    """The loader on the real data and the four arrays as this file's decoder reads them."""
    try:
        data = FashionMNIST()
    except cl.DataNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST is not installed here (apt-get install dataset-fashion-mnist): {exc}")
    paths = {spec.name: fashion_mnist.files_in(data.directory, [spec])[0][spec.name] for spec in data._specs()}
    return data, {name: read_idx(path) for name, path in paths.items()}


def test_real_data_is_the_official_set(real):
    data, arrays = real
    assert (data.num_train, data.num_val) == (60000, 10000)
    assert arrays["train-images-idx3-ubyte"].shape == (60000, 28, 28)
    assert np.bincount(arrays["train-labels-idx1-ubyte"]).tolist() == [6000] * 10
    assert np.bincount(arrays["t10k-labels-idx1-ubyte"]).tolist() == [1000] * 10
    _, y = next(iter(data.val_dataloader()))
    assert data.text_labels(y[: len(BOOK_VAL_LABELS)]) == BOOK_VAL_LABELS


def test_validation_batches_are_the_file_in_order(real):
    data, arrays = real
    batches = list(data.val_dataloader())
    assert len(batches) == len(data.val_dataloader()) == 79
    assert [len(y) for _, y in batches[-2:]] == [128, 10000 - 78 * 128]  # the last partial batch is kept
    X = np.concatenate([cl.to_numpy(X) for X, _ in batches])
    y = np.concatenate([cl.to_numpy(y) for _, y in batches])
    assert X.dtype == np.float32 and X.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(X, as_floats(arrays["t10k-images-idx3-ubyte"]))
    np.testing.assert_array_equal(y, arrays["t10k-labels-idx1-ubyte"])
    assert np.issubdtype(y.dtype, np.integer)


def test_each_training_pass_is_the_next_seeded_permutation(real):
    _, arrays = real
    generator = np.random.default_rng(7)
    loader = FashionMNIST(seed=7, batch_size=1000).train_dataloader()
    for _ in range(2):
        order = generator.permutation(60000)
        labels = np.concatenate([cl.to_numpy(y) for _, y in loader])
        np.testing.assert_array_equal(labels, arrays["train-labels-idx1-ubyte"][order])
    X, _ = next(iter(FashionMNIST(seed=7, batch_size=5).train_dataloader()))
    first = np.random.default_rng(7).permutation(60000)[:5]
    np.testing.assert_array_equal(cl.to_numpy(X), as_floats(arrays["train-images-idx3-ubyte"][first]))


def test_a_new_loader_continues_the_seeded_stream_and_other_seeds_differ(real):
    _, arrays = real
    labels = arrays["train-labels-idx1-ubyte"]
    fresh = FashionMNIST(seed=3, batch_size=1000)
    _, first = next(iter(fresh.train_dataloader()))
    _, second = next(iter(fresh.train_dataloader()))
    generator = np.random.default_rng(3)
    np.testing.assert_array_equal(first, labels[generator.permutation(60000)[:1000]])
    np.testing.assert_array_equal(second, labels[generator.permutation(60000)[:1000]])
    _, other = next(iter(FashionMNIST(seed=4, batch_size=1000).train_dataloader()))
    assert not np.array_equal(first, other)


def test_same_batches_on_every_backend(real, backend):
    _, arrays = real
    loader = FashionMNIST(seed=11).train_dataloader()
    order = np.random.default_rng(11).permutation(60000)
    for step, (X, y) in zip(range(3), loader, strict=False):
        chosen = order[step * 128 : (step + 1) * 128]
        assert isinstance(X, backend.tensor_types)
        assert tuple(X.shape) == (128, 1, 28, 28)
        np.testing.assert_array_equal(backend.to_numpy(X), as_floats(arrays["train-images-idx3-ubyte"][chosen]))
        labels = cl.to_numpy(y)
        assert np.issubdtype(labels.dtype, np.integer)
        np.testing.assert_array_equal(labels, arrays["train-labels-idx1-ubyte"][chosen])


def test_a_second_instance_reuses_the_verified_arrays(real, monkeypatch):
    data, _ = real
    checks = []
    verify = fashion_mnist.verified

    def counted(*args, **kwargs):
        checks.append(args[2])
        return verify(*args, **kwargs)

    monkeypatch.setattr(fashion_mnist, "verified", counted)
    again = FashionMNIST(batch_size=64)
    assert checks == []  # neither decoded nor hashed again
    assert again._splits["train"].images is data._splits["train"].images


def test_batches_are_copies(real):
    data, _ = real
    loader = data.val_dataloader()
    X, y = next(iter(loader))
    X[:] = -1
    y[:] = 99
    X_again, y_again = next(iter(loader))
    assert float(X_again.min()) >= 0.0 and int(y_again.max()) <= 9


# -- resizing -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(14, 14), (20, 35), 56, (28, 28)])
def test_resize_matches_pillow_bilinear(home, tiny, size):
    from PIL import Image

    data = loader_for(tiny.files, home / "none")(root=tiny.write(home / "d"), resize=size, batch_size=100)
    height, width = (size, size) if isinstance(size, int) else size
    X, _ = next(iter(data.val_dataloader()))
    assert X.shape == (8, 1, height, width) and X.dtype == np.float32
    for image, pixels in zip(X[:, 0], tiny.arrays["t10k-images-idx3-ubyte"], strict=True):
        reference = np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)) / 255
        # Pillow rounds to 8 bits after each of its two passes; convlab keeps floats.
        np.testing.assert_allclose(image, reference, atol=1.01 / 255)


@pytest.mark.parametrize("size", [(14, 14), (20, 35), (56, 56)])
def test_resize_matches_torch_antialiased_bilinear(home, tiny, size):
    torch = pytest.importorskip("torch")
    data = loader_for(tiny.files, home / "none")(root=tiny.write(home / "d"), resize=size, batch_size=100)
    X, _ = next(iter(data.val_dataloader()))
    images = torch.from_numpy(as_floats(tiny.arrays["t10k-images-idx3-ubyte"]))
    reference = torch.nn.functional.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    np.testing.assert_allclose(X, reference.numpy(), atol=2e-6)


def test_large_resizes_happen_per_batch_with_the_same_result(home, tiny, monkeypatch):
    loader = loader_for(tiny.files, home / "none")
    root = tiny.write(home / "d")
    kept = next(iter(loader(root=root, resize=(40, 30), batch_size=5).train_dataloader()))[0]
    monkeypatch.setattr(fashion_mnist, "_PRESIZED_LIMIT_BYTES", 0)
    per_batch = next(iter(loader(root=root, resize=(40, 30), batch_size=5).train_dataloader()))[0]
    np.testing.assert_array_equal(kept, per_batch)
    assert kept.shape == (5, 1, 40, 30)


# -- arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"batch_size": 0}, ValueError, "batch_size: expected a positive int, got 0"),
        ({"batch_size": 2.5}, TypeError, "batch_size: expected a positive int, got 2.5"),
        ({"resize": (0, 5)}, ValueError, "resize: expected positive sizes"),
        ({"resize": "big"}, TypeError, "resize: expected a pair of positive ints"),
        ({"resize": (1, 2, 3)}, TypeError, "resize: expected a pair of positive ints"),
        ({"root": 5}, TypeError, "root: expected a directory (a str or os.PathLike), got 5"),
        ({"seed": -1}, ValueError, "seed: expected a non-negative int, got -1"),
        ({"seed": 1.0}, TypeError, "seed: expected a non-negative int, got 1.0"),
        ({"download": "yes"}, TypeError, "download: expected True or False, got 'yes'"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, words):
    with pytest.raises(error) as caught:
        FashionMNIST(**kwargs)
    assert words in str(caught.value)


def test_text_labels(home, tiny):
    data = loader_for(tiny.files, home / "none")(root=tiny.write(home / "d"))
    assert data.text_labels([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) == list(fashion_mnist.TEXT_LABELS)
    assert data.text_labels(np.array([[9], [0]])) == ["ankle boot", "t-shirt"]
    assert data.text_labels(3) == ["dress"]
    with pytest.raises(ValueError, match=r"indices: expected labels 0 to 9, got 10"):
        data.text_labels([1, 10])
    with pytest.raises(ValueError, match=r"got -1"):
        data.text_labels([-1])
    with pytest.raises(TypeError, match=r"indices: expected integer labels, got an array of dtype float64"):
        data.text_labels([1.0])


# -- verification ---------------------------------------------------------------------


def set_byte(offset: int, value: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:offset] + bytes([value]) + data[offset + 1 :]


def bump(offset: int, modulo: int) -> Callable[[bytes], bytes]:
    """Add one to the byte at ``offset``, modulo ``modulo``: a different pixel (256) or a different valid label (10)."""
    return lambda data: data[:offset] + bytes([(data[offset] + 1) % modulo]) + data[offset + 1 :]


def flip(offset: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :]


def recompressed(change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Apply ``change`` to the decompressed bytes of a gzipped file."""
    return lambda data: gzip.compress(change(gzip.decompress(data)), mtime=0)


def with_header(array: np.ndarray) -> Callable[[bytes], bytes]:
    return lambda data: gzip.compress(idx_bytes(array), mtime=0)


PIXELS = synthesize().arrays["train-images-idx3-ubyte"]
"""The tiny set's training images, to write files with other headers from."""

DAMAGE = {
    "truncated gzip": ("train-images-idx3-ubyte", lambda data: data[: len(data) // 2], "not a complete gzip file"),
    "corrupt gzip": ("t10k-labels-idx1-ubyte", flip(-6), "not a complete gzip file"),
    "not gzip at all": ("t10k-images-idx3-ubyte", lambda data: b"<html>Not Found</html>", "not a complete gzip file"),
    "bad magic": ("train-images-idx3-ubyte", recompressed(set_byte(3, 0x01)), "bad magic number 0x00000801"),
    "wrong type code": ("train-labels-idx1-ubyte", recompressed(set_byte(2, 0x0D)), "bad magic number 0x00000d01"),
    "empty": ("train-labels-idx1-ubyte", recompressed(lambda data: b""), "only 0 bytes long"),
    "wrong count": ("train-images-idx3-ubyte", with_header(PIXELS[:11]), "holds 11 images, expected 12"),
    "wrong shape": ("train-images-idx3-ubyte", with_header(PIXELS[:, :27]), "holds 27x28-pixel images, expected 28x28"),
    "truncated data": ("train-images-idx3-ubyte", recompressed(lambda data: data[:-1]), "truncated: 9407 bytes"),
    "extra data": ("t10k-images-idx3-ubyte", recompressed(lambda data: data + b"\0"), "1 bytes longer than"),
    "one pixel changed": ("train-images-idx3-ubyte", recompressed(bump(500, 256)), "SHA-256 of its decompressed"),
    "one label changed": ("t10k-labels-idx1-ubyte", recompressed(bump(8, 10)), "SHA-256 of its decompressed"),
    "label out of range": (
        "train-labels-idx1-ubyte",
        recompressed(set_byte(8, 10)),
        "holds label 10, expected labels 0 to 9",
    ),
    "labels of another split": (
        "train-labels-idx1-ubyte",
        with_header(np.zeros(8, np.uint8)),
        "holds 8 labels for 12 images: these labels do not belong to the images",
    ),
}


@pytest.mark.parametrize("case", DAMAGE, ids=list(DAMAGE))
def test_damaged_files_are_refused_with_their_name_and_problem(home, tiny, case):
    name, damage, words = DAMAGE[case]
    root = tiny.write(home / "d", edit={name: damage})
    with pytest.raises(cl.DataCorruptError) as caught:
        loader_for(tiny.files, home / "none")(root=root)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(root / f"{name}.gz") in message and words in message, message
    assert "refuses" in message and "dataset-fashion-mnist" in message


def test_an_uncompressed_file_that_is_gzip_says_so(home, tiny):
    root = tiny.write(home / "d", gz=False, edit={NAMES[0]: gzip.compress})
    with pytest.raises(cl.DataCorruptError, match=r"bad magic number 0x1f8b.*it is gzip-compressed: name it with .gz"):
        loader_for(tiny.files, home / "none")(root=root)


@pytest.mark.parametrize("gz", [True, False])
def test_gzipped_or_plain_files_decode_the_same(home, tiny, gz):
    data = loader_for(tiny.files, home / "none")(root=tiny.write(home / "d", gz=gz), batch_size=100)
    X, y = next(iter(data.val_dataloader()))
    np.testing.assert_array_equal(X, as_floats(tiny.arrays["t10k-images-idx3-ubyte"]))
    np.testing.assert_array_equal(y, tiny.arrays["t10k-labels-idx1-ubyte"])


def test_a_changed_file_is_verified_again(home, tiny):
    loader = loader_for(tiny.files, home / "none")
    root = tiny.write(home / "d")
    loader(root=root)
    tiny.write(root, edit={NAMES[2]: recompressed(set_byte(100, 7))})
    with pytest.raises(cl.DataCorruptError, match="SHA-256"):
        loader(root=root)


# -- where the files are looked for ---------------------------------------------------


def test_the_search_order(home, tiny, monkeypatch):
    places = [
        home / "env" / "fashion-mnist",
        home / "system",
        home / "xdg-cache" / "convlab" / "fashion-mnist",
    ]
    monkeypatch.setenv("CONVLAB_DATA", str(home / "env"))
    loader = loader_for(tiny.files, places[1])
    for chosen, directory in enumerate(places):
        # Earlier places are empty and later ones hold damaged files, which would raise if they were read.
        for earlier in places[:chosen]:
            for path in earlier.iterdir():
                path.unlink()
        tiny.write(directory)
        for later in places[chosen + 1 :]:
            tiny.write(later, edit={name: recompressed(bump(600, 256)) for name in NAMES[::2]})
        assert loader().directory == directory


def test_a_partial_directory_is_skipped_and_reported(home, tiny, monkeypatch):
    partial = tiny.write(home / "env" / "fashion-mnist")
    (partial / f"{NAMES[3]}.gz").unlink()
    system = tiny.write(home / "system")
    monkeypatch.setenv("CONVLAB_DATA", str(home / "env"))
    assert loader_for(tiny.files, system)().directory == system
    for path in system.iterdir():
        path.unlink()
    with pytest.raises(cl.DataNotFoundError, match=rf"{partial} \(\$CONVLAB_DATA\): lacks t10k-labels-idx1-ubyte"):
        loader_for(tiny.files, system)()


def test_a_named_root_is_the_only_place_looked(home, tiny, monkeypatch):
    # Everywhere else holds good files: a named root that lacks them must still be an error, not a fallback.
    tiny.write(home / "env" / "fashion-mnist")
    system = tiny.write(home / "system")
    tiny.write(cache_of(home))
    monkeypatch.setenv("CONVLAB_DATA", str(home / "env"))
    loader = loader_for(tiny.files, system)
    for named, state in ((home / "mistyped", "does not exist"), (tiny.write(home / "partial"), "lacks")):
        if state == "lacks":
            (named / f"{NAMES[0]}.gz").unlink()
        with pytest.raises(cl.DataNotFoundError) as caught:
            loader(root=named)
        message = str(caught.value)
        assert f"not found in the directory you named: {named} (root=): {state}" in message, message
        assert "download=True" in message and "leave root unset" in message
    assert loader(root=tiny.write(home / "mine")).directory == home / "mine"


def test_missing_data_says_where_it_looked_and_how_to_get_it(home, tiny, monkeypatch):
    monkeypatch.setenv("CONVLAB_DATA", str(home / "env"))
    (home / "system").mkdir()
    with pytest.raises(cl.DataNotFoundError) as caught:
        loader_for(tiny.files, home / "system")()
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    cache = home / "xdg-cache" / "convlab" / "fashion-mnist"
    looked = [
        f"1. {home / 'env' / 'fashion-mnist'} ($CONVLAB_DATA): does not exist",
        f"2. {home / 'system'} (Debian's package dataset-fashion-mnist): none of the files",
        f"3. {cache} (the user cache, which download=True fills): does not exist",
    ]
    positions = [message.find(line) for line in looked]
    assert -1 not in positions and positions == sorted(positions), message
    for advice in ("sudo apt-get install dataset-fashion-mnist", "FashionMNIST(download=True)", "CONVLAB_DATA"):
        assert advice in message


def test_an_unset_convlab_data_is_reported(home, tiny):
    with pytest.raises(cl.DataNotFoundError, match=r"1\. \$CONVLAB_DATA: not set"):
        loader_for(tiny.files, home / "none")()


def test_the_real_loader_finds_the_debian_package(monkeypatch, tmp_path):
    if not all((FashionMNIST.system_dir / f"{name}.gz").is_file() for name in NAMES):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    monkeypatch.delenv("CONVLAB_DATA", raising=False)
    assert FashionMNIST().directory == FashionMNIST.system_dir


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert FashionMNIST.cache_dir() == tmp_path / "convlab" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec says to ignore a relative path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert FashionMNIST.cache_dir() == tmp_path / "home" / ".cache" / "convlab" / "fashion-mnist"


# -- download from a loopback server --------------------------------------------------


class Mirror:
    """A loopback HTTP server: ``routes`` maps a path to its body; ``cut`` paths stop halfway."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mirror.requests.append(self.path)
                body = mirror.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in mirror.cut else body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def serve(self, prefix: str, synthetic: Synthetic) -> None:
        for name, array in synthetic.arrays.items():
            self.routes[f"{prefix}/{name}.gz"] = gzip.compress(idx_bytes(array), mtime=0)


@pytest.fixture
def mirror(monkeypatch) -> Iterator[Mirror]:
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = Mirror()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def cache_of(home: Path) -> Path:
    return home / "xdg-cache" / "convlab" / "fashion-mnist"


def test_download_fetches_only_the_missing_files_into_the_cache(home, tiny, mirror):
    mirror.serve("/fashion", tiny)
    cache = cache_of(home)
    tiny.write(cache)
    for name in NAMES[2:]:
        (cache / f"{name}.gz").unlink()
    data = loader_for(tiny.files, home / "none", (f"{mirror.url}/fashion/",))(download=True, batch_size=100)
    assert sorted(mirror.requests) == [f"/fashion/{name}.gz" for name in sorted(NAMES[2:])]
    assert sorted(path.name for path in cache.iterdir()) == sorted(f"{name}.gz" for name in NAMES)
    assert data.directory == cache
    X, y = next(iter(data.val_dataloader()))
    np.testing.assert_array_equal(X, as_floats(tiny.arrays["t10k-images-idx3-ubyte"]))
    np.testing.assert_array_equal(y, tiny.arrays["t10k-labels-idx1-ubyte"])


def test_download_tries_the_next_mirror(home, tiny, mirror):
    mirror.serve("/second", tiny)
    mirrors = (f"{mirror.url}/first", f"{mirror.url}/second")
    data = loader_for(tiny.files, home / "none", mirrors)(download=True)
    assert data.num_train == 12 and len(mirror.requests) == 8
    assert sorted(path.name for path in cache_of(home).iterdir()) == sorted(f"{name}.gz" for name in NAMES)


def test_no_download_when_the_data_is_present(home, tiny, mirror):
    mirror.serve("/fashion", tiny)
    loader_for(tiny.files, home / "none", (mirror.url + "/fashion",))(root=tiny.write(home / "d"), download=True)
    assert mirror.requests == [] and not cache_of(home).exists()


def test_an_interrupted_download_leaves_nothing(home, tiny, mirror):
    mirror.serve("/fashion", tiny)
    mirror.cut.add(f"/fashion/{NAMES[0]}.gz")
    loader = loader_for(tiny.files, home / "none", (mirror.url + "/fashion",))
    with pytest.raises(cl.DataNotFoundError) as caught:
        loader(download=True)
    assert f"{NAMES[0]}.gz" in str(caught.value) and "interrupted: received" in str(caught.value)
    assert list(cache_of(home).iterdir()) == []  # nothing half-written, no temporary file
    mirror.cut.clear()
    assert loader(download=True).num_val == 8  # and the next try completes


def test_a_damaged_download_is_refused_and_not_kept(home, tiny, mirror):
    mirror.serve("/fashion", tiny)
    path = f"/fashion/{NAMES[3]}.gz"
    mirror.routes[path] = recompressed(bump(9, 10))(mirror.routes[path])
    with pytest.raises(cl.DataCorruptError) as caught:
        loader_for(tiny.files, home / "none", (mirror.url + "/fashion",))(download=True)
    message = str(caught.value)
    assert f"{mirror.url}{path}" in message and "SHA-256" in message and "nothing was kept" in message
    assert "delete it" not in message  # there is no file to delete
    assert sorted(p.name for p in cache_of(home).iterdir()) == sorted(f"{name}.gz" for name in NAMES[:3])


def test_an_unreachable_mirror_says_so(home, tiny, mirror):
    advice = r"(?s)could not download .*HTTP Error 404.*apt-get install dataset-fashion-mnist"
    with pytest.raises(cl.DataNotFoundError, match=advice):
        loader_for(tiny.files, home / "none", (mirror.url + "/nowhere",))(download=True)
    assert list(cache_of(home).iterdir()) == []


# -- faults around the data: each a clear error naming the file and what to do, and no partial file ----------


def test_a_full_disk_stops_the_download_and_leaves_nothing(home, tiny, mirror, monkeypatch):
    mirror.serve("/first", tiny)
    mirror.serve("/second", tiny)
    real_fdopen = fetch_module.os.fdopen

    class FullDisk:
        def __init__(self, handle, mode):
            self.file = real_fdopen(handle, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, chunk):
            self.file.write(chunk[: len(chunk) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch_module.os, "fdopen", FullDisk)
    mirrors = (f"{mirror.url}/first", f"{mirror.url}/second")
    with pytest.raises(cl.DataNotFoundError) as caught:
        loader_for(tiny.files, home / "none", mirrors)(download=True)
    message = str(caught.value)
    first = cache_of(home) / f"{NAMES[0]}.gz"
    assert f"no space left on the device while writing {first}; nothing was kept" in message
    assert "root=" in message and "XDG_CACHE_HOME" in message
    assert list(cache_of(home).iterdir()) == []  # not even the temporary file
    assert len(mirror.requests) == 1  # a full disk is not the mirror's fault: no other mirror is tried


def test_a_cache_that_cannot_be_made_says_where_to_download_instead(home, tiny, mirror, monkeypatch):
    mirror.serve("/fashion", tiny)
    blocker = home / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache would have to live inside a file
    with pytest.raises(cl.DataNotFoundError) as caught:
        loader_for(tiny.files, home / "none", (mirror.url + "/fashion",))(download=True)
    message = str(caught.value)
    assert f"cannot write the download into {blocker / 'convlab' / 'fashion-mnist'}" in message
    assert "FashionMNIST(root=<that folder>, download=True)" in message and "apt-get install" in message
    assert mirror.requests == []


def test_a_cache_that_cannot_be_written_leaves_nothing(home, tiny, mirror, monkeypatch):
    mirror.serve("/fashion", tiny)

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(cl.DataNotFoundError, match=r"cannot write the download into .*\(Permission denied\)"):
        loader_for(tiny.files, home / "none", (mirror.url + "/fashion",))(download=True)
    assert list(cache_of(home).iterdir()) == [] and mirror.requests == []


def test_a_damaged_file_in_convlab_data_is_refused_by_name(home, tiny, monkeypatch):
    env = tiny.write(home / "env" / "fashion-mnist", edit={NAMES[1]: recompressed(bump(9, 10))})
    monkeypatch.setenv("CONVLAB_DATA", str(home / "env"))
    with pytest.raises(cl.DataCorruptError) as caught:
        loader_for(tiny.files, home / "none")()
    message = str(caught.value)
    assert message.startswith(str(env / f"{NAMES[1]}.gz")) and "SHA-256" in message
    assert "delete it and get a fresh copy" in message
    assert sorted(path.name for path in env.iterdir()) == sorted(f"{name}.gz" for name in NAMES)  # nothing removed
