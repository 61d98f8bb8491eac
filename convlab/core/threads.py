"""Keep a framework's import from changing how many threads the other frameworks in the process compute with.

Two of the frameworks change process-wide thread settings when they are
imported, and so slow down the others loaded beside them:

* one sets ``OMP_NUM_THREADS=1`` in the environment, which every process it
  starts inherits (a notebook kernel, a test's fresh interpreter);
* one calls ``omp_set_num_threads`` with half the CPU count on x86 (one
  thread on two cores) on the thread that imports it. The OpenMP runtime is
  shared by every framework built on it, so another framework's kernels then
  run on one thread in that process, whichever of the two came first.
  Measured on two cores, every backend loaded: PyTorch's LeNet step at
  batch 128 took 9.6 to 9.7 ms, against 5.6 to 6.7 ms with the settings kept
  (PyTorch alone: 5.8 ms).

:func:`thread_settings_kept` undoes both around the import. The framework
keeps the settings it took for itself: it read them during the import.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The environment variables that set how many threads a math library starts."""

OPENMP_RUNTIMES = ("libgomp.so.1", "libiomp5.so", "libomp.so")
"""The shared OpenMP runtimes (GNU, Intel, LLVM) whose thread count is kept, where one is loaded."""


def _loaded_runtime(name: str) -> ctypes.CDLL | None:
    """The OpenMP runtime ``name`` if the process has loaded it already (never loads it), else ``None``."""
    no_load = getattr(os, "RTLD_NOLOAD", None)  # POSIX only: elsewhere nothing is kept
    if no_load is None:
        return None
    try:
        return ctypes.CDLL(name, mode=no_load)
    except OSError:
        return None


def _loaded_runtimes() -> dict[str, ctypes.CDLL]:
    """Each of :data:`OPENMP_RUNTIMES` that the process has loaded, by name."""
    runtimes = {name: _loaded_runtime(name) for name in OPENMP_RUNTIMES}
    return {name: lib for name, lib in runtimes.items() if lib is not None and hasattr(lib, "omp_get_max_threads")}


def openmp_threads() -> dict[str, int]:
    """``omp_get_max_threads()`` on this thread for each loaded OpenMP runtime: the threads its next region gets."""
    return {name: int(runtime.omp_get_max_threads()) for name, runtime in _loaded_runtimes().items()}


def _default_openmp_threads(omp_num_threads: str | None) -> int | None:
    """The thread count a runtime loaded now would start with: ``OMP_NUM_THREADS``'s first level, else the CPUs."""
    if omp_num_threads:
        try:
            return int(omp_num_threads.split(",")[0])
        except ValueError:
            return None  # the runtime's own reading of a malformed value: not ours to guess
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity mask on this platform
        return os.cpu_count()


@contextlib.contextmanager
def thread_settings_kept() -> Iterator[None]:
    """Restore :data:`THREAD_VARIABLES` and each OpenMP runtime's thread count on leaving.

    A runtime that was not loaded on entry gets the count it starts with
    (:func:`_default_openmp_threads`), as if nothing had changed it.

    Examples
    --------
    >>> import os
    >>> from convlab.core.threads import thread_settings_kept
    >>> before = os.environ.get("OMP_NUM_THREADS")
    >>> with thread_settings_kept():
    ...     os.environ["OMP_NUM_THREADS"] = "1"
    >>> os.environ.get("OMP_NUM_THREADS") == before
    True
    """
    environment = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    before = openmp_threads()
    try:
        yield
    finally:
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        default = _default_openmp_threads(environment["OMP_NUM_THREADS"])
        for name, runtime in _loaded_runtimes().items():
            wanted = before.get(name, default)
            if wanted is not None and runtime.omp_get_max_threads() != wanted:
                runtime.omp_set_num_threads(wanted)
