"""Where the book's framework tabs disagree in chapter 8 (batch norm, the stems' pooling, dropout), computed.

:func:`modern_report` runs each framework's own layer (``torch.nn.BatchNorm2d``,
``keras.layers.BatchNormalization``, ``nnx.BatchNorm``, Gluon's ``BatchNorm``,
``paddle.nn.BatchNorm2D``; the book's stem max pooling; each framework's
dropout), through the functions of its backend's reference module
(:class:`~convlab.backends.reference.ReferenceModule`), on the same input as
convlab's layer, and sets the results side by side:

* batch norm (8.5): the running mean and variance after a few training steps.
  Each framework has its own ``momentum`` (the batch's weight in PyTorch and
  convlab, the old value's in Keras, Flax, Gluon and Paddle) and its own
  choice of the batch's variance (unbiased in PyTorch and convlab, biased
  elsewhere). The momentum in convlab's convention that reproduces each is
  recovered from the framework's first step, and convlab is run with it;
* the stems' max pooling (8.4, 8.6, 8.7; window 3, stride 2): PyTorch's tab
  pads 1 on every side, TensorFlow's and JAX's ``'same'``, which pads an even
  size only below and to the right;
* dropout (8.1, 8.2): the ratios of output to input in training mode (0, or
  ``1/(1-p)``) and in evaluation mode (1).

A backend whose framework is not installed shows "not installed"; one whose
reference module lacks the function, "not provided".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlab import nn
from convlab._api import export
from convlab._text import table
from convlab.backends.reference import NOT_PROVIDED, BookTab, FrameworkRun, reference_function
from convlab.core.registry import backend_names, load_backend, use_backend
from convlab.errors import BackendLoadOrderError, BackendNotInstalledError
from convlab.nn.modes import state

NOT_INSTALLED = "not installed"
"""What :func:`format_modern_report` shows for a backend whose framework does not import here."""

BATCH_NORM = "batch norm, 3 training steps"
STEM_POOL = "stem max-pool 3, stride 2"
DROPOUT = "dropout 0.5"
MODERN_EXAMPLES = (BATCH_NORM, STEM_POOL, DROPOUT)
"""The examples of :func:`modern_report`, by name."""

SECTIONS = {BATCH_NORM: "8.5", STEM_POOL: "8.4", DROPOUT: "8.1"}
"""Where the book uses each: batch norm (8.5), GoogLeNet's stem (8.4, also ResNet's and DenseNet's), AlexNet (8.1)."""

DROPOUT_P = 0.5
"""AlexNet's and VGG's dropout probability."""

STEPS = 3
"""Batch norm's training steps, one per batch of :func:`batch_norm_batches`."""

RTOL, ATOL = 1e-5, 1e-6
"""How close float32 running statistics count as the same (the variances' conventions differ by ~1e-3)."""

_FUNCTIONS = {BATCH_NORM: "framework_batch_norm", STEM_POOL: "book_stem_pool", DROPOUT: "framework_dropout"}


def batch_norm_batches() -> list[np.ndarray]:
    """The batches batch norm is trained on: ``STEPS`` batches of 4 x 2 x 3 x 3, step ``i`` drawn N(1 + i, (1 + i)^2).

    Their means are not 0, so the first step shows the framework's momentum.
    """
    rng = np.random.default_rng(0)
    return [rng.normal(1.0 + i, 1.0 + i, (4, 2, 3, 3)).astype(np.float32) for i in range(STEPS)]


def stem_pool_inputs() -> dict[str, np.ndarray]:
    """The stem pooling's inputs: an even size (ResNet's 112 x 112) and an odd one."""
    return {
        "arange(16), 4x4 (even)": np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4),
        "arange(25), 5x5 (odd)": np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5),
    }


def dropout_input() -> np.ndarray:
    """Dropout's input: ``1 + arange(384)`` as 2 x 3 x 8 x 8, no zero, so each output shows its ratio."""
    return (1 + np.arange(2 * 3 * 8 * 8, dtype=np.float32)).reshape(2, 3, 8, 8)


def output_ratios(output: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The distinct ratios ``output / X``, to 4 decimals: ``[0, 2]`` for inverted dropout at 0.5, ``[1]``: identity."""
    return np.unique(np.round(np.asarray(output, np.float64) / np.asarray(X, np.float64), 4))


@export
@dataclass
class ModernReportRow:
    """One quantity of one example of chapter 8: convlab's value and each framework's layer's."""

    section: str
    """Where the book uses it: ``"8.5"`` (batch norm), ``"8.4"`` (the stems' pooling), ``"8.1"`` (dropout)."""
    example: str
    """One of :data:`MODERN_EXAMPLES`."""
    input: str
    """Which input or which quantity, in words (``"running_var"``, ``"training: output / input"``...)."""
    convlab: np.ndarray
    """convlab's value, at its defaults (batch norm: one row per step; pooling: NCHW; dropout: the ratios)."""
    values: dict[str, np.ndarray] = field(default_factory=dict)
    """Backend name -> the framework's value, comparable with :attr:`convlab`."""
    runs: dict[str, BookTab | FrameworkRun] = field(default_factory=dict)
    """Backend name -> what its layer ran: its code, and a note on its conventions."""
    errors: dict[str, str] = field(default_factory=dict)
    """Backend name -> the error its layer raised (or why it could not be loaded)."""
    not_provided: list[str] = field(default_factory=list)
    """Backends whose reference module has no such function (NumPy: no layers)."""
    not_installed: list[str] = field(default_factory=list)
    """Backends whose framework is not installed here."""
    momentum: dict[str, float] = field(default_factory=dict)
    """Batch norm: backend -> the momentum, in convlab's convention, recovered from the framework's first step."""
    at_momentum: dict[str, np.ndarray] = field(default_factory=dict)
    """Batch norm: backend -> convlab's value with that momentum."""

    @property
    def exact(self) -> bool:
        """Whether values must be equal (pooling), not only close (float32 statistics, ratios)."""
        return self.example == STEM_POOL

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        if a.shape != b.shape:
            return False
        return bool(np.array_equal(a, b) if self.exact else np.allclose(a, b, rtol=RTOL, atol=ATOL))

    def agrees(self, backend: str) -> bool:
        """Whether that framework's layer gives convlab's value (batch norm: at every step)."""
        return backend in self.values and self._same(self.values[backend], self.convlab)

    def agrees_at_momentum(self, backend: str) -> bool:
        """Batch norm: whether convlab, with the momentum recovered for that framework, gives its value."""
        return backend in self.at_momentum and self._same(self.values[backend], self.at_momentum[backend])


def _convlab_batch_norm(batches: list[np.ndarray], momentum: float = 0.1) -> dict[str, np.ndarray]:
    with use_backend("numpy"):  # one semantics on every backend (the test suites check it): NumPy's answer
        layer = nn.BatchNorm2d(batches[0].shape[1], momentum=momentum)
        stats: dict[str, list[np.ndarray]] = {"running_mean": [], "running_var": []}
        for X in batches:
            layer(X)
            for name, value in state(layer).items():
                stats[name].append(np.array(value))
    return {name: np.stack(values) for name, values in stats.items()}


def _convlab_stem_pool(X: np.ndarray) -> np.ndarray:
    with use_backend("numpy"):
        return np.asarray(nn.MaxPool2d(3, stride=2, padding=1)(X))


def _convlab_dropout(X: np.ndarray) -> dict[str, np.ndarray]:
    with use_backend("numpy"):
        layer = nn.Dropout(DROPOUT_P, seed=0)
        training = np.asarray(layer(X))
        evaluation = np.asarray(nn.set_training(layer, False)(X))
    return {"training": training, "evaluation": evaluation}


def recovered_momentum(running_mean: np.ndarray, batch: np.ndarray) -> float:
    """The batch's weight in a running mean that starts at 0: its value after one step over the batch's mean.

    Averaged over the channels, rounded to 6 decimals (float32 gives about 7 digits).
    """
    mean = np.asarray(batch, np.float64).mean(axis=(0, 2, 3))
    return round(float(np.mean(np.asarray(running_mean, np.float64) / mean)), 6)


def _loaded(backends: list[str] | None) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    loaded, not_installed, failed = {}, [], {}
    for name in backends or backend_names():
        try:
            loaded[name] = load_backend(name)
        except BackendNotInstalledError:
            not_installed.append(name)
        except BackendLoadOrderError as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    return loaded, not_installed, failed


@export
def modern_report(backends: list[str] | None = None) -> list[ModernReportRow]:
    """Batch norm's running statistics, the stems' pooling and dropout: convlab beside each framework's own layer.

    Parameters
    ----------
    backends : list of str, optional
        Whose layers to run (default: every backend convlab knows). One whose
        framework is not installed is listed in each row's ``not_installed``;
        one whose reference module lacks the function, in ``not_provided``;
        one that cannot be loaded after the frameworks already imported, in
        ``errors``.

    Returns
    -------
    list of ModernReportRow
        Batch norm's ``running_mean`` and ``running_var``, the stem pooling
        on each input, dropout's ratios in training and in evaluation mode.
        :func:`format_modern_report` prints them.

    Examples
    --------
    >>> import convlab as cl
    >>> rows = cl.modern_report(backends=["numpy"])
    >>> [(row.example, row.input) for row in rows][:2]
    [('batch norm, 3 training steps', 'running_mean'), ('batch norm, 3 training steps', 'running_var')]
    >>> rows[-2].convlab  # dropout at 0.5 in training mode: each output is 0 or twice its input
    array([0., 2.])
    """
    loaded, not_installed, failed = _loaded(backends)
    functions = {
        example: {name: reference_function(backend, function) for name, backend in loaded.items()}
        for example, function in _FUNCTIONS.items()
    }
    rows: list[ModernReportRow] = []

    def new_row(example: str, input_name: str, convlab: np.ndarray) -> ModernReportRow:
        row = ModernReportRow(SECTIONS[example], example, input_name, convlab, not_installed=list(not_installed))
        row.errors.update(failed)
        rows.append(row)
        return row

    def run_each(example: str, rows_of: list[ModernReportRow], *args: Any) -> dict[str, Any]:
        results = {}
        for name, function in functions[example].items():
            if function is None:
                for row in rows_of:
                    row.not_provided.append(name)
                continue
            try:
                result = function(*args)
            except Exception as exc:  # a layer that no longer runs is a finding, not a failure
                for row in rows_of:
                    row.errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            if result is None:
                for row in rows_of:
                    row.not_provided.append(name)
                continue
            for row in rows_of:
                row.runs[name] = result
            results[name] = result
        return results

    # Batch norm: the running statistics after each step, at each framework's defaults.
    batches = batch_norm_batches()
    ours = _convlab_batch_norm(batches)
    stats = {quantity: new_row(BATCH_NORM, quantity, ours[quantity]) for quantity in ("running_mean", "running_var")}
    for name, run in run_each(BATCH_NORM, list(stats.values()), batches).items():
        momentum = recovered_momentum(run.outputs["running_mean"][0], batches[0])
        theirs = _convlab_batch_norm(batches, momentum) if 0.0 <= momentum <= 1.0 else None
        for quantity, row in stats.items():
            row.values[name] = np.asarray(run.outputs[quantity])
            row.momentum[name] = momentum
            if theirs is not None:
                row.at_momentum[name] = theirs[quantity]

    # The stems' max pooling, as each book tab writes it.
    for input_name, X in stem_pool_inputs().items():
        row = new_row(STEM_POOL, input_name, _convlab_stem_pool(X))
        for name, tab in run_each(STEM_POOL, [row], X).items():
            row.values[name] = np.asarray(tab.output)

    # Dropout: what each output is, over its input, in training and in evaluation mode.
    X = dropout_input()
    ours = {mode: output_ratios(value, X) for mode, value in _convlab_dropout(X).items()}
    modes = {mode: new_row(DROPOUT, f"{mode}: output / input", ours[mode]) for mode in ("training", "evaluation")}
    for name, run in run_each(DROPOUT, list(modes.values()), X, DROPOUT_P).items():
        for mode, row in modes.items():
            row.values[name] = output_ratios(run.outputs[mode], X)
    return rows


def _show(row: ModernReportRow, value: np.ndarray) -> str:
    if row.example == BATCH_NORM:  # the statistics after the last step
        return np.array2string(value[-1], precision=5, separator=", ")
    if row.example == STEM_POOL:
        last = np.array2string(value[0, -1], separator=",", max_line_width=200).replace(chr(10), "")
        return f"{tuple(value.shape[2:])} {last}"
    return np.array2string(value, separator=", ")


def _cell(row: ModernReportRow, name: str) -> str:
    if name in row.errors:
        return "error"
    if name in row.not_installed:
        return NOT_INSTALLED
    if name in row.not_provided:
        return NOT_PROVIDED
    if name not in row.values:
        return "-"
    return "same" if row.agrees(name) else _show(row, row.values[name])


@export
def format_modern_report(rows: list[ModernReportRow]) -> str:
    """The rows of :func:`modern_report` as text: the values, batch norm's momenta, then what each framework does."""
    names = sorted({name for row in rows for name in (*row.runs, *row.errors, *row.not_provided, *row.not_installed)})
    lines = [["example", "input", "convlab", *names]]
    for row in rows:
        lines.append([row.example, row.input, _show(row, row.convlab), *(_cell(row, name) for name in names)])
    parts = [table(lines)]

    stats = {row.input: row for row in rows if row.example == BATCH_NORM}
    if stats and any(row.momentum for row in stats.values()):
        mean, var = stats["running_mean"], stats["running_var"]
        momenta = [["backend", "its batch norm", "convlab momentum", "running_mean", "running_var"]]
        for name in sorted(mean.momentum):
            verdicts = [
                "same" if row.agrees_at_momentum(name) else "differs" if name in row.at_momentum else "-"
                for row in (mean, var)
            ]
            momenta.append([name, mean.runs[name].code, f"{mean.momentum[name]:g}", *verdicts])
        parts += [
            "",
            f"Batch norm: the momentum that gives each framework's running mean (convlab's, the batch's weight), "
            f"and whether convlab with it gives its statistics at each of the {STEPS} steps:",
            table(momenta),
        ]

    notes = []
    seen = set()
    for row in rows:
        for name, run in row.runs.items():
            if (name, row.example) in seen:
                continue
            seen.add((name, row.example))
            code = f" ({run.code})" if row.example != BATCH_NORM else ""
            if run.note:
                notes.append(f"{name}, {row.example}{code}: {run.note}")
    if notes:
        parts += ["", "What each framework does:", *notes]
    errors = {(name, row.example): message for row in rows for name, message in row.errors.items()}
    parts += [f"{name}, {example}: {message}" for (name, example), message in errors.items()]
    return "\n".join(parts)
