"""The report of a ``convlab bench`` run: text tables (:func:`format_report`) and a figure (:func:`plot`)."""

from __future__ import annotations

import math
import os
from typing import Any

from convlab._text import table
from convlab.backends.reference import NOT_PROVIDED
from convlab.bench.stats import median_interval, min_samples, paired_ratios
from convlab.bench.workloads import METHODS, fastest_by_shape

SHORT_METHOD = {"vectorized": "vec", "native": "native", "auto": "auto", "loop": "loop"}
"""Method names in the narrow ``by`` row of the corr2d tables."""


def format_report(results: dict[str, Any]) -> str:
    """The tables and the targets of a :func:`~convlab.bench.run_benchmark` result, as text.

    Parameters
    ----------
    results : dict
        What :func:`~convlab.bench.run_benchmark` returns; its
        ``config["stat"]`` says which statistic of the samples is shown.

    Returns
    -------
    str
        The report, lines without a trailing newline.
    """
    machine, config = results["machine"], results["config"]
    sampling = f"{config['stat']} of {config['repeats']} samples"
    if config.get("budget_s") is not None:
        # timing.measure_side_by_side's rule, in a few words
        sampling += (
            f" (where a target compares timings: at least {min_samples()}, in turns, "
            f"and up to {config['budget_s']:g} s more until its verdict is clear)"
        )
    lines = [
        f"convlab bench: {', '.join(f'{n} {v}' for n, v in machine['versions'].items())}; "
        f"{machine['cpus']} CPUs; {sampling}"
    ]
    lines += [f"skipped {name}: {reason}" for name, reason in results["skipped"].items()]
    lines += _corr2d_tables(results)
    lines += _corr2d_errors(results["corr2d"])
    if results.get("train"):
        lines += _train_table(results["train"])
    if results.get("imports"):
        imp = results["imports"]
        lines += [
            "",
            f"import (fresh process, {config['stat']}): numpy {imp['numpy_s'] * 1e3:.0f} ms, "
            f"convlab {imp['convlab_s'] * 1e3:.0f} ms, convlab adds {imp['extra_s'] * 1e3:.0f} ms",
        ]
    if results.get("memory"):
        mem = results["memory"]
        lines += ["", f"numpy peak extra memory, {mem['size']}x{mem['size']} input, 3x3 kernel (output = 1.00):"]
        for method in ("vectorized", "auto"):
            extra = mem[method]
            lines.append(f"  {method}: {extra['peak_extra_bytes'] / 2**20:.1f} MiB = {extra['ratio']:.2f} x output")
    lines += _network_tables(results)
    lines += _targets_table(results["targets"])
    return "\n".join(lines)


def _corr2d_tables(results: dict[str, Any]) -> list[str]:
    # One table per kernel: a row per backend and method, a column per image size.
    stat_name = results["config"]["stat"]
    stat = f"{stat_name}_s"
    times = {(r["backend"], r["method"], r["size"], r["kernel"]): r for r in results["corr2d"]}
    fastest = fastest_by_shape(results["corr2d"], stat_name)
    lines = []
    for k in results["config"]["kernels"]:
        sizes = [n for n in results["config"]["sizes"] if n >= k]
        lines += ["", f"corr2d, {k}x{k} kernel: milliseconds per call (n x n input)"]
        rows = [["", *(f"n={n}" for n in sizes)]]
        rows.append(["copy input (floor)", *(_ms(times.get(("floor", "copy", n, k), {}).get(stat)) for n in sizes)])
        for name in results["backends"]:
            for method in METHODS:
                cells = []
                for n in sizes:
                    row = times.get((name, method, n, k), {})
                    cells.append("error" if "error" in row else _ms(row.get(stat)))
                rows.append([f"{name} {method}", *cells])
        rows.append(["fastest", *(_ms(fastest.get((n, k), {}).get(stat)) for n in sizes)])
        rows.append(
            [
                "  by",
                *(f"{f['backend']}/{SHORT_METHOD[f['method']]}" if (f := fastest.get((n, k))) else "-" for n in sizes),
            ]
        )
        lines += _table(rows)
    return lines


def _corr2d_errors(rows: list[dict[str, Any]]) -> list[str]:
    errors: dict[tuple[str, str], str] = {}
    for row in rows:
        if "error" in row:
            errors.setdefault((row["backend"], row["method"]), row["error"])
    if not errors:
        return []
    lines = ["", "errors (the first of each backend and method):"]
    lines += [f"  {name} {method}: {_last_line(message)}" for (name, method), message in errors.items()]
    return lines


def _train_table(train: list[dict[str, Any]]) -> list[str]:
    lines = ["", "train_kernel vs the book's loop: milliseconds per iteration"]
    rows = [["backend", "workload", "train_kernel", "book loop", "ratio", "same losses"]]
    for row in train:
        ours, ref = row.get("train_kernel_s"), row.get("reference_s")
        ratio = f"{ours / ref:.2f}" if ours is not None and ref else "-"
        agree = {True: "yes", False: "NO"}.get(row.get("losses_agree"), "-")
        status = _last_line(row["error"]) if "error" in row else agree
        rows.append([row["backend"], row["workload"], _ms(ours), _baseline_ms(row, "reference"), ratio, status])
    return lines + _table(rows, left=2)


def _network_tables(results: dict[str, Any]) -> list[str]:
    lines = []
    if results.get("conv_layers"):
        lines += ["", "cl.nn.Conv2d vs the framework's conv layer: milliseconds per forward + backward"]
        rows = [["backend", "workload", "cl.nn", "framework", "ratio", "spread"]]
        for r in results["conv_layers"]:
            ours, own = r.get("convlab_s"), r.get("framework_s")
            ratio = f"{ours / own:.2f}" if ours and own else ("error" if "error" in r else "-")
            spread = _spread(r, "convlab", "framework")
            rows.append([r["backend"], r["workload"], _ms(ours), _baseline_ms(r, "framework"), ratio, spread])
        lines += _table(rows, left=2)
    if results.get("lenet"):
        lines += ["", "LeNet training step, batch 128: milliseconds (convlab vs the framework's idiomatic code)"]
        rows = [["backend", "convlab", "idiomatic", "ratio", "spread", "compiled", "ratio", "spread"]]
        for r in results["lenet"]:
            ours, own, compiled = r.get("convlab_s"), r.get("idiomatic_s"), r.get("compiled_s")
            ratio = f"{ours / own:.2f}" if ours and own else (_last_line(r["error"]) if "error" in r else "-")
            compiled_ratio = f"{compiled / own:.2f}" if compiled and own else "-"
            eager = [r["backend"], _ms(ours), _baseline_ms(r, "idiomatic"), ratio, _spread(r, "convlab", "idiomatic")]
            rows.append([*eager, _baseline_ms(r, "compiled"), compiled_ratio, _spread(r, "compiled", "idiomatic")])
        lines += _table(rows)
    if results.get("modern"):
        lines += _modern_table(results["modern"])
    lines += _compile_table(results)
    if results.get("data"):
        lines += ["", "Fashion-MNIST: milliseconds per training batch, and over a LeNet step"]
        rows = [["backend", "batch", "step", "ratio"]]
        for r in results["data"]:
            ratio = f"{r['ratio']:.3f}" if r.get("ratio") is not None else "-"
            rows.append([r["backend"], _ms(r.get("batch_s")), _ms(r.get("step_s")), ratio])
        lines += _table(rows)
    return lines


def _modern_table(modern: list[dict[str, Any]]) -> list[str]:
    # One row per network and backend: both steps in ms and examples per second, and their ratio.
    # A compiled column where compile="auto" compiles an epoch's run: that is the step such a run takes.
    lines = ["", "d2l §8 networks, training step at batch 128: milliseconds and examples/s (convlab vs idiomatic)"]
    header = ["model", "backend", "convlab", "ex/s", "idiomatic", "ex/s", "ratio", "spread"]
    compiled = any("compiled_s" in r for r in modern)
    rows = [header + (["compiled", "ratio", "spread"] if compiled else [])]
    for r in modern:
        ours, own = r.get("convlab_s"), r.get("idiomatic_s")
        ratio = f"{ours / own:.2f}" if ours and own else (_last_line(r["error"]) if "error" in r else "-")
        idiomatic = _baseline_ms(r, "idiomatic")
        spread = _spread(r, "convlab", "idiomatic")
        row = [r["model"], r["backend"], _ms(ours), _rate(ours), idiomatic, _rate(own), ratio, spread]
        if compiled:
            fast = r.get("compiled_s")
            fast_ratio = f"{fast / own:.2f}" if fast and own else "-"
            row += [_ms(fast), fast_ratio, _spread(r, "compiled", "idiomatic")]
        rows.append(row)
    return lines + _table(rows, left=2)


def _compile_table(results: dict[str, Any]) -> list[str]:
    # What the first call cost beyond a steady one (tracing, compiling, caches): kept out of the samples, shown here.
    rows = [["step", "backend", "convlab", "baseline"]]
    sections = [
        ("conv_layers", "workload", "framework"),
        ("lenet", None, "idiomatic"),
        ("modern", "model", "idiomatic"),
    ]
    for section, name, baseline in sections:
        for r in results.get(section, []):
            if "convlab_compile_s" in r:
                step = "LeNet" if name is None else r[name]
                rows.append([step, r["backend"], _ms(r["convlab_compile_s"]), _ms(r.get(f"{baseline}_compile_s"))])
    if len(rows) == 1:
        return []
    title = "compile time: milliseconds the first call took beyond a steady call (not in the timings above)"
    return ["", title, *_table(rows, left=2)]


def _spread(row: dict[str, Any], a: str, b: str) -> str:
    """The 95% interval of the paired ratios of ``row``'s timings ``a`` over ``b``; blank without samples."""
    a_times, b_times = row.get(f"{a}_times_s"), row.get(f"{b}_times_s")
    if not a_times or not b_times or len(a_times) != len(b_times):
        return ""
    _, low, high = median_interval(paired_ratios(a_times, b_times))
    return f"{low:.2f}-{high:.2f}"


def _rate(seconds: float | None, batch: int = 128) -> str:
    return "-" if not seconds else f"{batch / seconds:.0f}"


def _targets_table(targets: list[dict[str, Any]]) -> list[str]:
    rows = [["target", "subject", "value", "95% interval", "n", "verdict", " where"]]
    for t in targets:
        seconds = t["target"] == "d"
        value = _figure(t["value"], seconds)
        spread = "-" if t.get("low") is None else f"{_figure(t['low'], seconds)} to {_figure(t['high'], seconds)}"
        verdict = t.get("verdict") or {True: "PASS", False: "FAIL", None: "n/a"}[t["passed"]]
        # the extra space sets the free-text "where" column apart from the right-aligned verdicts
        samples = str(t["samples"]) if t.get("samples") else "-"
        rows.append([f"({t['target']}) {t['what']}", t["subject"], value, spread, samples, verdict, f" {t['where']}"])
    title = (
        "targets: median of the paired ratios measured side by side in this run, its 95% interval and n pairs; "
        "WITHIN NOISE where the interval holds the limit"
    )
    return ["", title, *(f"  {line}" for line in _table(rows, left=2))]


def _figure(value: float | None, seconds: bool) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f} s" if seconds else f"{value:.2f}x"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def _baseline_ms(row: dict[str, Any], label: str) -> str:
    """The ``label`` baseline's time in ``row``, or "not provided" where the backend's reference module has none."""
    return NOT_PROVIDED if label in row.get("not_provided", ()) else _ms(row.get(f"{label}_s"))


def _table(rows: list[list[str]], left: int = 1) -> list[str]:
    return table(rows, left=left).splitlines()


def _last_line(message: str, width: int = 150) -> str:
    """The last non-blank line of an error message (frameworks put the cause there), shortened."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    last = lines[-1] if lines else message
    return last if len(last) <= width else last[: width - 3] + "..."


def plot(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Time vs image size, log-log, one panel per kernel and one line per backend and method.

    Parameters
    ----------
    results : dict
        What :func:`~convlab.bench.run_benchmark` returns.
    path : str or path-like
        The image file to write; its suffix picks the format. Needs matplotlib.
    """
    import matplotlib  # only here: the benchmark runs without it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kernel_sizes, stat = results["config"]["kernels"], f"{results['config']['stat']}_s"
    colors = {name: f"C{i}" for i, name in enumerate(results["backends"])}  # a color per backend
    styles = {"loop": ":", "vectorized": "-", "native": "--", "auto": "-."}  # a line style per method
    fig, axes = plt.subplots(1, len(kernel_sizes), figsize=(6 * len(kernel_sizes), 5.5), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], kernel_sizes, strict=True):
        series: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for row in results["corr2d"]:
            if row["kernel"] == k and "error" not in row:
                series.setdefault((row["backend"], row["method"]), []).append((row["size"], row[stat] * 1e3))
        for (name, method), points in sorted(series.items()):
            points.sort()
            if name == "floor":
                style = {"color": "black", "linestyle": "--", "linewidth": 2, "label": "copy input (floor)"}
            else:
                style = {"color": colors[name], "linestyle": styles[method], "marker": "o", "markersize": 3}
                style["label"] = f"{name} {method}"
            ax.plot([p[0] for p in points], [p[1] for p in points], **style)
        ax.set(xscale="log", yscale="log", xlabel="image size n (n x n)", title=f"corr2d, {k}x{k} kernel")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(f"milliseconds per call ({results['config']['stat']})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7)
    fig.tight_layout(rect=(0, 0.05 + 0.03 * math.ceil(len(labels) / 6), 1, 1))
    fig.savefig(path)
    plt.close(fig)
