"""The targets of ``convlab bench``: ratios measured side by side in the same run, each PASS, FAIL or WITHIN NOISE.

Each figure is the median of its paired ratios (sample ``i`` of one timing
over sample ``i`` of the other, taken in turns), with a 95% interval
(:mod:`convlab.bench.stats`); the verdict is PASS when the whole interval is
within the limit, FAIL when none of it is, and WITHIN NOISE when the run
cannot tell. With fewer than 6 samples the interval is their range, which
holds the median less often (94% at 5, 50% at 2), and a single sample, which
shows no spread, is WITHIN NOISE. Figures without samples (a count of
bytes, results saved before samples were kept) are judged on the figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from convlab.bench.limits import TARGETS
from convlab.bench.stats import FAIL, PASS, WITHIN_NOISE, median_interval, paired_ratios, unpaired_ratio_interval
from convlab.bench.stats import verdict as judge
from convlab.bench.workloads import fastest_by_shape

Ratio = tuple[float, float, float, int]
"""A measured figure: ``(median, low, high, samples)``, ``[low, high]`` its 95% interval (0 samples: a bare figure)."""


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdicts on :data:`TARGETS` for the results of :func:`~convlab.bench.run_benchmark`.

    Parameters
    ----------
    results : dict
        What :func:`~convlab.bench.run_benchmark` returns (``targets`` aside);
        its ``config["stat"]`` says which statistic of the samples picks the
        fastest method and judges rows saved without samples.

    Returns
    -------
    list of dict
        ``{"target", "what", "subject", "value", "low", "high", "samples",
        "limit", "verdict", "passed", "where"}`` for each target and backend
        (one row for ``d`` and ``e``). ``value`` is the median paired ratio
        (for ``d`` the median difference in seconds), ``[low, high]`` its 95%
        interval, ``samples`` the count of pairs behind it; where a target
        holds several workloads, the row is its worst (a FAIL before a WITHIN
        NOISE before a PASS, then the largest figure). ``verdict`` is
        ``"PASS"``, ``"FAIL"``, ``"WITHIN NOISE"`` or ``"n/a"`` (not
        measured); ``passed`` is ``True``, ``False`` or ``None`` (within
        noise, or not measured).
    """
    stat = results["config"]["stat"]
    rows = [row for row in results["corr2d"] if "error" not in row]
    by_shape = {(r["backend"], r["method"], r["size"], r["kernel"]): r for r in rows}
    fastest = fastest_by_shape(results["corr2d"], stat)
    out = [_verdict("a", name, *_auto_against_its_rivals(name, by_shape, stat)) for name in results["backends"]]
    for name in results["backends"]:
        # each backend's methods are timed apart from the others' (time_corr2d): across backends, unpaired
        ratios = [
            (_across(by_shape[(name, "auto", n, 3)], fastest[(n, 3)], stat), f"{n}x{n}, 3x3")
            for n in (1024, 2048)
            if (name, "auto", n, 3) in by_shape and fastest.get((n, 3))
        ]
        out.append(_verdict("b", name, *_worst(ratios, "b", "not measured (needs 1024 or 2048 with 3x3)")))
    for name in results["backends"] if results.get("train") else []:
        ratios = [
            (_paired(row, "train_kernel_", row, "reference_"), row["workload"])
            for row in results["train"]
            if row["backend"] == name and row.get("reference_s")
        ]
        out.append(_verdict("c", name, *_worst(ratios, "c", "not measured")))
    if results.get("imports"):
        out.append(_verdict("d", "convlab", _import_difference(results["imports"]), f"fresh processes, {stat}"))
    if results.get("memory"):
        memory = results["memory"]
        where = f"{memory['size']}x{memory['size']}, tracemalloc"
        out.append(_verdict("e", "numpy", _bare(memory["vectorized"]["ratio"]), where))  # counted, not timed
    out += _network_verdicts(results)
    return out


def _network_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    # Targets f to o: cl.nn and LeNet against each framework's own way, and data loading against a step.
    out = []
    conv = [row for row in results.get("conv_layers", []) if "error" not in row]
    for name in results["backends"] if conv else []:
        ratios = [
            (_paired(r, "convlab_", r, "framework_"), r["workload"])
            for r in conv
            if r["backend"] == name and "framework_s" in r
        ]
        if ratios:
            out.append(_verdict("f", name, *_worst(ratios, "f", "not measured")))
    # Target (o): NumPy's layer against PyTorch's own at each shape, timed apart (NumPy has no framework layer)
    torch_layers = {r["workload"]: r for r in conv if r["backend"] == "torch" and "framework_s" in r}
    numpy_ratios = [
        (_unpaired(r, "convlab_", torch_layers[r["workload"]], "framework_"), r["workload"])
        for r in conv
        if r["backend"] == "numpy" and r["workload"] in torch_layers
    ]
    if numpy_ratios:
        out.append(_verdict("o", "numpy", *_worst(numpy_ratios, "o", "not measured")))
    steps = {row["backend"]: row for row in results.get("lenet", []) if "error" not in row}
    for name, row in steps.items():
        if "idiomatic_s" in row:
            out.append(_verdict("h", name, _paired(row, "convlab_", row, "idiomatic_"), "batch 128"))
    for name, row in steps.items():
        if "compiled_s" in row and "idiomatic_s" in row:
            target = "n" if row.get("idiomatic_compiled") else "m"
            compile_s = row.get("compiled_compile_s")
            where = "batch 128" if compile_s is None else f"batch 128, compiled in {compile_s:.1f} s"
            out.append(_verdict(target, name, _paired(row, "compiled_", row, "idiomatic_"), where))
        elif "compiled" in row.get("not_provided", ()):
            out.append(_verdict("m", name, None, "no compiled training step on this backend"))
    if "numpy" in steps and "idiomatic_s" in steps.get("torch", {}):
        ratio = _unpaired(steps["numpy"], "convlab_", steps["torch"], "idiomatic_")
        out.append(_verdict("i", "numpy", ratio, "batch 128"))
    for row in results.get("data", []):
        if row.get("ratio") is not None:
            step = steps.get(row["backend"], {})
            ratio = _unpaired(row, "batch_", step, "convlab_") if "convlab_s" in step else _bare(row["ratio"])
            out.append(_verdict("j", row["backend"], ratio, f"{row['batch_s'] * 1e3:.2f} ms a batch"))
    out += _modern_verdicts(results.get("modern", []))
    measured = {verdict["target"] for verdict in out}
    unmeasured = "not measured (needs a framework's own layer, PyTorch, or Fashion-MNIST in this run)"
    out += [_verdict(target, "-", None, unmeasured) for target in "fhijklmno" if target not in measured]
    return out


def _modern_verdicts(modern: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Targets k and l: each §8 network's step against the framework's idiomatic one, and NumPy's against PyTorch's.
    rows = [row for row in modern if "error" not in row]
    out = []
    for name in dict.fromkeys(row["backend"] for row in rows):
        ratios = [
            (_paired(r, _trained(r), r, "idiomatic_"), _where(r))
            for r in rows
            if r["backend"] == name and "idiomatic_s" in r
        ]
        if ratios:
            out.append(_verdict("k", name, *_worst(ratios, "k", "not measured")))
    torch = {row["model"]: row for row in rows if row["backend"] == "torch" and "idiomatic_s" in row}
    ratios = [
        (_unpaired(r, _trained(r), torch[r["model"]], "idiomatic_"), _where(r))
        for r in rows
        if r["backend"] == "numpy" and r["model"] in torch
    ]
    if ratios:
        out.append(_verdict("l", "numpy", *_worst(ratios, "l", "not measured")))
    return out


def _trained(row: dict[str, Any]) -> str:
    # The step train_classifier takes over an epoch: the compiled one where compile="auto" compiles.
    return "compiled_" if row.get("auto_compiles") and "compiled_s" in row else "convlab_"


def _where(row: dict[str, Any]) -> str:
    return f"{row['model']}, compiled" if _trained(row) == "compiled_" else row["model"]


def _auto_against_its_rivals(
    name: str, by_shape: dict[tuple[str, str, int, int], dict[str, Any]], stat: str
) -> tuple[Ratio | None, str]:
    # Target (a): auto over the faster of native and vectorized, at its worst shape.
    ratios, pick_ratios = [], []
    for (backend, method, n, k), auto in by_shape.items():
        if backend != name or method != "auto":
            continue
        rivals = [by_shape.get((backend, other, n, k)) for other in ("native", "vectorized")]
        if None in rivals:
            continue
        best_rival = min(rivals, key=lambda row: row[f"{stat}_s"])
        ratios.append((_paired(auto, "", best_rival, "", stat), f"{n}x{n}, {k}x{k}"))
        # the time of the method auto dispatches to: tells a wrong pick from noise and dispatch cost
        pick = by_shape[(backend, auto["picks"], n, k)]
        pick_ratios.append(pick[f"{stat}_s"] / best_rival[f"{stat}_s"])
    worst, where = _worst(ratios, "a", "not measured")
    if worst is not None:
        where += f"; auto's pick alone: worst {max(pick_ratios):.2f}x"
    return worst, where


def _paired(a: dict[str, Any], a_label: str, b: dict[str, Any], b_label: str, stat: str = "median") -> Ratio:
    """``a``'s timing ``a_label`` over ``b``'s ``b_label``: the median of their paired ratios and its interval.

    A labelled timing's samples are ``<label>times_s`` and its figure
    ``<label>s``; a bare measurement (label ``""``, a corr2d row) has
    ``times_s`` and ``<stat>_s``. Samples of unequal counts were not taken in
    turns (:func:`_unpaired`); rows without samples give the bare ratio.
    """
    a_times, b_times = a.get(f"{a_label}times_s"), b.get(f"{b_label}times_s")
    if a_times and b_times and len(a_times) == len(b_times):
        ratios = paired_ratios(a_times, b_times)
        return (*median_interval(ratios), len(ratios))
    if a_times and b_times:
        return _unpaired(a, a_label, b, b_label)
    a_figure, b_figure = (f"{label}s" if label else f"{stat}_s" for label in (a_label, b_label))
    return _bare(a[a_figure] / b[b_figure])


def _across(auto: dict[str, Any], fastest: dict[str, Any], stat: str) -> Ratio:
    """A ``corr2d`` row over the fastest of its shape: paired within a backend, unpaired across backends."""
    if auto["backend"] == fastest["backend"] or not (auto.get("times_s") and fastest.get("times_s")):
        return _paired(auto, "", fastest, "", stat)
    return _unpaired(auto, "", fastest, "")


def _unpaired(a: dict[str, Any], a_label: str, b: dict[str, Any], b_label: str) -> Ratio:
    """Like :func:`_paired` for timings taken apart: the ratio of medians, and the widest their intervals allow."""
    a_times, b_times = a.get(f"{a_label}times_s"), b.get(f"{b_label}times_s")
    if not (a_times and b_times):
        return _bare(a[f"{a_label}s"] / b[f"{b_label}s"])
    return (*unpaired_ratio_interval(a_times, b_times), min(len(a_times), len(b_times)))


def _import_difference(imports: dict[str, Any]) -> Ratio:
    # Target (d): the fresh processes ran in turns, so the i-th of each pair up.
    samples = imports.get("samples") or {}
    numpy, ours = samples.get("numpy"), samples.get("convlab")
    if not numpy or not ours or len(numpy) != len(ours):
        return _bare(imports["extra_s"])
    differences = [b - a for a, b in zip(numpy, ours, strict=True)]
    return (*median_interval(differences), len(differences))


def _bare(value: float) -> Ratio:
    return value, value, value, 0


_RANK = {PASS: 0, WITHIN_NOISE: 1, FAIL: 2}


def _worst(ratios: Sequence[tuple[Ratio, str]], target: str, unmeasured: str) -> tuple[Ratio | None, str]:
    # The workload that decides the verdict: a FAIL before a WITHIN NOISE before a PASS, then the largest figure
    # (the first such workload on a tie).
    limit = TARGETS[target][1]
    if not ratios:
        return None, unmeasured
    return max(ratios, key=lambda item: (_RANK[judge(item[0][1], item[0][2], limit)], item[0][0]))


def _verdict(target: str, subject: str, ratio: Ratio | None, where: str) -> dict[str, Any]:
    what, limit = TARGETS[target]
    if ratio is None or math.isnan(ratio[0]):
        value, low, high, samples, state = (None if ratio is None else ratio[0]), None, None, 0, "n/a"
    else:
        (value, low, high, samples), state = ratio, judge(ratio[1], ratio[2], limit)
        if samples == 1:  # one sample shows no spread, so it cannot tell a difference from noise
            state = WITHIN_NOISE
    return {
        "target": target,
        "what": what,
        "subject": subject,
        "value": value,
        "low": low,
        "high": high,
        "samples": samples,
        "limit": limit,
        "verdict": state,
        "passed": {PASS: True, FAIL: False}.get(state),
        "where": where,
    }
