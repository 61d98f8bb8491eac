"""Selecting a backend prints nothing the user did not ask for; ``CONVLAB_VERBOSE=1`` shows it all again.

Each check runs a fresh interpreter: what a framework prints, it prints once, as it loads.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convlab.core.registry import backend_names, specs

ROOT = Path(__file__).resolve().parents[2]


def run_python(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in the repository, in this environment less the settings that hide or show log lines."""
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "CONVLAB_VERBOSE")}
    env.update(environment)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def skip_unless_installed(name: str) -> None:
    if not specs()[name].is_installed():
        pytest.skip(f"{name} is not installed")


@pytest.mark.parametrize("name", backend_names())
def test_demo_prints_nothing_on_stderr(name):
    skip_unless_installed(name)
    result = run_python("-m", "convlab", "demo", "--backend", name)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"convlab demo --backend {name} wrote on stderr:\n{result.stderr}"


def test_info_prints_nothing_on_stderr():
    # info loads every installed backend in one process: each framework's logging meets the others'.
    result = run_python("-m", "convlab", "info")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"convlab info wrote on stderr:\n{result.stderr}"


def log_messages(stderr: str) -> set[str]:
    """The lines of ``stderr`` less absl's prefix (level, date, time, thread), which differ from run to run."""
    return {re.sub(r"^[IWEF]\d{4} \S+\s+\d+ ", "", line) for line in stderr.splitlines() if line.strip()}


def test_convlab_verbose_shows_what_tensorflow_prints():
    skip_unless_installed("tensorflow")
    bare = run_python("-c", "import tensorflow")
    if not bare.stderr:
        pytest.skip("this TensorFlow prints nothing as it loads: there is nothing to hide")
    verbose = run_python("-c", "import convlab.backends.tensorflow.adapter", CONVLAB_VERBOSE="1")
    assert verbose.returncode == 0, verbose.stderr
    missing = log_messages(bare.stderr) - log_messages(verbose.stderr)
    assert not missing, f"hidden under CONVLAB_VERBOSE=1: {sorted(missing)}"
