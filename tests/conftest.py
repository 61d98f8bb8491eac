"""Fixtures shared by the test suites: one parametrisation over every backend convlab knows."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import convlab as cl
from convlab.core.registry import backend_names

EXTRA_BACKEND = "CONVLAB_TEST_EXTRA_BACKEND"
"""``module:attribute`` of a BackendSpec to register before collection (tests/backends/scratch)."""

if os.environ.get(EXTRA_BACKEND):
    _module, _, _attribute = os.environ[EXTRA_BACKEND].partition(":")
    cl.register_backend(getattr(importlib.import_module(_module), _attribute))


def run_python(code: str, clear: Iterable[str] = (), **env: str) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout (raises on a non-zero exit).

    ``env`` adds to this process's environment and the names in ``clear`` are left out of it.
    """
    cleared = set(clear)
    inherited = {name: value for name, value in os.environ.items() if name not in cleared}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**inherited, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def load_or_skip(name: str):
    """The backend ``name``, or skip the test saying it is not installed.

    Only a framework that is not there is skipped: one that is installed but fails to import
    fails the test, so a broken install cannot pass as a smaller suite.
    """
    try:
        return cl.core.registry.load_backend(name)
    except cl.BackendImportError as exc:
        pytest.fail(f"{name} backend is installed but does not load: {exc}")
    except cl.BackendNotInstalledError as exc:
        pytest.skip(f"{name} backend not installed: {exc}")


@pytest.fixture(params=backend_names())
def backend(request):
    """Each backend in turn, active for the test's duration."""
    load_or_skip(request.param)
    with cl.use_backend(request.param) as active:
        yield active
