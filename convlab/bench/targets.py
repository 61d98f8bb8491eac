"""The targets of ``convlab bench``: ratios measured side by side in the same run, each PASS or FAIL."""

from __future__ import annotations

import math
from typing import Any

from convlab.bench.workloads import fastest_by_shape

TARGETS = {
    "a": ("auto <= 1.05x min(native, vectorized), every size", 1.05),
    "b": ("auto <= 3x fastest of the run, 1024 & 2048, 3x3", 3.0),
    "c": ("train_kernel <= 1.25x book loop, per iteration", 1.25),
    "d": ("import convlab - import numpy <= 0.1 s", 0.1),
    "e": ("vectorized peak extra memory <= 2x output", 2.0),
    "f": ("cl.nn.Conv2d fwd+bwd <= 1.1x the framework's conv layer", 1.1),
    "g": ("matmul FLOP rate <= 2x NumPy conv forward's", 2.0),
    "h": ("LeNet step <= 1.15x the framework's idiomatic step", 1.15),
    "i": ("NumPy LeNet step <= 3x PyTorch's idiomatic step", 3.0),
    "j": ("a Fashion-MNIST batch <= 0.1x a LeNet step", 0.1),
    "k": ("§8 network step <= 1.15x the framework's idiomatic step", 1.15),
    "l": ("NumPy §8 network step <= 2x PyTorch's idiomatic step", 2.0),
}
"""Target id: (what is compared, the limit on the ratio; for ``d`` on the difference in seconds)."""


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The pass/fail list of :data:`TARGETS` for the results of :func:`~convlab.bench.run_benchmark`.

    Parameters
    ----------
    results : dict
        What :func:`~convlab.bench.run_benchmark` returns (``targets`` aside);
        its ``config["stat"]`` says which statistic of the samples is compared.

    Returns
    -------
    list of dict
        ``{"target", "what", "subject", "value", "limit", "passed", "where"}``
        for each target and backend (one row for ``d`` and ``e``); ``passed``
        is ``None`` where the run did not measure what the target compares.
    """
    stat = results["config"]["stat"]
    rows = [row for row in results["corr2d"] if "error" not in row]
    times = {(r["backend"], r["method"], r["size"], r["kernel"]): r[f"{stat}_s"] for r in rows}
    picks = {(r["backend"], r["size"], r["kernel"]): r.get("picks") for r in rows if r["method"] == "auto"}
    fastest = {key: row[f"{stat}_s"] for key, row in fastest_by_shape(results["corr2d"], stat).items()}
    out = [_verdict("a", name, *_auto_against_its_rivals(name, times, picks)) for name in results["backends"]]
    for name in results["backends"]:
        ratios = [
            (times[(name, "auto", n, 3)] / fastest[(n, 3)], f"{n}x{n}, 3x3")
            for n in (1024, 2048)
            if (name, "auto", n, 3) in times and fastest.get((n, 3))
        ]
        out.append(_verdict("b", name, *_worst(ratios, "not measured (needs 1024 or 2048 with 3x3)")))
    for name in results["backends"] if results.get("train") else []:
        ratios = [
            (row["train_kernel_s"] / row["reference_s"], row["workload"])
            for row in results["train"]
            if row["backend"] == name and row.get("reference_s")
        ]
        out.append(_verdict("c", name, *_worst(ratios, "not measured")))
    if results.get("imports"):
        out.append(_verdict("d", "convlab", results["imports"]["extra_s"], f"fresh processes, {stat}"))
    if results.get("memory"):
        memory = results["memory"]
        out.append(
            _verdict("e", "numpy", memory["vectorized"]["ratio"], f"{memory['size']}x{memory['size']}, tracemalloc")
        )
    out += _network_verdicts(results)
    return out


def _network_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    # Targets f to j: cl.nn and LeNet against each framework's own way, and data loading against a step.
    out = []
    conv = [row for row in results.get("conv_layers", []) if "error" not in row]
    for name in results["backends"] if conv else []:
        ratios = [
            (r["convlab_s"] / r["framework_s"], r["workload"])
            for r in conv
            if r["backend"] == name and "framework_s" in r
        ]
        if ratios:
            out.append(_verdict("f", name, *_worst(ratios, "not measured")))
    rates = [(1 / r["flop_rate_ratio"], r["workload"]) for r in conv if r.get("flop_rate_ratio")]
    if rates:
        out.append(_verdict("g", "numpy", *_worst(rates, "not measured")))
    steps = {row["backend"]: row for row in results.get("lenet", []) if "error" not in row}
    for name, row in steps.items():
        if "idiomatic_s" in row:
            out.append(_verdict("h", name, row["convlab_s"] / row["idiomatic_s"], "batch 128"))
    if "numpy" in steps and "idiomatic_s" in steps.get("torch", {}):
        out.append(_verdict("i", "numpy", steps["numpy"]["convlab_s"] / steps["torch"]["idiomatic_s"], "batch 128"))
    for row in results.get("data", []):
        if row.get("ratio") is not None:
            out.append(_verdict("j", row["backend"], row["ratio"], f"{row['batch_s'] * 1e3:.2f} ms a batch"))
    out += _modern_verdicts(results.get("modern", []))
    measured = {verdict["target"] for verdict in out}
    unmeasured = "not measured (needs a framework's own layer, PyTorch, or Fashion-MNIST in this run)"
    out += [_verdict(target, "-", None, unmeasured) for target in "fghijkl" if target not in measured]
    return out


def _modern_verdicts(modern: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Targets k and l: each §8 network's step against the framework's idiomatic one, and NumPy's against PyTorch's.
    rows = [row for row in modern if "error" not in row]
    out = []
    for name in dict.fromkeys(row["backend"] for row in rows):
        ratios = [
            (r["convlab_s"] / r["idiomatic_s"], r["model"]) for r in rows if r["backend"] == name and "idiomatic_s" in r
        ]
        if ratios:
            out.append(_verdict("k", name, *_worst(ratios, "not measured")))
    torch = {row["model"]: row["idiomatic_s"] for row in rows if row["backend"] == "torch" and "idiomatic_s" in row}
    ratios = [
        (r["convlab_s"] / torch[r["model"]], r["model"])
        for r in rows
        if r["backend"] == "numpy" and r["model"] in torch
    ]
    if ratios:
        out.append(_verdict("l", "numpy", *_worst(ratios, "not measured")))
    return out


def _auto_against_its_rivals(
    name: str, times: dict[tuple[str, str, int, int], float], picks: dict[tuple[str, int, int], str | None]
) -> tuple[float | None, str]:
    # Target (a): auto over the faster of native and vectorized, at its worst shape.
    ratios, pick_ratios = [], []
    for (backend, method, n, k), auto in times.items():
        if backend != name or method != "auto":
            continue
        rivals = [times.get((backend, other, n, k)) for other in ("native", "vectorized")]
        if None in rivals:
            continue
        best_rival = min(rivals)
        ratios.append((auto / best_rival, f"{n}x{n}, {k}x{k}"))
        # the time of the method auto dispatches to: tells a wrong pick from noise and dispatch cost
        pick_ratios.append(times[(backend, picks[(backend, n, k)], n, k)] / best_rival)
    worst, where = _worst(ratios, "not measured")
    if worst is not None:
        where += f"; auto's pick alone: worst {max(pick_ratios):.2f}x"
    return worst, where


def _worst(ratios: list[tuple[float, str]], unmeasured: str) -> tuple[float | None, str]:
    # The largest ratio and where it was measured (the first such place on a tie).
    return max(ratios, key=lambda ratio_where: ratio_where[0], default=(None, unmeasured))


def _verdict(target: str, subject: str, value: float | None, where: str) -> dict[str, Any]:
    what, limit = TARGETS[target]
    passed = None if value is None or math.isnan(value) else bool(value <= limit)
    return {
        "target": target,
        "what": what,
        "subject": subject,
        "value": value,
        "limit": limit,
        "passed": passed,
        "where": where,
    }
