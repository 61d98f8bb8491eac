"""thread_settings_kept: a framework's import leaves the process's thread settings as they were."""

from __future__ import annotations

import ctypes
import json
import os

import pytest

from conftest import run_python
from convlab.core.threads import THREAD_VARIABLES, thread_settings_kept


def test_variables_set_or_removed_inside_are_restored(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with thread_settings_kept():
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["MKL_NUM_THREADS"] = "1"
    assert os.environ["OMP_NUM_THREADS"] == "3"
    assert "MKL_NUM_THREADS" not in os.environ


def test_variables_are_restored_when_the_import_fails(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with pytest.raises(ImportError), thread_settings_kept():
        os.environ["OMP_NUM_THREADS"] = "1"
        raise ImportError("the framework's import failed")
    assert "OMP_NUM_THREADS" not in os.environ


def _gnu_openmp_or_skip() -> None:
    try:
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        pytest.skip("no GNU OpenMP runtime (libgomp.so.1) here")


def _run(code: str, **variables: str) -> list[int | None]:
    """The JSON ``code`` prints last, run in a fresh interpreter without the thread variables but ``variables``."""
    return json.loads(run_python(code, clear=THREAD_VARIABLES, **variables).splitlines()[-1])


def test_a_loaded_runtime_gets_its_count_back():
    _gnu_openmp_or_skip()
    before, inside, after = _run(
        """
        import ctypes, json
        from convlab.core.threads import thread_settings_kept
        gomp = ctypes.CDLL("libgomp.so.1")
        before = gomp.omp_get_max_threads()
        with thread_settings_kept():
            gomp.omp_set_num_threads(1)  # what one framework's import does, on the importing thread
            inside = gomp.omp_get_max_threads()
        print(json.dumps([before, inside, gomp.omp_get_max_threads()]))
        """,
        OMP_NUM_THREADS="3",
    )
    assert (before, inside, after) == (3, 1, 3)


@pytest.mark.parametrize("variable", ["5", None])
def test_a_runtime_loaded_inside_gets_the_count_it_starts_with(variable):
    _gnu_openmp_or_skip()
    loaded_before, after = _run(
        """
        import ctypes, json
        from convlab.core.threads import openmp_threads, thread_settings_kept
        loaded_before = "libgomp.so.1" in openmp_threads()
        with thread_settings_kept():
            gomp = ctypes.CDLL("libgomp.so.1")
            gomp.omp_set_num_threads(1)
        print(json.dumps([loaded_before, gomp.omp_get_max_threads()]))
        """,
        **({} if variable is None else {"OMP_NUM_THREADS": variable}),
    )
    assert not loaded_before
    assert after == (5 if variable else len(os.sched_getaffinity(0)))


def test_openmp_threads_never_loads_a_runtime():
    loaded = _run(
        """
        import json
        from convlab.core.threads import OPENMP_RUNTIMES, openmp_threads, _loaded_runtime
        openmp_threads()
        print(json.dumps([name for name in OPENMP_RUNTIMES if _loaded_runtime(name) is not None]))
        """
    )
    assert loaded == []
