"""``cl.shape_report``: convlab's answers are the book's printed ones, and each tab's differences are real.

The book tabs run as the adapters quote them; their results are checked
against the book's printed numbers and against a float64 NumPy
re-implementation of what a tab does (zero padding on the top and left, then
pooling without padding), not against convlab.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from reference import pool2d_reference

import convlab as cl
from conftest import load_or_skip
from convlab.backends.reference import BOOK_EXAMPLES, NOT_PROVIDED, load_reference
from convlab.chapter.disagreements import LAYERS
from convlab.core.registry import specs


@functools.cache
def report():
    return cl.shape_report()


def rows_of(example, input_prefix=""):
    return [row for row in report() if row.example == example and row.input.startswith(input_prefix)]


BOOK_SHAPES = {
    "conv 3, padding 1": (8, 8),
    "conv (5, 3), padding (2, 1)": (8, 8),
    "conv 3, padding 1, stride 2": (4, 4),
    "conv (3, 5), padding (0, 1), stride (3, 4)": (2, 2),
}
BOOK_POOLS = {
    "max-pool 3": [[10]],
    "max-pool 3, padding 1, stride 2": [[5, 7], [13, 15]],
    "max-pool (2, 3), padding (0, 1), stride (2, 3)": [[5, 7], [13, 15]],
}


def test_convlab_gives_the_books_numbers():
    assert {row.example for row in report()} == set(BOOK_EXAMPLES) == set(LAYERS)
    for example, shape in BOOK_SHAPES.items():
        (row,) = rows_of(example)
        assert row.convlab.shape[2:] == shape
    for example, values in BOOK_POOLS.items():
        np.testing.assert_array_equal(rows_of(example, "arange(16)")[0].convlab[0, 0], values)
    (two,) = rows_of("max-pool 3, padding 1, stride 2", "two channels")
    np.testing.assert_array_equal(two.convlab[0, 1], [[6, 8], [14, 16]])


def test_every_installed_tab_runs():
    errors = {(name, row.example): message for row in report() for name, message in row.errors.items()}
    assert not errors
    for row in report():
        for name, tab in row.tabs.items():
            assert tab.output.ndim == 4 and tab.code, (name, row.example)


BUILT_IN = [name for name, spec in specs().items() if spec.adapter.startswith("convlab.backends.")]
"""convlab's own backends: each keeps the facts about its book tabs in its reference module."""


def _zero_padded_pool(X, example, zeros):
    # What a tab that pads zeros itself does: pad `zeros` (top, bottom, left, right), then pool without padding.
    _, window, _, stride = LAYERS[example]
    window = (window, window) if isinstance(window, int) else window
    stride = (stride, stride) if isinstance(stride, int) else stride
    top, bottom, left, right = zeros
    padded = np.pad(X.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    return pool2d_reference(padded, window, stride, (0, 0, 0, 0), "max")


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_tab_computes_what_its_reference_module_says(name):
    """A tab gives convlab's answer, unless its reference module records another shape or zeros padded first.

    A built-in backend whose reference module has a ``book_tab`` must have a tab
    in every row (none missing, none failing); one without says so in every row.
    """
    rows = report()
    reference = load_reference(load_or_skip(name))
    assert reference is not None, f"the built-in {name} backend names no reference module"
    if not hasattr(reference, "book_tab"):  # NumPy: the book has no tab, and every row says it is not provided
        assert all(name in row.not_provided and name not in row.tabs for row in rows)
        return
    sections = {example: LAYERS[example][0] for example in BOOK_EXAMPLES}
    assert {sections[example] for example in reference.BOOK_TAB_SHAPES} <= {"conv"}
    assert {sections[example] for example in reference.BOOK_TAB_ZERO_PADDING} <= {"pool"}
    for row in rows:
        assert name in row.tabs, f"{name} has no tab for {row.example}: {row.errors.get(name, 'missing')}"
        tab, where = row.tabs[name], (name, row.example, row.input)
        if row.example in reference.BOOK_TAB_SHAPES:
            assert tab.output.shape[2:] == reference.BOOK_TAB_SHAPES[row.example] != row.convlab.shape[2:], where
        elif row.example in reference.BOOK_TAB_ZERO_PADDING:
            zeros = reference.BOOK_TAB_ZERO_PADDING[row.example]
            X = next(x for label, x in _inputs_of(row) if label == row.input)
            np.testing.assert_array_equal(tab.output, _zero_padded_pool(X, row.example, zeros), err_msg=str(where))
            if any(zeros) and row.input.startswith("-1 - arange"):  # a padded 0 beats every negative value
                assert not row.agrees(name), where
        else:  # the framework says what convlab says: symmetric padding of any width, never picked by a max
            assert row.agrees(name), (*where, tab.output)
        if not row.agrees(name):
            assert tab.note, f"{where}: the tab differs from convlab without saying why"


def test_a_backend_without_a_book_tab_is_shown_as_not_provided():
    rows = cl.shape_report(backends=["numpy"])
    assert all(row.not_provided == ["numpy"] and not row.tabs and not row.errors for row in rows)
    header, *lines = cl.format_shape_report(rows).splitlines()
    assert header.split()[-1] == "numpy"
    assert len(lines) == len(rows) and all(line.endswith(NOT_PROVIDED) for line in lines)


def _inputs_of(row):
    from convlab.chapter.disagreements import _inputs

    return _inputs("pool", row.example).items()


def test_the_report_prints_the_reasons():
    text = cl.format_shape_report(report())
    assert "max-pool 3, padding 1, stride 2" in text and "convlab" in text
    if any(row.tabs.get(name) and not row.agrees(name) for row in report() for name in row.tabs):
        assert "Why they differ:" in text
