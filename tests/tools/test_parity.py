"""Parity: every installed backend against NumPy and against each other (see convlab.parity)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from convlab import parity


@pytest.fixture(scope="module")
def rows():
    return parity.run_parity()


def test_every_installed_backend_is_compared(rows):
    assert {row.backend for row in rows} == set(parity.installed())
    assert {row.check for row in rows} == {c.name for c in parity.checks()} | {"train framework init"}


@pytest.mark.parametrize("check", [c.name for c in parity.checks()] + ["train framework init"])
def test_check_passes_on_every_backend(rows, check):
    failures = [r for r in rows if r.check == check and not r.passed]
    assert not failures, parity.format_table(rows)


def test_deviation_is_scaled_and_detects_differences():
    assert parity.deviation([np.array([100.0])], [np.array([100.0 + 1e-3])], relative=False) == pytest.approx(
        1e-5, rel=1e-3
    )
    assert parity.deviation([np.array([2e-3])], [np.array([1e-3])], relative=True) == pytest.approx(1.0)
    assert parity.deviation([np.ones(2)], [np.ones(3)], relative=False) == float("inf")


def test_cli_json_and_exit_code(tmp_path):
    out = tmp_path / "parity.json"
    result = subprocess.run(
        [sys.executable, "-m", "convlab", "parity", "--backends", "numpy", "--json", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["check", "tolerance", "numpy"]
    records = json.loads(out.read_text())
    assert {r["check"] for r in records} >= {"corr2d loop", "train builtin zeros"}
    assert all(r["passed"] for r in records)
