"""The benchmark keeps working: a tiny run on every installed backend, checked for shape, not speed."""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import pytest
from reference import BOOK_LOSSES

import convlab as cl
from convlab import bench
from convlab.backends.reference import NOT_PROVIDED, reference_function
from convlab.backends.spec import BackendSpec
from convlab.bench.networks import time_lenet_steps
from convlab.bench.timing import Progress
from convlab.bench.workloads import time_training
from convlab.core.registry import available_backends, backend_names, load_backend
from convlab.errors import BackendNotInstalledError

TINY = ["--quick", "--sizes", "8", "--kernels", "2", "--loop-budget", "0.5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``convlab bench`` in its tiny configuration, with --json and (if matplotlib is here) --plot."""
    out = tmp_path_factory.mktemp("bench")
    argv = [*TINY, "--json", str(out / "bench.json")]
    if importlib.util.find_spec("matplotlib") is not None:
        argv += ["--plot", str(out / "bench.png")]
    parser = argparse.ArgumentParser(prog="convlab bench")
    bench.add_arguments(parser)
    args = parser.parse_args(argv)
    capture = pytest.MonkeyPatch()
    printed: list[str] = []
    capture.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
    try:
        status = bench.main(args)
    finally:
        capture.undo()
    return {
        "status": status,
        "out": out,
        "printed": "\n".join(printed),
        "results": json.loads((out / "bench.json").read_text()),
    }


def test_main_succeeds_and_prints_the_tables(run):
    assert run["status"] == 0
    text = run["printed"]
    for heading in (
        "corr2d, 2x2 kernel",
        "copy input (floor)",
        "fastest",
        "train_kernel vs the book's loop",
        "d2l §8 networks, training step at batch 128",
        "targets",
    ):
        assert heading in text
    for name in run["results"]["backends"]:
        assert f"{name} auto" in text


def test_every_installed_backend_is_timed(run):
    results = run["results"]
    assert results["backends"] == available_backends()
    assert set(results["backends"]) | set(results["skipped"]) == set(backend_names())
    assert results["config"]["sizes"] == [8] and results["config"]["kernels"] == [2]
    rows = {(r["backend"], r["method"], r["size"], r["kernel"]): r for r in results["corr2d"]}
    assert rows[("floor", "copy", 8, 2)]["median_s"] > 0
    for name in results["backends"]:
        for method in bench.METHODS:
            row = rows[(name, method, 8, 2)]
            # A built-in backend may not fail a workload: an error here is a failure, not a row to pass over.
            assert "error" not in row, row
            assert row["median_s"] > 0 and row["samples"] >= 1 and row["number"] >= 1
    (fastest,) = results["fastest"]
    assert fastest["size"] == 8 and fastest["kernel"] == 2 and fastest["backend"] in results["backends"]


def test_training_imports_and_memory_are_reported(run):
    results = run["results"]
    assert {row["backend"] for row in results["train"]} == set(results["backends"])
    for row in results["train"]:
        assert "error" not in row, row
        assert row["train_kernel_s"] >= 0 and row["reference_s"] >= 0
        assert row["losses_agree"], f"{row['backend']}: the book-style loop and train_kernel disagree"
    assert results["imports"]["numpy_s"] > 0 and results["imports"]["convlab_s"] > 0
    memory = results["memory"]["vectorized"]
    assert memory["output_bytes"] == 510 * 510 * 4 and memory["peak_extra_bytes"] >= memory["output_bytes"]


def test_targets_are_evaluated(run):
    targets = run["results"]["targets"]
    assert {t["target"] for t in targets} == set(bench.TARGETS)
    for t in targets:
        assert t["passed"] in (True, False, None) and t["limit"] == bench.TARGETS[t["target"]][1]
        assert t["passed"] is None or t["passed"] == (t["value"] <= t["limit"])
    as_min = {**run["results"], "config": {**run["results"]["config"], "stat": "min"}}  # --stat min
    assert [t["target"] for t in bench.evaluate_targets(as_min)] == [t["target"] for t in targets]
    assert "min of 1 samples" in bench.format_report(as_min)
    by_id = {(t["target"], t["subject"]): t for t in targets}
    assert by_id[("b", "numpy")]["passed"] is None  # 1024 and 2048 are not in the tiny run
    assert by_id[("a", "numpy")]["value"] is not None


def test_quick_run_times_bn_lenet_against_each_idiomatic_copy(run):
    results = run["results"]
    rows = results["modern"]
    assert [(row["model"], row["backend"]) for row in rows] == [("bn_lenet", name) for name in results["backends"]]
    for row in rows:
        assert "error" not in row, row
        assert row["convlab_s"] > 0
        has_copy = reference_function(load_backend(row["backend"]), "idiomatic_modern_step") is not None
        assert ("idiomatic_s" in row) == has_copy and ("not_provided" in row) != has_copy
    verdicts = {t["subject"]: t for t in results["targets"] if t["target"] == "k"}
    for row in rows:
        if "idiomatic_s" in row:
            assert verdicts[row["backend"]]["value"] == pytest.approx(row["convlab_s"] / row["idiomatic_s"])
            assert verdicts[row["backend"]]["where"] == "bn_lenet"


def test_modern_targets_take_each_backends_worst_network():
    rows = [
        {"model": "vgg", "backend": "torch", "convlab_s": 1.0, "idiomatic_s": 1.0},
        {"model": "nin", "backend": "torch", "convlab_s": 3.0, "idiomatic_s": 2.0},
        {"model": "vgg", "backend": "numpy", "convlab_s": 1.5, "not_provided": ["idiomatic"]},
        {"model": "nin", "backend": "numpy", "convlab_s": 5.0, "not_provided": ["idiomatic"]},
        {"model": "nin", "backend": "jax", "error": "RuntimeError: no"},
    ]
    config = {"stat": "median", "repeats": 1, "kernels": [], "sizes": []}
    results = {"config": config, "backends": ["torch", "numpy", "jax"], "corr2d": [], "modern": rows}
    verdicts = {(t["target"], t["subject"]): t for t in bench.evaluate_targets(results)}
    assert verdicts[("k", "torch")]["value"] == 1.5 and verdicts[("k", "torch")]["where"] == "nin"
    assert verdicts[("k", "torch")]["passed"] is False
    # NumPy has no idiomatic copy: its steps are held to PyTorch's idiomatic ones, the worst being NiN's 5 / 2
    assert ("k", "numpy") not in verdicts
    assert verdicts[("l", "numpy")]["value"] == 2.5 and verdicts[("l", "numpy")]["where"] == "nin"
    text = bench.format_report(
        {**results, "machine": {"versions": {}, "cpus": 1}, "skipped": {}, "targets": list(verdicts.values())}
    )
    lines = text.splitlines()
    assert any(line.split()[:2] == ["nin", "jax"] and line.endswith("RuntimeError: no") for line in lines), text
    assert any(line.split() == ["nin", "torch", "3000", "43", "2000", "64", "1.50"] for line in lines), text


def test_plot_is_written(run):
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib not installed")
    assert (run["out"] / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", backend_names())
def test_book_style_reference_loops_reproduce_the_book(name):
    try:
        backend = load_backend(name)
    except BackendNotInstalledError as exc:
        pytest.skip(str(exc))
    X = np.ones((6, 8), np.float32)
    X[:, 2:6] = 0
    Y = np.tile(np.array([0, 1, 0, 0, 0, -1, 0], np.float32), (6, 1))
    book_train_kernel = reference_function(backend, "book_train_kernel")
    assert book_train_kernel is not None, f"the built-in {name} backend's reference module has no book_train_kernel"
    losses = book_train_kernel(X, Y, (1, 2), 3e-2, 10)
    assert losses[0] == pytest.approx(12.0)
    for iteration, printed in BOOK_LOSSES.items():
        assert round(losses[iteration - 1], 3) == printed


def test_missing_baselines_are_shown_as_not_provided(run):
    """NumPy's reference module has the book's loop but no conv layer and no idiomatic LeNet of its own."""
    results = run["results"]
    numpy_conv = [row for row in results["conv_layers"] if row["backend"] == "numpy"]
    assert numpy_conv and all(row["not_provided"] == ["framework"] for row in numpy_conv)
    assert next(row for row in results["lenet"] if row["backend"] == "numpy")["not_provided"] == ["idiomatic"]
    assert not any("not_provided" in row for row in results["train"])
    lines = run["printed"].splitlines()
    assert any(line.split()[:1] == ["numpy"] and NOT_PROVIDED in line for line in lines)


def test_a_backend_without_a_reference_module_is_timed_without_its_baselines():
    cl.register_backend(BackendSpec("noreference", "convlab.backends.numpy.adapter:NumpyBackend"))
    try:
        backends = {"noreference": load_backend("noreference")}
        assert reference_function(backends["noreference"], "book_train_kernel") is None
        train = time_training(backends, repeats=1, stat="median", quick=True, progress=Progress(None))
        lenet = time_lenet_steps(backends, repeats=1, stat="median", progress=Progress(None))
    finally:
        cl.unregister_backend("noreference")
    (row,) = train
    assert row["not_provided"] == ["reference"] and row["train_kernel_s"] >= 0
    assert "reference_s" not in row and "losses_agree" not in row and "error" not in row
    assert lenet[0]["not_provided"] == ["idiomatic"] and lenet[0]["convlab_s"] > 0
    results = {
        "machine": {"versions": {}, "cpus": 1},
        "config": {"stat": "median", "repeats": 1, "kernels": [], "sizes": []},
        "backends": ["noreference"],
        "skipped": {},
        "corr2d": [],
        "train": train,
        "lenet": lenet,
    }
    text = bench.format_report({**results, "targets": bench.evaluate_targets(results)})
    assert text.count(NOT_PROVIDED) == 2, text  # the book loop's column and the idiomatic step's


def test_measure_and_synchronize():
    calls = []
    timing = bench.measure(lambda: calls.append(1), repeats=3)
    assert timing["samples"] == 3 and timing["median_s"] >= timing["min_s"] > 0
    assert len(calls) == 2 + 3 * timing["number"]  # warm-up, calibration, samples
    slow = bench.measure(lambda: sum(range(10_000)), repeats=5, budget_s=0.0)
    assert slow["samples"] == 1  # over budget: the warm-up call is the only sample
    y = np.ones((2, 2), np.float32)
    assert load_backend("numpy").synchronize(y) is y


def test_unknown_backend_is_an_error(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.main(parser.parse_args(["--backends", "numpy,fortran", "--quiet"])) == 2
    assert "unknown backend 'fortran'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--sizes", "0"])
