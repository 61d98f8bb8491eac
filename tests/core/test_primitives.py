"""Conformance of every backend's batched primitives against NumPy float64 references written here.

The primitives take arguments the core has already checked, so these tests
call them directly on the backend, with NCHW inputs and OIHW weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import conv2d_reference, pool2d_reference

import convlab as cl

SLOW_OK = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c = groups * draw(st.integers(1, 2))
    o = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, kh - padding[0] - padding[1]), 9))
    w = draw(st.integers(max(1, kw - padding[2] - padding[3]), 9))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    n = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((o, c // groups, kh, kw)).astype(np.float32)
    return x, weight, stride, padding, groups


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kh // 2)))
    padding += (draw(st.integers(0, kw // 2)), draw(st.integers(0, kw // 2)))
    h = draw(st.integers(max(1, kh - padding[0] - padding[1]), 9))
    w = draw(st.integers(max(1, kw - padding[2] - padding[3]), 9))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = (rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)) - 2).astype(np.float32)
    return x, (kh, kw), stride, padding


def run(backend, method, *tensors, **kwargs):
    return cl.to_numpy(getattr(backend, method)(*(backend.tensor(t) for t in tensors), **kwargs))


# -- conv2d ----------------------------------------------------------------------------------------


def test_conv2d_first_figure(backend):
    X, K = cl.data.fig_correlation()
    y = run(backend, "conv2d", X[None, None], K[None, None], stride=(1, 1), padding=(0, 0, 0, 0), groups=1)
    np.testing.assert_array_equal(y, [[[[19, 25], [37, 43]]]])


@SLOW_OK
@given(case=conv_case())
def test_conv2d_matches_scipy(backend, case):
    x, w, stride, padding, groups = case
    y = run(backend, "conv2d", x, w, stride=stride, padding=padding, groups=groups)
    np.testing.assert_allclose(y, conv2d_reference(x, w, stride, padding, groups), rtol=1e-4, atol=1e-4)


def test_conv2d_asymmetric_padding_and_stride(backend):
    # The book's last example of section 7.3: a 3x5 kernel, padding (0, 1) (rows, columns), stride (3, 4), on 8x8.
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((1, 1, 3, 5)).astype(np.float32)
    y = run(backend, "conv2d", x, w, stride=(3, 4), padding=(0, 0, 1, 1), groups=1)
    assert y.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(y, conv2d_reference(x, w, (3, 4), (0, 0, 1, 1), 1), rtol=1e-4, atol=1e-4)
    y = run(backend, "conv2d", x, w, stride=(1, 2), padding=(2, 0, 0, 3), groups=1)
    np.testing.assert_allclose(y, conv2d_reference(x, w, (1, 2), (2, 0, 0, 3), 1), rtol=1e-4, atol=1e-4)


# -- pool2d ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, expected", [("max", [[4, 5], [7, 8]]), ("avg", [[2, 3], [5, 6]])])
def test_pool2d_book_numbers(backend, mode, expected):
    X = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    y = run(backend, "pool2d", X, window=(2, 2), stride=(1, 1), padding=(0, 0, 0, 0), mode=mode)
    np.testing.assert_array_equal(y[0, 0], expected)


def test_max_pool_padding_stride_book_numbers(backend):
    X = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    y = run(backend, "pool2d", X, window=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), mode="max")
    np.testing.assert_array_equal(y[0, 0], [[5, 7], [13, 15]])
    y = run(backend, "pool2d", X, window=(3, 3), stride=(3, 3), padding=(0, 0, 0, 0), mode="max")
    np.testing.assert_array_equal(y[0, 0], [[10]])


def test_max_pool_padding_never_wins_on_negative_input(backend):
    X = -1 - np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    y = run(backend, "pool2d", X, window=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1), mode="max")
    np.testing.assert_array_equal(y[0, 0], [[-1, -2], [-5, -6]])  # zero padding would give 0 everywhere


@pytest.mark.parametrize("mode", ["max", "avg"])
@SLOW_OK
@given(case=pool_case())
def test_pool2d_matches_the_loop(backend, mode, case):
    x, window, stride, padding = case
    y = run(backend, "pool2d", x, window=window, stride=stride, padding=padding, mode=mode)
    np.testing.assert_allclose(y, pool2d_reference(x, window, stride, padding, mode), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool2d_asymmetric_padding(backend, mode):
    x = (np.random.default_rng(3).standard_normal((2, 3, 5, 6)) - 1).astype(np.float32)
    for padding in [(1, 0, 0, 1), (0, 1, 1, 0), (2, 0, 1, 0)]:
        y = run(backend, "pool2d", x, window=(3, 2), stride=(2, 2), padding=padding, mode=mode)
        np.testing.assert_allclose(y, pool2d_reference(x, (3, 2), (2, 2), padding, mode), rtol=1e-5, atol=1e-5)


# -- activations, reductions, matrix product -------------------------------------------------------


def test_elementwise_and_reductions(backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((5, 2)).astype(np.float32)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(run(backend, "sigmoid", x), 1 / (1 + np.exp(-x64)), rtol=1e-6)
    np.testing.assert_array_equal(run(backend, "relu", x), np.maximum(x, 0))
    shifted = x64 - x64.max(axis=1, keepdims=True)
    expected = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(run(backend, "log_softmax", x, axis=1), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(backend, "matmul", x, b), x64 @ b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(backend, "sum", x), x64.sum(), rtol=1e-5)
    np.testing.assert_allclose(run(backend, "sum", x, axis=0), x64.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(backend, "mean", x, axis=1), x64.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(run(backend, "argmax", x, axis=1), x.argmax(axis=1))
    np.testing.assert_array_equal(run(backend, "reshape", x, shape=(5, 3)), x.reshape(5, 3))
    np.testing.assert_array_equal(run(backend, "flip", x, axes=(0, 1)), x[::-1, ::-1])


def test_log_softmax_is_stable(backend):
    x = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    np.testing.assert_allclose(run(backend, "log_softmax", x, axis=1), [[0.0, -1000.0, -2000.0]], rtol=1e-6)
