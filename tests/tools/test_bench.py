"""The benchmark keeps working: a tiny run on every installed backend, checked for shape, not speed."""

from __future__ import annotations

import argparse
import collections
import importlib.util
import itertools
import json
import math
import statistics

import numpy as np
import pytest
from reference import BOOK_LOSSES

import convlab as cl
from convlab import bench
from convlab.backends.reference import NOT_PROVIDED, reference_function
from convlab.backends.spec import BackendSpec
from convlab.bench.networks import time_lenet_steps, time_modern_steps
from convlab.bench.stats import median_interval, min_samples, paired_ratios
from convlab.bench.timing import SETTLE_S, Comparison, Progress
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
            # the median of the paired per-sample ratios, not the ratio of the medians
            paired = paired_ratios(row["convlab_times_s"], row["idiomatic_times_s"])
            assert verdicts[row["backend"]]["value"] == pytest.approx(statistics.median(paired))
            assert verdicts[row["backend"]]["where"] == "bn_lenet"


def _verdicts(backends, **sections):
    """The results of a run with only ``sections`` (rows by section name), and its verdicts by (target, subject)."""
    config = {"stat": "median", "repeats": 1, "kernels": [], "sizes": []}
    results = {"config": config, "backends": backends, "corr2d": [], **sections}
    return results, {(t["target"], t["subject"]): t for t in bench.evaluate_targets(results)}


def test_modern_targets_take_each_backends_worst_network():
    rows = [
        {"model": "vgg", "backend": "torch", "convlab_s": 1.0, "idiomatic_s": 1.0},
        {"model": "nin", "backend": "torch", "convlab_s": 3.0, "idiomatic_s": 2.0},
        {"model": "vgg", "backend": "numpy", "convlab_s": 1.5, "not_provided": ["idiomatic"]},
        {"model": "nin", "backend": "numpy", "convlab_s": 5.0, "not_provided": ["idiomatic"]},
        {"model": "nin", "backend": "jax", "error": "RuntimeError: no"},
    ]
    results, verdicts = _verdicts(["torch", "numpy", "jax"], modern=rows)
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


def test_where_auto_compiles_an_epoch_the_modern_target_judges_the_compiled_step():
    rows = [
        {
            "model": "vgg",
            "backend": "mxnet",
            "auto_compiles": True,
            "convlab_s": 3.0,
            "idiomatic_s": 2.0,
            "compiled_s": 2.2,
        },
        {
            "model": "nin",
            "backend": "mxnet",
            "auto_compiles": True,
            "convlab_s": 2.0,
            "idiomatic_s": 2.0,
            "compiled_s": 1.8,
        },
        {"model": "vgg", "backend": "torch", "convlab_s": 1.1, "idiomatic_s": 1.0},
        {"model": "vgg", "backend": "numpy", "auto_compiles": True, "convlab_s": 3.0, "compiled_s": 1.8},
    ]
    results, verdicts = _verdicts(["mxnet", "torch", "numpy"], modern=rows)
    # so is NumPy's, held to PyTorch's idiomatic step: 1.8 / 1.0, not 3.0 / 1.0
    assert verdicts[("l", "numpy")]["value"] == pytest.approx(1.8) and verdicts[("l", "numpy")]["passed"] is True
    assert verdicts[("l", "numpy")]["where"] == "vgg, compiled"
    # MXNet's eager VGG (1.5x) is not what an epoch trains on: its compiled step (1.1x) is
    assert verdicts[("k", "mxnet")]["value"] == pytest.approx(1.1) and verdicts[("k", "mxnet")]["passed"] is True
    assert verdicts[("k", "mxnet")]["where"] == "vgg, compiled"
    assert verdicts[("k", "torch")]["value"] == pytest.approx(1.1) and verdicts[("k", "torch")]["where"] == "vgg"
    text = bench.format_report(
        {**results, "machine": {"versions": {}, "cpus": 1}, "skipped": {}, "targets": list(verdicts.values())}
    )
    lines = [line.split() for line in text.splitlines()]
    assert ["vgg", "mxnet", "3000", "43", "2000", "64", "1.50", "2200", "1.10"] in lines, text
    assert ["vgg", "torch", "1100", "116", "1000", "128", "1.10", "-", "-"] in lines, text


def test_numpys_conv_layer_is_held_to_pytorchs_at_its_worst_shape():
    rows = [
        {"backend": "torch", "workload": "1->6", "convlab_s": 1.1, "framework_s": 1.0},
        {"backend": "torch", "workload": "64->64", "convlab_s": 4.0, "framework_s": 4.0},
        {"backend": "numpy", "workload": "1->6", "convlab_s": 1.5, "not_provided": ["framework"]},
        {"backend": "numpy", "workload": "64->64", "convlab_s": 10.0, "not_provided": ["framework"]},
    ]
    _, verdicts = _verdicts(["torch", "numpy"], conv_layers=rows)
    # against PyTorch's own layer (1.0 and 4.0), not convlab's on PyTorch: the worst is 10 / 4
    assert verdicts[("o", "numpy")]["value"] == 2.5 and verdicts[("o", "numpy")]["where"] == "64->64"
    assert verdicts[("o", "numpy")]["passed"] is False
    assert ("f", "numpy") not in verdicts and verdicts[("f", "torch")]["value"] == pytest.approx(1.1)


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
    numpy_lenet = next(row for row in results["lenet"] if row["backend"] == "numpy")
    assert numpy_lenet["not_provided"] == ["idiomatic"]  # no LeNet of its own
    assert not any("compiled_s" in row for row in results["lenet"])  # --quick compiles nothing
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
    assert lenet[0]["not_provided"] == ["idiomatic"] and lenet[0]["convlab_s"] > 0 and lenet[0]["compiled_s"] > 0
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


def test_a_compiled_step_is_timed_apart_from_the_eager_one():
    cl.register_backend(BackendSpec("compiledfake", "convlab.backends.numpy.adapter:NumpyBackend"))
    try:
        backend = load_backend("compiledfake")
        compiled_calls = []

        def compiled_train_step(module, loss, lr):  # the eager step, counted, under the compiled step's name
            step = backend.train_step(module, loss, lr)
            return lambda X, Y: compiled_calls.append(1) or step(X, Y)

        backend.compiled_train_step = compiled_train_step
        backend.compile_break_even_steps = None  # a compiled step that never pays over a run
        (with_compiled,) = time_lenet_steps({"compiledfake": backend}, 1, "median", Progress(None))
        (without,) = time_lenet_steps({"compiledfake": backend}, 1, "median", Progress(None), compiled=False)
        lenet_calls = len(compiled_calls)
        # a §8 network's compiled step is timed only where compile="auto" would compile an epoch
        (eager_modern,) = time_modern_steps({"compiledfake": backend}, 1, "median", Progress(None), ("bn_lenet",))
        assert len(compiled_calls) == lenet_calls and "compiled_s" not in eager_modern
        backend.compile_break_even_steps = 10
        (auto_modern,) = time_modern_steps({"compiledfake": backend}, 1, "median", Progress(None), ("bn_lenet",))
    finally:
        cl.unregister_backend("compiledfake")
    assert with_compiled["compiled_s"] > 0 and with_compiled["not_provided"] == ["idiomatic"]
    assert lenet_calls >= 3  # warm-up, calibration and at least one sample
    assert "compiled_s" not in without and without["not_provided"] == ["idiomatic"]
    assert auto_modern["auto_compiles"] and auto_modern["compiled_s"] > 0 and len(compiled_calls) >= lenet_calls + 3


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


# -- the statistics behind the verdicts: synthetic samples and a fake clock, never real time --------------------


class FakeClock:
    """A clock that moves only when a fake call says it took some seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def call(self, durations):
        """A call without arguments whose successive calls take ``durations`` (cycled) seconds."""
        durations = itertools.cycle(durations)

        def fn():
            self.now += next(durations)

        return fn


def test_side_by_side_rounds_rotate_which_function_goes_first():
    clock, calls = FakeClock(), []

    def counted(key):
        tick = clock.call([1.0])
        return lambda: calls.append(key) or tick()

    bench.measure_side_by_side({key: counted(key) for key in "abc"}, repeats=6, clock=clock)
    # warm-up and calibration first, a function at a time; then rounds of one call each (a call takes 1 s),
    # the second pass through the rotations backwards
    assert "".join(calls) == "aabbcc" + "abc" + "bca" + "cab" + "cba" + "acb" + "bac"


@pytest.mark.parametrize("keys", ["ab", "abc", "abcd", "abcde"])
def test_over_its_rounds_each_function_goes_first_and_follows_each_other_equally_often(keys):
    clock, calls = FakeClock(), []

    def counted(key):
        tick = clock.call([1.0])
        return lambda: calls.append(key) or tick()

    n_rounds = len(keys) * (2 if len(keys) % 2 else 1)
    bench.measure_side_by_side({key: counted(key) for key in keys}, repeats=n_rounds, clock=clock)
    sampled = "".join(calls[2 * len(keys) :])
    rounds = [sampled[i : i + len(keys)] for i in range(0, len(sampled), len(keys))]
    assert len(rounds) == n_rounds and all(sorted(r) == sorted(keys) for r in rounds), rounds
    firsts = collections.Counter(r[0] for r in rounds)
    followers = collections.Counter(pair for r in rounds for pair in itertools.pairwise(r))
    pairs = [(a, b) for a in keys for b in keys if a != b]
    assert set(firsts.values()) == {n_rounds // len(keys)} and len(firsts) == len(keys), firsts
    assert {followers[pair] for pair in pairs} == {n_rounds // len(keys)}, followers


def test_settled_samples_each_follow_an_untimed_call_of_the_same_function():
    clock, calls = FakeClock(), []

    def counted(key):
        tick = clock.call([1.0])
        return lambda: calls.append(key) or tick()

    timings = bench.measure_side_by_side({key: counted(key) for key in "ab"}, repeats=2, clock=clock, settle=True)
    # warm-up and calibration; then each sample (timed) right after the same function's untimed call
    assert "".join(calls) == "aabb" + "aabb" + "bbaa"
    assert all(timing["samples"] == 2 for timing in timings.values())


def test_a_settled_sample_follows_untimed_calls_lasting_the_settling_time():
    clock, calls = FakeClock(), []
    tick = clock.call([0.3 * SETTLE_S])
    fns = {"a": lambda: calls.append("a") or tick()}
    timings = bench.measure_side_by_side(fns, repeats=3, clock=clock, settle=True)
    assert timings["a"]["number"] == 1 and timings["a"]["samples"] == 3
    # warm-up and calibration; then per sample four untimed calls (1.2 settling times) and the timed one
    assert len(calls) == 2 + 3 * (4 + 1)


def test_auto_against_the_fastest_of_another_backend_is_unpaired():
    # Each backend's corr2d methods are timed apart from the others': their samples do not pair up.
    def row(backend, method, times):
        return {
            "backend": backend,
            "method": method,
            "size": 1024,
            "kernel": 3,
            "times_s": times,
            "median_s": statistics.median(times),
            "picks": "native",
        }

    slow, fast = [3.0, 3.1, 3.2, 3.3, 3.4, 3.5], [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    rows = [
        row("numpy", "auto", slow),
        row("numpy", "vectorized", slow),
        row("numpy", "native", slow),
        row("jax", "auto", fast),
        row("jax", "vectorized", fast),
        row("jax", "native", fast),
    ]
    config = {"stat": "median", "repeats": 6, "kernels": [3], "sizes": [1024]}
    verdicts = {
        (t["target"], t["subject"]): t
        for t in bench.evaluate_targets({"config": config, "backends": ["numpy", "jax"], "corr2d": rows})
    }
    numpy_b = verdicts[("b", "numpy")]
    ratio, low, high = bench.stats.unpaired_ratio_interval(slow, fast)
    assert (numpy_b["value"], numpy_b["low"], numpy_b["high"]) == (ratio, low, high)
    assert numpy_b["value"] != statistics.median(paired_ratios(slow, fast))
    jax_b = verdicts[("b", "jax")]  # its own fastest: paired
    assert jax_b["value"] == 1.0 and jax_b["samples"] == 6


def test_median_interval_is_the_sign_tests():
    assert median_interval(list(range(20))) == (9.5, 5, 14)
    assert median_interval(list(range(100)))[1:] == (39, 60)  # the textbook ranks 40 and 61 (1-based)
    assert median_interval([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)  # too few for 95%: the whole range
    assert median_interval([2.0]) == (2.0, 2.0, 2.0)
    assert min_samples() == 6
    with pytest.raises(ValueError, match="values"):
        median_interval([])
    with pytest.raises(ValueError, match="level"):
        median_interval([1.0], level=1.5)
    with pytest.raises(ValueError, match="numerator, denominator"):
        paired_ratios([1.0, 2.0], [1.0])
    assert paired_ratios([1.0, 1.0], [2.0, 0.0]) == [0.5, math.inf]  # a difference noise made negative is slow


def _lenet_rows(ratios_by_backend):
    """LeNet rows whose idiomatic step takes 10 ms in every sample and convlab's the given ratios of that."""
    return [
        {
            "backend": name,
            "convlab_s": statistics.median(ratios) * 0.01,
            "idiomatic_s": 0.01,
            "convlab_times_s": [ratio * 0.01 for ratio in ratios],
            "idiomatic_times_s": [0.01] * len(ratios),
        }
        for name, ratios in ratios_by_backend.items()
    ]


def test_a_verdict_is_pass_fail_or_within_noise_by_the_ratios_interval():
    limit = bench.TARGETS["h"][1]  # 1.15
    noise = [0.97, 1.0, 1.03, 0.99, 1.01, 1.02, 0.98, 1.0, 1.01, 0.99]
    lenet = _lenet_rows(
        {
            "torch": [0.9 * r for r in noise],  # 0.88 to 0.92 (the 2nd smallest to the 2nd largest of 10): within 1.15
            "jax": [1.4 * r for r in noise],  # clearly over
            "mxnet": [1.15 * r for r in noise],  # 1.13 to 1.17: the run cannot tell
        }
    )
    config = {"stat": "median", "repeats": 5, "budget_s": 2.0, "kernels": [], "sizes": []}
    results = {"config": config, "backends": ["torch", "jax", "mxnet"], "corr2d": [], "lenet": lenet}
    verdicts = {t["subject"]: t for t in bench.evaluate_targets(results) if t["target"] == "h"}
    assert {name: t["verdict"] for name, t in verdicts.items()} == {
        "torch": "PASS",
        "jax": "FAIL",
        "mxnet": "WITHIN NOISE",
    }
    assert [verdicts[name]["passed"] for name in ("torch", "jax", "mxnet")] == [True, False, None]
    mxnet = verdicts["mxnet"]
    assert mxnet["low"] <= limit < mxnet["high"] and mxnet["samples"] == len(noise)
    assert mxnet["value"] == pytest.approx(1.15)  # the median of the paired ratios
    json.dumps(verdicts)  # --json writes them
    text = bench.format_report(
        {**results, "machine": {"versions": {}, "cpus": 1}, "skipped": {}, "targets": list(verdicts.values())}
    )
    row = next(line for line in text.splitlines() if "(h)" in line and "mxnet" in line)
    assert "WITHIN NOISE" in row and "1.13x to 1.17x" in row, row
    lenet_row = next(line for line in text.splitlines() if line.split()[:1] == ["jax"])
    assert lenet_row.split()[4] == "1.37-1.43", lenet_row  # the spread column of the LeNet table


def test_a_target_over_several_workloads_is_judged_by_its_worst():
    # A FAIL anywhere fails the target, even where another workload's figure is larger but within noise.
    rows = [
        {"model": "vgg", "backend": "torch", "convlab_s": 1.3, "idiomatic_s": 1.0},  # a bare figure: FAIL
        {"model": "nin", "backend": "torch", "convlab_s": 1.5, "idiomatic_s": 1.0},
    ]
    rows[1] |= {"convlab_times_s": [1.0, 2.0] * 4, "idiomatic_times_s": [1.0] * 8}  # 1x to 2x: within noise
    config = {"stat": "median", "repeats": 1, "kernels": [], "sizes": []}
    results = {"config": config, "backends": ["torch"], "corr2d": [], "modern": rows}
    (k,) = [t for t in bench.evaluate_targets(results) if t["target"] == "k"]
    assert k["verdict"] == "FAIL" and k["where"] == "vgg" and k["value"] == pytest.approx(1.3)


def test_a_single_sample_is_within_noise_and_a_bare_figure_is_judged_as_it_stands():
    config = {"stat": "median", "repeats": 1, "kernels": [], "sizes": []}
    lenet = _lenet_rows({"tensorflow": [2.0]})  # twice as slow, once: no spread to judge it by
    lenet.append({"backend": "torch", "convlab_s": 2.0, "idiomatic_s": 1.0})  # saved without samples
    results = {"config": config, "backends": ["tensorflow", "torch"], "corr2d": [], "lenet": lenet}
    verdicts = {t["subject"]: t for t in bench.evaluate_targets(results) if t["target"] == "h"}
    assert verdicts["tensorflow"]["verdict"] == "WITHIN NOISE" and verdicts["tensorflow"]["samples"] == 1
    assert verdicts["torch"]["verdict"] == "FAIL" and verdicts["torch"]["samples"] == 0


def test_sampling_stops_as_soon_as_a_clear_ratio_is_settled():
    clock = FakeClock()
    fns = {"convlab": clock.call([1.0]), "idiomatic": clock.call([2.0])}  # 0.5x against 1.15x
    until = [Comparison("convlab", ("idiomatic",), 1.15)]
    timings = bench.measure_side_by_side(fns, repeats=3, until=until, budget_s=1000.0, clock=clock)
    # the first look: at 6 samples, the fewest whose range is a 95% interval
    assert timings["convlab"]["samples"] == timings["idiomatic"]["samples"] == min_samples() == 6
    assert timings["convlab"]["times_s"] == [1.0] * 6 and timings["idiomatic"]["median_s"] == 2.0
    fixed = bench.measure_side_by_side(fns, repeats=3, clock=clock)  # nothing to settle: exactly `repeats`
    assert fixed["convlab"]["samples"] == 3


def test_sampling_stops_at_the_budget_when_the_ratio_straddles_its_limit():
    clock = FakeClock()
    fns = {"convlab": clock.call([0.8, 1.5]), "idiomatic": clock.call([1.0])}  # 0.8x and 1.5x in turns
    until = [Comparison("convlab", ("idiomatic",), 1.15)]
    timings = bench.measure_side_by_side(fns, repeats=5, until=until, budget_s=100.0, clock=clock)
    n = timings["convlab"]["samples"]
    # the 6 pairs of a 95% interval, then turns of 2.15 s on average (0.8 or 1.5, then 1.0) for 100 s
    assert n == 6 + math.ceil(100 / 2.15) and n == timings["idiomatic"]["samples"]
    ratios = paired_ratios(timings["convlab"]["times_s"], timings["idiomatic"]["times_s"])
    _, low, high = median_interval(ratios)
    assert low < 1.15 < high  # never settled: the budget stopped it
    no_budget = bench.measure_side_by_side(fns, repeats=5, until=until, budget_s=0.0, clock=clock)
    assert no_budget["convlab"]["samples"] == min_samples()  # the fewest that make a 95% interval


def test_comparisons_pick_the_faster_denominator_and_skip_failed_calls():
    times = {"auto": [1.0] * 6, "native": [3.0] * 6, "vectorized": [2.0] * 6}
    assert Comparison("auto", ("native", "vectorized"), 1.05).ratios(times) == [0.5] * 6
    clock = FakeClock()

    def broken():
        raise RuntimeError("no")

    fns = {"auto": clock.call([1.0]), "native": broken}
    timings = bench.measure_side_by_side(
        fns, repeats=2, until=[Comparison("auto", ("native",), 1.05)], budget_s=50.0, clock=clock
    )
    assert timings["native"] == {"error": "RuntimeError: no"} and timings["auto"]["samples"] == 2


def test_the_first_calls_cost_is_reported_apart_from_the_samples():
    clock = FakeClock()
    compiled = clock.call([5.0] + [1.0] * 100)  # the first call compiles
    timing = bench.measure_side_by_side({"step": compiled}, repeats=3, clock=clock)["step"]
    assert timing["times_s"] == [1.0] * 3
    assert timing["first_s"] == 5.0 and timing["compile_s"] == 4.0
    assert bench.measure(clock.call([1.0]), repeats=2, clock=clock)["compile_s"] == 0.0


def test_budget_option():
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert parser.parse_args(["--budget", "0"]).budget == 0.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--budget", "-1"])
    with pytest.raises(ValueError, match="budget_s"):
        bench.run_benchmark(backends=["numpy"], budget_s=-1.0, progress=None)
