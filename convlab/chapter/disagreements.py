"""Where the book's framework tabs disagree (d2l 7.3 and 7.5), computed rather than told.

For every example of 7.3 (a one-channel conv layer with padding and stride)
and 7.5 (max pooling), :func:`shape_report` sets convlab's answer beside
what each book tab computes, by running that framework's own calls as the
tab writes them (the ``book_tab`` of the backend's reference module,
:meth:`ReferenceModule.book_tab <convlab.backends.reference.ReferenceModule.book_tab>`),
on every installed framework; a backend without one shows "not provided". convlab has one semantics everywhere: zero
padding for convolution, ``-inf`` padding for max pooling, both on the
sides the arguments say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from convlab import nn
from convlab._api import export
from convlab._text import table
from convlab.backends.reference import BOOK_EXAMPLES, NOT_PROVIDED, BookTab, reference_function
from convlab.core.registry import backend_names, load_backend, use_backend
from convlab.errors import BackendLoadOrderError, BackendNotInstalledError

LAYERS = {
    "conv 3, padding 1": ("conv", 3, 1, 1),
    "conv (5, 3), padding (2, 1)": ("conv", (5, 3), (2, 1), 1),
    "conv 3, padding 1, stride 2": ("conv", 3, 1, 2),
    "conv (3, 5), padding (0, 1), stride (3, 4)": ("conv", (3, 5), (0, 1), (3, 4)),
    "max-pool 3": ("pool", 3, 0, 3),
    "max-pool 3, padding 1, stride 2": ("pool", 3, 1, 2),
    "max-pool (2, 3), padding (0, 1), stride (2, 3)": ("pool", (2, 3), (0, 1), (2, 3)),
}
"""Each of :data:`~convlab.backends.reference.BOOK_EXAMPLES` as convlab's layer: (kind, kernel, padding, stride)."""


def _inputs(kind: str, example: str) -> dict[str, np.ndarray]:
    """The inputs an example runs on: the book's own, then those where the tabs part ways."""
    if kind == "conv":  # the book's torch.rand(8, 8); a conv's weights are random, so only shapes are compared
        return {"8x8 (the book's)": np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)}
    X = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    inputs = {"arange(16), 4x4 (the book's)": X}
    if example == "max-pool 3, padding 1, stride 2":
        inputs["two channels, X and X + 1 (the book's)"] = np.concatenate([X, X + 1], axis=1)
    inputs["-1 - arange(16), 4x4"] = -1 - X
    inputs["arange(25), 5x5"] = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    return inputs


@export
@dataclass
class ShapeReportRow:
    """One example on one input: convlab's result and each book tab's."""

    section: str
    """``"7.3"`` or ``"7.5"``."""
    example: str
    """One of :data:`~convlab.backends.reference.BOOK_EXAMPLES`."""
    input: str
    """Which input, in words."""
    convlab: np.ndarray
    """convlab's output (NCHW); for a conv layer only its shape counts."""
    tabs: dict[str, BookTab] = field(default_factory=dict)
    """Backend name -> what its book tab computed."""
    errors: dict[str, str] = field(default_factory=dict)
    """Backend name -> the error its tab raised."""
    not_provided: list[str] = field(default_factory=list)
    """Backends whose reference module has no tab for this example (NumPy: the book has no NumPy tab)."""

    @property
    def values_count(self) -> bool:
        """Whether values are compared (pooling), not only shapes (a conv with random weights)."""
        return self.section == "7.5"

    def agrees(self, backend: str) -> bool:
        """Whether that backend's tab gives convlab's shape (and, for pooling, values)."""
        tab = self.tabs.get(backend)
        if tab is None or tab.output.shape != self.convlab.shape:
            return False
        return not self.values_count or bool(np.array_equal(tab.output, self.convlab))


def _convlab(example: str, X: np.ndarray) -> np.ndarray:
    kind, kernel, padding, stride = LAYERS[example]
    with use_backend("numpy"):  # one semantics on every backend (the test suites check it): NumPy's answer
        if kind == "conv":
            layer = nn.Conv2d(X.shape[1], 1, kernel, stride=stride, padding=padding, seed=0)
        else:
            layer = nn.MaxPool2d(kernel, stride=stride, padding=padding)
        return np.asarray(layer(X))


@export
def shape_report(backends: list[str] | None = None) -> list[ShapeReportRow]:
    """Every example of d2l 7.3 and 7.5: convlab's shape and values beside each book tab's, computed.

    Parameters
    ----------
    backends : list of str, optional
        Whose tabs to run (default: every installed backend); a backend that
        is not installed, or cannot be loaded after the frameworks already
        imported, is left out. One whose reference module has no book tab is
        listed in each row's ``not_provided``.

    Returns
    -------
    list of ShapeReportRow
        One row per example and input. :func:`format_shape_report` prints them.

    Examples
    --------
    >>> import convlab as cl
    >>> rows = cl.shape_report(backends=["numpy"])
    >>> rows[3].example, rows[3].convlab.shape
    ('conv (3, 5), padding (0, 1), stride (3, 4)', (1, 1, 2, 2))
    """
    loaded = {}
    for name in backends or backend_names():
        try:
            loaded[name] = load_backend(name)
        except (BackendNotInstalledError, BackendLoadOrderError):
            continue
    book_tabs = {name: reference_function(backend, "book_tab") for name, backend in loaded.items()}
    rows = []
    for example in BOOK_EXAMPLES:
        kind = LAYERS[example][0]
        for input_name, X in _inputs(kind, example).items():
            row = ShapeReportRow("7.3" if kind == "conv" else "7.5", example, input_name, _convlab(example, X))
            for name, book_tab in book_tabs.items():
                try:
                    tab = None if book_tab is None else book_tab(example, X)
                except Exception as exc:  # a tab that no longer runs is a finding, not a failure
                    row.errors[name] = f"{type(exc).__name__}: {exc}"
                    continue
                if tab is None:
                    row.not_provided.append(name)
                else:
                    row.tabs[name] = tab
            rows.append(row)
    return rows


def _show(array: np.ndarray, values: bool) -> str:
    shape = str(tuple(array.shape[2:]))
    if not values:
        return shape
    return f"{shape} {np.array2string(array[0, -1], separator=',', max_line_width=200).replace(chr(10), '')}"


@export
def format_shape_report(rows: list[ShapeReportRow]) -> str:
    """The rows of :func:`shape_report` as a text table, then the reason for each difference."""
    names = sorted({name for row in rows for name in (*row.tabs, *row.errors, *row.not_provided)})
    header = ["example", "input", "convlab (h, w) [last channel]", *names]
    lines = [header]
    notes: dict[tuple[str, str], str] = {}
    for row in rows:
        cells = [row.example, row.input, _show(row.convlab, row.values_count)]
        for name in names:
            if name in row.errors:
                cells.append("error")
            elif name in row.not_provided:
                cells.append(NOT_PROVIDED)
            elif name not in row.tabs:
                cells.append("-")
            elif row.agrees(name):
                cells.append("same")
            else:
                cells.append(_show(row.tabs[name].output, row.values_count))
                notes[(name, row.example)] = row.tabs[name].note
        lines.append(cells)
    text = table(lines)
    reasons = [f"{name}, {example}: {note}" for (name, example), note in notes.items() if note]
    errors = [f"{name}, {row.example}: {message}" for row in rows for name, message in row.errors.items()]
    return "\n".join([text, *(["", "Why they differ:", *reasons] if reasons else []), *errors])
