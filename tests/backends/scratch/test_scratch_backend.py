"""Adding a backend touches nothing else: one written from scratch against the protocol passes the shared suites.

:mod:`scratch_backend` subclasses :class:`~convlab.backends.base.Backend`
itself and implements only its abstract members. It is registered at run time,
in a fresh pytest process, and the conformance, primitive, gradient, chapter,
``cl.nn`` and LeNet-step suites run on it exactly as they run on the built-in
backends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scratch_backend import ScratchBackend

from convlab.backends.base import Backend

TESTS = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTEST_OPTIONS = ["-q", "-rs", "-p", "no:cacheprovider", "-p", "no:randomly"]
SUITES = [
    "core/test_conformance.py",
    "core/test_primitives.py",
    "core/test_gradcheck.py",
    "chapter/test_conv_layer.py",
    "nn/test_layers.py",
    "nn/test_normalization.py",
    "nn/test_dropout.py",
    "nn/test_blocks.py",
    "train/test_lenet.py",
]


def test_the_scratch_backend_implements_exactly_the_abstract_set():
    written = {name for name in vars(ScratchBackend) if not name.startswith("_")}
    assert written == set(Backend.__abstractmethods__), "the scratch backend implements the abstract set, no more"


@pytest.mark.long
def test_the_scratch_backend_passes_the_shared_suites():
    env = {**os.environ, "CONVLAB_TEST_EXTRA_BACKEND": "scratch_backend:BACKEND", "PYTHONPATH": str(HERE)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST_OPTIONS, "-k", "scratch", *SUITES],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, f"{summary}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    assert " passed" in summary, summary
    # Only what a backend may leave out skips: a reference module's idiomatic step, and a recorded full run; and,
    # where PyTorch is not installed (the NumPy-only sessions), the comparisons with PyTorch's own layers.
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    allowed = (
        "reference module provides no idiomatic LeNet step",
        "no recorded run for scratch",
        "torch is not installed",
    )
    assert all(any(reason in line for reason in allowed) for line in skips), "\n".join(skips)
