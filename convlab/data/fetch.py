"""Where the dataset's files are on disk, and downloading one into the cache without leaving a partial file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from convlab.data.idx import IdxFile, decompressed, verified
from convlab.errors import DataCorruptError, DataNotFoundError

# -- where the files are -----------------------------------------------------------


def file_names(spec: IdxFile) -> tuple[str, str]:
    """The names a file may have, in the order preferred: uncompressed (faster to read), then gzipped."""
    return spec.name, spec.name + ".gz"


def files_in(directory: Path, specs: list[IdxFile]) -> tuple[dict[str, Path], list[str]]:
    """The files of ``specs`` present in ``directory`` by name, and the names of those missing."""
    found, missing = {}, []
    for spec in specs:
        for name in file_names(spec):
            if (directory / name).is_file():
                found[spec.name] = directory / name
                break
        else:
            missing.append(f"{spec.name}[.gz]")
    return found, missing


# -- download ----------------------------------------------------------------------

OFFICIAL_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)
"""Where Zalando Research publishes the ``.gz`` files: the bucket torchvision (and so d2l) uses, then the repository."""

_CHUNK_BYTES = 1 << 20


def unwritable(directory: Path, exc: OSError) -> DataNotFoundError:
    """The error for a download folder that cannot be made or written into, with what to do instead."""
    return DataNotFoundError(
        f"cannot write the download into {directory} ({exc.strerror or exc}); nothing was kept. Download into a "
        "folder you can write, FashionMNIST(root=<that folder>, download=True) or XDG_CACHE_HOME=<that folder>, "
        "or install the Debian/Ubuntu package instead: sudo apt-get install dataset-fashion-mnist"
    )


def fetch(spec: IdxFile, directory: Path, mirrors: tuple[str, ...]) -> Path:
    """Download ``<spec.name>.gz`` from the first mirror that serves it intact into ``directory``; its path."""
    import http.client
    import tempfile
    import urllib.request

    target = directory / f"{spec.name}.gz"
    failures: list[tuple[str, Exception]] = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{target.name}"
        try:
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".part")
        except OSError as exc:
            raise unwritable(directory, exc) from exc
        placed = False
        try:
            with os.fdopen(handle, "wb") as out:
                request = urllib.request.Request(url, headers={"User-Agent": "convlab"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    announced = response.headers.get("Content-Length")
                    received = 0
                    while chunk := response.read(_CHUNK_BYTES):
                        out.write(chunk)
                        received += len(chunk)
                if announced is not None and received != int(announced):
                    raise OSError(f"interrupted: received {received} of {announced} bytes")
                out.flush()
                os.fsync(out.fileno())  # the bytes reach the disk before the name does
            verified(decompressed(Path(temporary).read_bytes(), url, remedy=""), spec, url, remedy="")
            os.replace(temporary, target)
            placed = True
            return target
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # the disk, not the mirror: another mirror would fill it just the same
                raise DataNotFoundError(
                    f"no space left on the device while writing {target}; nothing was kept. Free some space "
                    "there, or download into another disk: FashionMNIST(root=<a directory there>, download=True) "
                    "or XDG_CACHE_HOME=<a directory there>"
                ) from exc
            failures.append((url, exc))  # URLError, timeouts and cut-off streams are OSErrors too
        except (http.client.HTTPException, DataCorruptError) as exc:
            failures.append((url, exc))
        finally:
            if not placed:
                Path(temporary).unlink(missing_ok=True)
    tried = "\n".join(f"  {url}: {exc}" for url, exc in failures) or "  (no mirrors configured)"
    if any(isinstance(exc, DataCorruptError) for _, exc in failures):
        raise DataCorruptError(f"no mirror served an intact {target.name}; nothing was kept:\n{tried}")
    raise DataNotFoundError(
        f"could not download {target.name} into {directory}; nothing was kept:\n{tried}\n"
        "Without network access, install the Debian/Ubuntu package instead: "
        "sudo apt-get install dataset-fashion-mnist"
    )
