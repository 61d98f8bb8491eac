"""How much memory one call may ask for, checked before anything is allocated.

A function whose output grows with an argument (a padding, a stride, a
shape) estimates its output, or its largest temporary, from the checked
arguments and refuses with :class:`convlab.OutputTooLargeError` when the
estimate passes the limit, instead of asking the framework for terabytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from convlab._api import export
from convlab.errors import OutputTooLargeError

FLOAT32_BYTES = 4

_FALLBACK_LIMIT = 8 << 30
"""The limit where the physical memory cannot be read (8 GiB)."""

_limit: int | None = None
"""Set by :func:`set_memory_limit`; ``None``: half of the physical memory."""


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX, or the names are unknown
        return None


@export
def memory_limit() -> int:
    """The most bytes one convlab call may allocate for its output or its largest temporary.

    By default half of the machine's physical memory (8 GiB where it cannot
    be read); :func:`set_memory_limit` changes it.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.memory_limit() > 0
    True
    """
    if _limit is not None:
        return _limit
    physical = _physical_memory()
    return physical // 2 if physical else _FALLBACK_LIMIT


@export
def set_memory_limit(nbytes: int | None) -> None:
    """Set the limit of :func:`memory_limit` to ``nbytes`` (a positive int), or back to its default with ``None``.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.set_memory_limit(1 << 20)
    >>> cl.corr2d_matrix([[1.0]], (1000, 1000))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    convlab.errors.OutputTooLargeError: corr2d_matrix: X_shape (1000, 1000) needs ... 3.64 TiB, over ... 1 MiB; ...
    >>> cl.set_memory_limit(None)
    """
    global _limit
    if nbytes is not None and (isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0):
        raise ValueError(f"nbytes: expected a positive int or None, got {nbytes!r}")
    _limit = nbytes


def human_bytes(nbytes: int) -> str:
    """``3.6 TiB``, ``512 MiB``: a byte count in binary units, as a person reads it."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024
    raise AssertionError("unreachable")


def check_size(function: str, argument: str, value: object, shape: Sequence[int], what: str = "output") -> None:
    """Refuse, before allocating, a float32 array of ``shape`` that passes :func:`memory_limit`.

    ``function`` and ``argument`` name the call and the argument that makes
    the array large, ``value`` is what was passed, ``what`` the array's role.
    """
    nbytes = math.prod(int(n) for n in shape) * FLOAT32_BYTES  # Python ints: no overflow
    limit = memory_limit()
    if nbytes > limit:
        dims = "x".join(str(int(n)) for n in shape)
        raise OutputTooLargeError(
            f"{function}: {argument} {value!r} needs a {dims} float32 {what}, {human_bytes(nbytes)}, over convlab's "
            f"memory limit of {human_bytes(limit)}; ask for less, or raise the limit with "
            "convlab.set_memory_limit(nbytes)",
            function=function,
            argument=argument,
            nbytes=nbytes,
            limit=limit,
        )
