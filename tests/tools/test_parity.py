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


def test_every_backend_numpy_included_is_held_to_the_float64_oracle(rows):
    for row in rows:
        if row.check != "train framework init":
            assert row.vs_oracle is not None and row.vs_oracle <= row.tolerance, row
    numpy_rows = [row for row in rows if row.backend == "numpy" and row.vs_oracle is not None]
    assert any(row.vs_oracle > 0 for row in numpy_rows)  # float32 against float64: never compared with itself


def test_a_wrong_numpy_result_fails_its_parity_row(monkeypatch):
    real = parity._correlate64
    monkeypatch.setattr(parity, "_correlate64", lambda X, K: real(X, K) * (1 + 1e-4))
    rows = parity.run_parity(["numpy"])
    failed = {row.check for row in rows if not row.passed}
    assert {"corr2d loop", "corr2d native", "conv2d auto", "Conv2D forward+grad"} <= failed
