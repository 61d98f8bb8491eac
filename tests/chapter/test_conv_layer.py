"""Sections 7.3 to 7.5 of the book on every backend: padding and stride, channels, pooling.

Every number here is one the book prints; the general cases are checked against SciPy in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import correlate

import convlab as cl

METHODS = ["loop", "vectorized", "native", "auto"]
SLOW_OK = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def channels_example():
    X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)]).astype(np.float32)
    K = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)]).astype(np.float32)
    return X, K


# -- 7.3 padding and stride ------------------------------------------------------------------------

BOOK_SHAPES = [  # kernel, padding, stride, the shape the book prints for an 8x8 input
    ((3, 3), 1, 1, (8, 8)),
    ((5, 3), (2, 1), 1, (8, 8)),
    ((3, 3), 1, 2, (4, 4)),
    ((3, 5), (0, 1), (3, 4), (2, 2)),
]


@pytest.mark.parametrize("kernel, padding, stride, shape", BOOK_SHAPES)
def test_conv_output_shape_book_numbers(kernel, padding, stride, shape):
    assert cl.conv_output_shape((8, 8), kernel, padding=padding, stride=stride) == shape


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kernel, padding, stride, shape", BOOK_SHAPES)
def test_corr2d_book_shapes(backend, method, kernel, padding, stride, shape):
    X = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    K = np.random.default_rng(1).standard_normal(kernel).astype(np.float32)
    Y = cl.to_numpy(cl.corr2d(X, K, method, padding=padding, stride=stride))
    assert Y.shape == shape
    p = cl.core.checks.check_padding(padding)
    s = cl.core.checks.check_stride(stride)
    expected = correlate(np.pad(X, ((p[0], p[1]), (p[2], p[3]))), K)[:: s[0], :: s[1]]
    np.testing.assert_allclose(Y, expected, rtol=1e-4, atol=1e-4)


@st.composite
def padded_case(draw):
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    kh = draw(st.integers(1, h + padding[0] + padding[1]))
    kw = draw(st.integers(1, w + padding[2] + padding[3]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (
        rng.standard_normal((h, w)).astype(np.float32),
        rng.standard_normal((kh, kw)).astype(np.float32),
        padding,
        stride,
    )


@pytest.mark.parametrize("method", METHODS)
@SLOW_OK
@given(case=padded_case())
def test_padded_strided_corr2d_and_conv2d_match_scipy(backend, method, case):
    X, K, padding, stride = case
    padded = np.pad(X, ((padding[0], padding[1]), (padding[2], padding[3])))
    expected = correlate(padded, K)[:: stride[0], :: stride[1]]
    got = cl.to_numpy(cl.corr2d(X, K, method, padding=padding, stride=stride))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    strict = cl.to_numpy(cl.conv2d(X, K, method, padding=padding, stride=stride))
    np.testing.assert_allclose(
        strict, correlate(padded, K[::-1, ::-1])[:: stride[0], :: stride[1]], rtol=1e-4, atol=1e-4
    )


def test_padding_and_stride_arguments_are_checked():
    X, K = cl.data.fig_correlation()
    with pytest.raises(ValueError, match="padding: expected non-negative sizes"):
        cl.corr2d(X, K, padding=-1)
    with pytest.raises(TypeError, match=r"padding: expected an int, \(p_h, p_w\) or \(top, bottom, left, right\)"):
        cl.corr2d(X, K, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="stride: expected positive sizes"):
        cl.corr2d(X, K, stride=0)
    with pytest.raises(ValueError, match=r"K: expected a kernel no larger than the padded input \(5, 5\)"):
        cl.corr2d(X, np.ones((6, 6)), padding=1)


# -- 7.4 channels ----------------------------------------------------------------------------------


def test_corr2d_multi_in_book_numbers(backend):
    X, K = channels_example()
    np.testing.assert_array_equal(cl.to_numpy(cl.corr2d_multi_in(X, K)), [[56, 72], [104, 120]])


def test_corr2d_multi_in_out_book_numbers(backend):
    X, K = channels_example()
    Y = cl.to_numpy(cl.corr2d_multi_in_out(X, np.stack([K, K + 1, K + 2])))
    assert Y.shape == (3, 2, 2)
    np.testing.assert_array_equal(Y[0], [[56, 72], [104, 120]])
    np.testing.assert_array_equal(Y[1], [[76, 100], [148, 172]])
    np.testing.assert_array_equal(Y[2], [[96, 128], [192, 224]])


def test_1x1_matrix_product_equals_the_general_version(backend):
    rng = np.random.default_rng(0)
    X, K = rng.normal(0, 1, (3, 3, 3)), rng.normal(0, 1, (2, 3, 1, 1))
    Y1, Y2 = cl.to_numpy(cl.corr2d_multi_in_out_1x1(X, K)), cl.to_numpy(cl.corr2d_multi_in_out(X, K))
    assert Y1.shape == (2, 3, 3)
    assert float(np.abs(Y1 - Y2).sum()) < 1e-6
    expected = np.einsum("oc,chw->ohw", K[:, :, 0, 0], X)  # float64
    np.testing.assert_allclose(Y1, expected, rtol=1e-5, atol=1e-5)


def test_channel_arguments_are_checked():
    X, K = channels_example()
    with pytest.raises(ValueError, match=r"X: expected a 3-D array \(channels, height, width\)"):
        cl.corr2d_multi_in(X[0], K)
    with pytest.raises(ValueError, match="K: expected 2 input channels, as X has, got 1"):
        cl.corr2d_multi_in(X, K[:1])
    with pytest.raises(ValueError, match="K: expected 1x1 kernels"):
        cl.corr2d_multi_in_out_1x1(X, K[None])


# -- 7.5 pooling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, expected", [("max", [[4, 5], [7, 8]]), ("avg", [[2, 3], [5, 6]])])
def test_pool2d_book_numbers(backend, mode, expected):
    X = np.arange(9, dtype=np.float32).reshape(3, 3)
    np.testing.assert_array_equal(cl.to_numpy(cl.pool2d(X, (2, 2), mode)), expected)


def test_pool2d_padding_stride_and_channels_book_numbers(backend):
    X = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(cl.to_numpy(cl.pool2d(X, 3, stride=3)), [[10]])
    np.testing.assert_array_equal(cl.to_numpy(cl.pool2d(X, 3, padding=1, stride=2)), [[5, 7], [13, 15]])
    two = cl.to_numpy(cl.pool2d(np.stack([X, X + 1]), 3, padding=1, stride=2))
    assert two.shape == (2, 2, 2)
    np.testing.assert_array_equal(two[1], [[6, 8], [14, 16]])


def test_max_pool_padding_never_wins(backend):
    X = -1 - np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(
        cl.to_numpy(cl.pool2d(X, 3, padding=1, stride=2)), [[-1, -2], [-5, -6]]
    )  # zero padding: 0


def test_avg_pool_counts_padded_zeros(backend):
    X = np.ones((2, 2), np.float32)
    np.testing.assert_allclose(cl.to_numpy(cl.pool2d(X, 2, "avg", padding=1, stride=2)), [[0.25, 0.25], [0.25, 0.25]])


def test_pool2d_arguments_are_checked():
    with pytest.raises(ValueError, match="mode: expected one of 'max', 'avg', got 'min'"):
        cl.pool2d(np.ones((3, 3)), 2, "min")
    with pytest.raises(ValueError, match=r"X: expected a non-empty 2-D or 3-D"):
        cl.pool2d(np.ones((1, 1, 3, 3)), 2)
    with pytest.raises(ValueError, match=r"pool_size: expected a kernel no larger than the padded input"):
        cl.pool2d(np.ones((3, 3)), 4)


# -- 7.2 as the book's Java edition runs it --------------------------------------------------------

JAVA_PRINTED = {2: 0.12571818, 4: 0.09935227, 6: 0.07851635, 8: 0.062050216, 10: 0.049037326}
"""d2l-java's printed losses (DJL, Loss.l2Loss, lr 0.4, NormalInitializer with sigma 0.01)."""
JAVA_PRINTED_KERNEL = [0.4475, -0.4477]


def test_java_edition_settings_from_zeros(backend):
    X = cl.data.edge_image()
    Y = cl.corr2d(X, cl.kernels.edge())
    result = cl.train_kernel(X, Y, lr=0.4, num_epochs=10, loss="l2", init="zeros", verbose=False)
    got = {i: result.losses[i - 1] for i in JAVA_PRINTED}
    assert [round(v, 4) for v in got.values()] == [0.1270, 0.1004, 0.0793, 0.0627, 0.0495]
    np.testing.assert_allclose(result.kernel, [[0.4448, -0.4448]], atol=1e-4)
    for i, printed in JAVA_PRINTED.items():  # the Java run started from random weights of sigma 0.01
        assert got[i] == pytest.approx(printed, rel=0.015)
    np.testing.assert_allclose(result.kernel[0], JAVA_PRINTED_KERNEL, rtol=0.015)


def test_l2_loss_is_half_the_mean_and_its_bound_scales(backend):
    X = cl.data.edge_image()
    Y = cl.corr2d(X, cl.kernels.edge())
    squared = cl.train_kernel(X, Y, num_epochs=1, init="normal", seed=3, verbose=False)
    half_mean = cl.train_kernel(X, Y, num_epochs=1, loss="l2", init="normal", seed=3, verbose=False)
    assert half_mean.losses[0] == pytest.approx(squared.losses[0] / (2 * 42), rel=1e-5)
    # 0.5 * mean over 42 outputs: the same gradient step at 84 times the learning rate
    assert cl.max_stable_lr(X, (1, 2), loss="l2") == pytest.approx(84 * cl.max_stable_lr(X, (1, 2)), rel=1e-9)
    with pytest.raises(cl.DivergenceError, match="largest stable learning rate"):
        bound = half_mean.max_stable_lr
        cl.train_kernel(X, Y, lr=1.05 * bound, num_epochs=200, loss="l2", init="normal", seed=0, verbose=False)
    calm = cl.train_kernel(X, Y, lr=0.95 * bound, num_epochs=200, loss="l2", init="normal", seed=0, verbose=False)
    np.testing.assert_allclose(calm.kernel, [[1, -1]], atol=1e-3)


def test_init_std_scales_the_normal_init():
    layer_losses = cl.train_kernel(
        cl.data.edge_image(),
        cl.corr2d(cl.data.edge_image(), [[1, -1]]),
        num_epochs=1,
        init="normal",
        seed=5,
        init_std=0.01,
        verbose=False,
    )
    expected = 0.01 * np.random.default_rng(5).standard_normal((1, 2))
    X, Y = cl.data.edge_image(), cl.to_numpy(cl.corr2d(cl.data.edge_image(), [[1, -1]]))
    assert layer_losses.losses[0] == pytest.approx(float(((correlate(X, expected) - Y) ** 2).sum()), rel=1e-5)
    with pytest.raises(ValueError, match="init_std: expected a positive number"):
        cl.train_kernel(X, Y, init="normal", init_std=0, verbose=False)
    with pytest.raises(ValueError, match="loss: expected one of 'squared', 'l2', got 'mse'"):
        cl.train_kernel(X, Y, loss="mse", verbose=False)


# -- gradients of the new functions, on every backend ----------------------------------------------


def test_new_functions_pass_gradcheck(backend):
    rng = np.random.default_rng(9)
    X3, K4 = rng.standard_normal((2, 4, 5)), rng.standard_normal((3, 2, 2, 2))
    distinct = rng.permutation(20).reshape(4, 5) * 0.1  # no ties within eps: max pooling's choice is stable
    checks = {
        "corr2d padded, strided": (
            lambda x, k: backend.sum(cl.corr2d(x, k, "vectorized", padding=(1, 0, 2, 1), stride=(2, 1)) ** 2),
            (rng.standard_normal((5, 6)), rng.standard_normal((2, 3))),
        ),
        "conv2d native, strided": (
            lambda x, k: backend.sum(cl.conv2d(x, k, "native", padding=1, stride=2) ** 2),
            (rng.standard_normal((5, 5)), rng.standard_normal((3, 3))),
        ),
        "corr2d_multi_in_out": (lambda x, k: backend.sum(cl.corr2d_multi_in_out(x, k) ** 2), (X3, K4)),
        "1x1 as a matrix product": (
            lambda x, k: backend.sum(cl.corr2d_multi_in_out_1x1(x, k) ** 2),
            (X3, rng.standard_normal((3, 2, 1, 1))),
        ),
        "max pool padded": (lambda x: backend.sum(cl.pool2d(x, 3, padding=1, stride=2) ** 2), (distinct,)),
        "avg pool": (lambda x: backend.sum(cl.pool2d(x, 2, "avg", padding=(0, 1)) ** 2), (distinct,)),
    }
    for name, (f, inputs) in checks.items():
        result = cl.gradcheck(f, *inputs, raise_exception=False)  # in float64: its default step and tolerances
        assert result.passed, f"{name}: {result.mismatches}"
