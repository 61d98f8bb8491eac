"""Adding a backend touches nothing else: a backend defined in the test suite passes the conformance suites.

The backend (:mod:`synthetic_backend`, NumPy in float64) is registered at run
time, in a fresh pytest process, and the conformance, primitive and gradient
suites run on it exactly as they run on the built-in backends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_synthetic_backend_passes_the_conformance_suites():
    env = {
        **os.environ,
        "CONVLAB_TEST_EXTRA_BACKEND": "synthetic_backend:BACKEND",
        "PYTHONPATH": str(TESTS / "backends"),
    }
    suites = [
        "core/test_conformance.py",
        "core/test_primitives.py",
        "core/test_gradcheck.py",
        "chapter/test_conv_layer.py",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "numpy64", *suites],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, f"{summary}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    assert " passed" in summary and "skipped" not in summary, summary
