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
from convlab.backends.base import BOOK_EXAMPLES
from convlab.chapter.disagreements import LAYERS


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


def test_tabs_agree_where_the_frameworks_can_say_the_same_thing():
    """PyTorch, MXNet and Paddle have symmetric padding of any width: their tabs print the book's numbers."""
    for row in report():
        for name in {"torch", "mxnet", "paddle"} & set(row.tabs):
            assert row.agrees(name), (name, row.example, row.input, row.tabs[name].output)


TAB_ZERO_PADDING = {
    "max-pool 3": (0, 0, 0, 0),
    "max-pool 3, padding 1, stride 2": (1, 0, 1, 0),  # tf.pad / jnp.pad: [1, 0] rows, [1, 0] columns
    "max-pool (2, 3), padding (0, 1), stride (2, 3)": (0, 0, 1, 1),  # [0, 0] rows, [1, 1] columns
}
"""(top, bottom, left, right) zeros the TensorFlow and JAX tabs of 7.5 add before pooling without padding."""


def _zero_padded_pool(X, example):
    # What the TensorFlow and JAX tabs of 7.5 do: pad zeros as they write it, then pool without padding.
    _, window, _, stride = LAYERS[example]
    window = (window, window) if isinstance(window, int) else window
    stride = (stride, stride) if isinstance(stride, int) else stride
    top, bottom, left, right = TAB_ZERO_PADDING[example]
    padded = np.pad(X.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    return pool2d_reference(padded, window, stride, (0, 0, 0, 0), "max")


def test_the_tensorflow_tab_cannot_express_padding_0_1():
    load_or_skip("tensorflow")
    (row,) = rows_of("conv (3, 5), padding (0, 1), stride (3, 4)")
    assert row.tabs["tensorflow"].output.shape[2:] == (2, 1) and not row.agrees("tensorflow")
    assert row.tabs["tensorflow"].note


@pytest.mark.parametrize("name", ["tensorflow", "jax"])
def test_top_left_zero_padding_tabs_differ_on_negative_inputs_and_odd_sizes(name):
    load_or_skip(name)
    rows = [row for row in report() if row.section == "7.5"]
    assert all(name in row.tabs for row in rows), f"{name} has no book tab for 7.5"
    for row in rows:
        X = next(x for label, x in _inputs_of(row) if label == row.input)
        np.testing.assert_array_equal(row.tabs[name].output, _zero_padded_pool(X, row.example))
    negative = rows_of("max-pool 3, padding 1, stride 2", "-1 - arange(16)")[0]
    odd = rows_of("max-pool 3, padding 1, stride 2", "arange(25)")[0]
    assert not negative.agrees(name) and negative.tabs[name].note
    assert odd.tabs[name].output.shape != odd.convlab.shape  # (2, 2) where -inf padding on all sides gives (3, 3)


def _inputs_of(row):
    from convlab.chapter.disagreements import _inputs

    return _inputs("pool", row.example).items()


def test_the_report_prints_the_reasons():
    text = cl.format_shape_report(report())
    assert "max-pool 3, padding 1, stride 2" in text and "convlab" in text
    if any(row.tabs.get(name) and not row.agrees(name) for row in report() for name in row.tabs):
        assert "Why they differ:" in text
