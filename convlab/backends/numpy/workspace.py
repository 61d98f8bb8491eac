"""Memory a NumPy training step keeps from one step to the next: the compiled step's one saving.

NumPy has no compiler. What a training step repeats that can be saved is its
allocations: an eager step maps a few MiB afresh every time (glibc hands large
freed blocks back to the system), and the kernel faults in and zeroes every
page, about a thousand page faults a LeNet step at batch 128. Inside
``with reusing(workspace):`` the autograd's primitives (:mod:`.autograd`) take
their large arrays from a :class:`Workspace` that outlives the block: a step
run there again and again reuses the same pages, for the same bits.

Outside a workspace, :func:`empty`, :func:`zeros` and :func:`scratch` are
``np.empty`` and ``np.zeros``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

__all__ = ["Workspace", "buffered", "chunk_buffer", "empty", "in_use", "reusing", "scratch", "zeros"]


def buffered(buffer: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The start of the flat, C-contiguous ``buffer`` as a C-contiguous array of ``shape``.

    A convolution in many small chunks copies each chunk's columns into the same buffers,
    allocated once per pass: fresh arrays of a few hundred KiB each time would each be
    new pages for the kernel to fault in and zero, which cost as much as the copies.
    """
    return buffer[: math.prod(shape)].reshape(shape)


class Workspace:
    """Memory kept from one training step to the next, for the large arrays the primitives make.

    A step allocates the same arrays every time: activations, their gradients, a
    convolution's window columns. Allocated afresh, the larger ones are new pages
    for the kernel to fault in and zero at every step (glibc hands large freed
    blocks back to the system and maps them again). Inside :func:`reusing`, the
    primitives draw them from a workspace instead, in two ways:

    * :meth:`empty`, for an array that may outlive the primitive that makes it (an
      output, a gradient, anything a backward rule keeps): it hands out the memory
      of an earlier array of the same shape and dtype only once no array reaches
      that memory any more, not even a view, so nothing alive is ever overwritten;
    * :meth:`scratch`, for a temporary that dies before the primitive that makes it
      returns (window columns, a product's rows): one buffer per purpose, grown to
      the largest request, so a network's many layers share it. Two temporaries
      alive at once have different purposes.
    """

    __slots__ = ("_blocks", "_buffers", "_generation")

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, np.dtype], np.ndarray] = {}
        # (shape, dtype) -> [memory, weak reference to its lease, generation of its last lease] per block
        self._blocks: dict[tuple[tuple[int, ...], np.dtype], list[list[Any]]] = {}
        self._generation = 0

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised array: the memory of an earlier one of this shape and dtype, once nothing reaches it."""
        key = (shape, np.dtype(dtype))
        blocks = self._blocks.setdefault(key, [])
        for block in blocks:
            if block[1]() is None:
                break
        else:
            block = [np.empty(shape, dtype), None, None]
            blocks.append(block)
        lease = _Lease(block[0])
        block[1], block[2] = weakref.ref(lease), self._generation
        return np.asarray(lease)

    def scratch(self, purpose: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A C-contiguous array for a temporary of ``purpose``, in the buffer that purpose used last time."""
        key, size = (purpose, np.dtype(dtype)), math.prod(shape)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[key] = np.empty(size, dtype)
        return buffered(buffer, shape)

    def release_unused(self) -> None:
        """Forget the arrays not handed out since the last call (another batch size's), and start counting anew."""
        for key, blocks in list(self._blocks.items()):
            blocks[:] = [block for block in blocks if block[2] == self._generation or block[1]() is not None]
            if not blocks:
                del self._blocks[key]
        self._generation += 1


class _Lease:
    # The base of an array handed out by Workspace.empty. Every view of that array (a slice, a reshape,
    # an as_strided window, a view of a view) holds the array as its base, and the array holds the lease:
    # the lease lives exactly as long as some array reaches its memory. Once its weak reference is dead,
    # the memory is free.
    __slots__ = ("__array_interface__", "__weakref__", "memory")

    def __init__(self, memory: np.ndarray) -> None:
        self.memory = memory  # kept alive while an array uses it, even if the workspace lets it go
        self.__array_interface__ = memory.__array_interface__


_active: ContextVar[Workspace | None] = ContextVar("convlab_numpy_workspace", default=None)

REUSED_BYTES = 1 << 16
"""Arrays from this size up come from the workspace; malloc serves smaller ones from memory it keeps anyway."""


@contextmanager
def reusing(workspace: Workspace) -> Iterator[Workspace]:
    """Let the primitives run inside draw their large arrays from ``workspace`` instead of fresh memory.

    The results are the same, bit for bit; only where they live differs. A
    workspace serves one thread at a time.
    """
    token = _active.set(workspace)
    try:
        yield workspace
    finally:
        _active.reset(token)


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    # np.empty, from the workspace while one is in use.
    workspace = _active.get()
    if workspace is None or math.prod(shape) * np.dtype(dtype).itemsize < REUSED_BYTES:
        return np.empty(shape, dtype)
    return workspace.empty(shape, dtype)


def zeros(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    # np.zeros, from the workspace while one is in use.
    workspace = _active.get()
    if workspace is None or math.prod(shape) * np.dtype(dtype).itemsize < REUSED_BYTES:
        return np.zeros(shape, dtype)
    out = workspace.empty(shape, dtype)
    out.fill(0)
    return out


def scratch(purpose: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    # np.empty for a temporary that dies before its primitive returns: the workspace's buffer for `purpose`
    # while one is in use (see Workspace.scratch).
    workspace = _active.get()
    return np.empty(shape, dtype) if workspace is None else workspace.scratch(purpose, shape, dtype)


def chunk_buffer(purpose: str, size: int, dtype: Any, chunked: bool) -> np.ndarray | None:
    # The flat buffer a convolution's chunks copy into one after the other (see buffered): the workspace's
    # while one is in use; else a fresh one for several chunks, and None for one (it allocates its own).
    workspace = _active.get()
    if workspace is not None:
        return workspace.scratch(purpose, (size,), dtype)
    return np.empty(size, dtype) if chunked else None


def in_use() -> bool:
    """Whether the primitives running now draw from a workspace."""
    return _active.get() is not None
