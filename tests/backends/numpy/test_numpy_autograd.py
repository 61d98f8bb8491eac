"""The NumPy autograd against independent references: SciPy, plain loops and finite differences in float64."""

from __future__ import annotations

import math
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import conv2d_reference, pool2d_reference
from scipy import signal

from convlab.backends.numpy import autograd as ag

Tensor = ag.Tensor


# References ------------------------------------------------------------------------------------------------------


def numerical_gradient(f, args, i, eps=1e-6):
    """Central differences of the scalar ``f(*args)`` with respect to ``args[i]``, in float64, on plain arrays."""
    args = [np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) else a for a in args]
    x = args[i]
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + eps
        up = float(np.asarray(f(*args)))
        x[index] = old - eps
        down = float(np.asarray(f(*args)))
        x[index] = old
        grad[index] = (up - down) / (2 * eps)
    return grad


def check_gradients(op, *args, seed=0):
    """Every array argument's gradient of ``op`` against central differences.

    A non-scalar output is projected on a fixed random array R first: the
    scalar ``sum(op(*args) * R)`` exercises every entry of op's backward rule.
    """
    args = [np.asarray(a, dtype=np.float64) if isinstance(a, (np.ndarray, list)) else a for a in args]
    R = np.random.default_rng(seed).standard_normal(np.shape(op(*args)))

    def loss(*xs):
        return ag.sum(ag.multiply(op(*xs), R))

    value, grads = ag.value_and_grad(loss, *args)
    assert value == pytest.approx(float(np.sum(np.asarray(op(*args)) * R)))
    checked = 0
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            assert grads[i] is not None, f"argument {i} got no gradient"
            assert grads[i].shape == a.shape and grads[i].dtype == a.dtype
            np.testing.assert_allclose(grads[i], numerical_gradient(loss, args, i), rtol=1e-6, atol=1e-6)
            checked += 1
    assert checked


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    C_group, per_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kH, kW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    H = draw(st.integers(max(1, kH - padding[0] - padding[1]), 7))
    W = draw(st.integers(max(1, kW - padding[2] - padding[3]), 7))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    N = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, groups * C_group, H, W))
    w = rng.standard_normal((groups * per_group, C_group, kH, kW))
    return x, w, stride, padding, groups


@st.composite
def pool_cases(draw):
    kH, kW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # Padding at most half the window, as frameworks require: every window then holds an input value.
    padding = (*(draw(st.integers(0, kH // 2)) for _ in range(2)), *(draw(st.integers(0, kW // 2)) for _ in range(2)))
    H = draw(st.integers(max(1, kH - padding[0] - padding[1]), 7))
    W = draw(st.integers(max(1, kW - padding[2] - padding[3]), 7))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), H, W)
    x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(shape)
    return x, (kH, kW), stride, padding, draw(st.sampled_from(["max", "avg"]))


def rand(*shape, seed=1, low=None):
    """Standard normal numbers; with ``low``, uniform in [low, low + 1) instead."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) if low is None else low + rng.random(shape)


def distinct(*shape, seed=2):
    """Values at least 0.1 apart, so a max pool has no ties that a finite difference could flip."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1


# Forward passes --------------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(conv_cases())
def test_conv2d_matches_scipy(case):
    x, w, stride, padding, groups = case
    got = ag.conv2d(x, w, stride=stride, padding=padding, groups=groups)
    np.testing.assert_allclose(got, conv2d_reference(x, w, stride, padding, groups), rtol=1e-12, atol=1e-12)


def test_conv2d_books_numbers():
    X = np.arange(9.0).reshape(1, 1, 3, 3)
    K = np.arange(4.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(ag.conv2d(X, K), [[[[19.0, 25.0], [37.0, 43.0]]]])


def test_conv2d_output_shape_and_bad_groups():
    x = np.zeros((2, 4, 9, 8))
    assert ag.conv2d(x, np.zeros((6, 2, 3, 2)), stride=(2, 3), padding=(1, 0, 2, 1), groups=2).shape == (2, 6, 4, 4)
    with pytest.raises(ValueError, match="groups"):
        ag.conv2d(x, np.zeros((6, 3, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="does not fit"):
        ag.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))


@settings(max_examples=20, deadline=None)
@given(conv_cases())
def test_conv2d_with_bias_matches_scipy_plus_the_bias(case):
    x, w, stride, padding, groups = case
    bias = np.random.default_rng(w.size).standard_normal(w.shape[0])
    got = ag.conv2d(x, w, stride, padding, groups, bias=bias)
    expected = conv2d_reference(x, w, stride, padding, groups) + bias[None, :, None, None]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("n", "features_in", "features_out"), [(1, 1, 1), (5, 3, 4), (128, 400, 120)])
def test_linear_matches_a_float64_loop(n, features_in, features_out):
    x, w, b = rand(n, features_in, seed=1), rand(features_out, features_in, seed=2), rand(features_out, seed=3)
    expected = np.array(
        [[sum(x[i, k] * w[j, k] for k in range(features_in)) for j in range(features_out)] for i in range(n)]
    )
    np.testing.assert_allclose(ag.linear(x, w), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ag.linear(x, w, b), expected + b, rtol=1e-12, atol=1e-12)


def test_bias_of_the_wrong_shape_is_refused():
    with pytest.raises(
        ValueError, match=r"bias must have shape \(3,\), one value per output channel, but has shape \(1,\)"
    ):
        ag.conv2d(np.zeros((1, 2, 4, 4)), np.zeros((3, 2, 2, 2)), bias=np.zeros(1))
    with pytest.raises(
        ValueError, match=r"bias must have shape \(4,\), one value per output feature, but has shape \(\)"
    ):
        ag.linear(np.zeros((2, 3)), np.zeros((4, 3)), bias=0.5)


@settings(max_examples=30, deadline=None)
@given(pool_cases())
def test_pool2d_matches_loop(case):
    x, window, stride, padding, mode = case
    got = ag.pool2d(x, window, stride, padding, mode)
    np.testing.assert_allclose(got, pool2d_reference(x, window, stride, padding, mode), rtol=1e-12, atol=1e-12)


def test_pool2d_books_numbers():
    X = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(ag.pool2d(X, (2, 2), (1, 1))[0, 0], [[4.0, 5.0], [7.0, 8.0]])
    np.testing.assert_array_equal(ag.pool2d(X, (2, 2), (1, 1), mode="avg")[0, 0], [[2.0, 3.0], [5.0, 6.0]])
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(ag.pool2d(X, (3, 3), (2, 2), (1, 1, 1, 1))[0, 0], [[5.0, 7.0], [13.0, 15.0]])
    np.testing.assert_array_equal(ag.pool2d(X, (3, 3))[0, 0], [[10.0]])  # stride defaults to the window


def test_pool2d_padding_never_wins_a_max():
    X = -np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(ag.pool2d(X, (2, 2), (1, 1), (1, 1, 1, 1)), -np.ones((1, 1, 3, 3)))


def test_pool2d_average_counts_the_padding():
    X = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(ag.pool2d(X, (2, 2), (2, 2), (1, 1, 1, 1), mode="avg"), np.full((1, 1, 2, 2), 0.25))


# Backward rules against finite differences -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "shapes"),
    [
        (ag.add, [(3, 4), (3, 4)]),
        (ag.add, [(3, 4), (4,)]),
        (ag.add, [(2, 1, 3), (4, 1)]),
        (ag.subtract, [(3, 1), (1, 5)]),
        (ag.multiply, [(3, 4), (4,)]),
        (ag.multiply, [(2, 1, 3), (2, 4, 1)]),
        (ag.matmul, [(3, 4), (4, 5)]),
        (ag.matmul, [(2, 3, 4), (4, 5)]),
        (ag.matmul, [(3, 4), (2, 4, 5)]),
        (ag.matmul, [(2, 1, 3, 4), (5, 4, 2)]),
        (ag.matmul, [(4,), (4, 5)]),
        (ag.matmul, [(3, 4), (4,)]),
        (ag.matmul, [(4,), (4,)]),
    ],
)
def test_binary_gradients(op, shapes):
    check_gradients(op, *(rand(*s, seed=i) for i, s in enumerate(shapes)))


def test_divide_gradients():
    check_gradients(ag.divide, rand(3, 4), rand(4, low=0.5))
    check_gradients(ag.divide, rand(3, 4), rand(3, 1, low=-1.5))


def test_operators_with_scalars_and_arrays_on_either_side():
    x = rand(3, 4)
    check_gradients(lambda a: 2.0 * a + 1 - a / 3.0, x)
    check_gradients(lambda a: 1.0 / (a * a + 1) - 2 * a, x)
    check_gradients(lambda a, b: b - a * b + b / (a * a + 1), x, rand(4, seed=5))  # Tensor op ndarray
    check_gradients(lambda a: np.ones(4) - a @ np.ones((4, 4)) + np.arange(4.0) * a, x)  # ndarray op Tensor
    check_gradients(lambda a: -a, x)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.0, 1.5])
def test_power_gradients(exponent):
    check_gradients(lambda a: ag.power(a, exponent), rand(3, 4, low=0.5))
    check_gradients(lambda a: a**exponent, rand(2, 3, low=0.5))


@pytest.mark.parametrize(
    ("op", "low"),
    [(ag.sigmoid, None), (ag.exp, None), (ag.log, 0.5), (ag.negative, None)],
    ids=["sigmoid", "exp", "log", "negative"],
)
def test_elementwise_gradients(op, low):
    check_gradients(op, rand(3, 4, low=low))


def test_relu_gradients():
    x = rand(4, 5)
    x[np.abs(x) < 1e-2] = 0.5  # keep away from the kink, where finite differences are meaningless
    check_gradients(ag.relu, x)


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is harmless
        np.testing.assert_allclose(ag.sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(ag.sigmoid(np.array([-1000.0, 1000.0], np.float32)), [0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_accurate_in_both_tails(dtype):
    x = np.array([-80.0, -30.0, -5.0, -0.5, 0.0, 0.5, 5.0, 30.0, 80.0])
    expected = np.array([math.exp(-math.log1p(math.exp(-v))) for v in x])  # float64, by the standard library
    np.testing.assert_allclose(ag.sigmoid(x.astype(dtype)), expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_sigmoid_of_integers_and_scalars():
    np.testing.assert_allclose(ag.sigmoid(np.array([0, 2])), [0.5, 1 / (1 + math.exp(-2))], rtol=1e-15)
    assert type(ag.sigmoid(0.0)) is np.ndarray and ag.sigmoid(0.0) == 0.5


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_log_softmax_gradients_and_values(axis):
    x = rand(3, 4)
    check_gradients(lambda a: ag.log_softmax(a, axis=axis), x)
    expected = x - np.log(np.exp(x).sum(axis=axis, keepdims=True))
    np.testing.assert_allclose(ag.log_softmax(x, axis=axis), expected)
    np.testing.assert_allclose(ag.log_softmax(x + 1000.0, axis=axis), expected)  # no overflow


@pytest.mark.parametrize("reduce", [ag.sum, ag.mean])
@pytest.mark.parametrize(("axis", "keepdims"), [(None, False), (None, True), (0, False), (-1, True), ((0, 2), False)])
def test_reduction_gradients(reduce, axis, keepdims):
    x = rand(2, 3, 4)
    check_gradients(lambda a: reduce(a, axis=axis, keepdims=keepdims), x)
    np_reduce = np.sum if reduce is ag.sum else np.mean
    np.testing.assert_allclose(reduce(x, axis=axis, keepdims=keepdims), np_reduce(x, axis=axis, keepdims=keepdims))


def test_tensor_methods_gradients():
    x = rand(2, 3, 4)
    check_gradients(lambda a: a.sum(axis=1), x)  # an ndarray's method too: the same code runs on both
    check_gradients(lambda a: ag.mean(a, axis=(1, 2), keepdims=True), x)
    check_gradients(lambda a: ag.reshape(a, (4, -1)), x)
    check_gradients(lambda a: ag.transpose(a, (2, 0, 1)), x)
    check_gradients(lambda a: ag.transpose(a, (-1, 0, -2)), x)
    check_gradients(ag.transpose, x)
    x2 = rand(3, 4)
    _, (g,) = ag.value_and_grad(lambda a: (a.T @ a.reshape(3, 4)).mean() + a.transpose(1, 0).sum(), x2)
    expected = numerical_gradient(lambda a: (a.T @ a.reshape(3, 4)).mean() + a.T.sum(), [x2], 0)
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "index",
    [
        1,
        (slice(None), 2),
        (Ellipsis, slice(1, 3)),
        (None, 0, slice(None, None, -1)),
        ([0, 0, 2],),  # a row picked twice: its gradient adds up
        (np.array([1, 1]), np.array([3, 3])),  # one element picked twice
        (slice(None), [3, 0, 3]),
        np.array([[True, False, True, False]] * 3),
    ],
    ids=str,
)
def test_getitem_gradients(index):
    x = rand(3, 4)
    check_gradients(lambda a: ag.getitem(a, index), x)
    np.testing.assert_array_equal(ag.getitem(x, index), x[index])


@pytest.mark.parametrize("pad_width", [1, (1, 2), ((0, 1), (2, 0))])
def test_pad_gradients(pad_width):
    x = rand(3, 4)
    check_gradients(lambda a: ag.pad(a, pad_width), x)
    np.testing.assert_array_equal(ag.pad(x, pad_width), np.pad(x, pad_width))


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "groups"),
    [
        ((1, 1, 6, 8), (1, 1, 1, 2), (1, 1), (0, 0, 0, 0), 1),  # the chapter's edge detector
        ((1, 1, 5, 5), (1, 1, 3, 3), (1, 1), (1, 1, 1, 1), 1),
        ((2, 3, 6, 5), (4, 3, 2, 3), (1, 1), (0, 0, 0, 0), 1),
        ((1, 2, 7, 7), (3, 2, 2, 2), (2, 2), (0, 0, 0, 0), 1),  # 7 - 2 not divisible by 2: last row untouched
        ((1, 1, 8, 7), (2, 1, 3, 2), (3, 2), (0, 1, 2, 0), 1),  # 4-sided padding, two strides
        ((2, 4, 6, 6), (6, 2, 3, 3), (2, 1), (1, 0, 0, 1), 2),  # groups
        ((1, 3, 5, 6), (3, 1, 2, 2), (1, 2), (1, 1, 0, 2), 3),  # depthwise
        ((1, 1, 4, 4), (1, 1, 4, 4), (2, 2), (1, 1, 1, 1), 1),  # stride bigger than the overlap
    ],
)
def test_conv2d_gradients(x_shape, w_shape, stride, padding, groups):
    x, w = rand(*x_shape, seed=3), rand(*w_shape, seed=4)
    check_gradients(lambda a, b: ag.conv2d(a, b, stride, padding, groups), x, w)
    check_gradients(lambda b: ag.conv2d(x, b, stride, padding, groups), w)  # only the weight tracked
    check_gradients(lambda a: ag.conv2d(a, w, stride, padding, groups), x)  # only the input tracked


@settings(max_examples=15, deadline=None)
@given(conv_cases())
def test_conv2d_gradients_random(case):
    x, w, stride, padding, groups = case
    check_gradients(lambda a, b: ag.conv2d(a, b, stride, padding, groups), x, w)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "groups"),
    [
        ((5, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), 1),  # gather: the input gradient as a convolution
        ((5, 2, 7, 6), (6, 2, 3, 2), (1, 1), (0, 1, 2, 0), 1),  # scatter: more outputs than inputs
        ((5, 3, 8, 7), (4, 3, 3, 3), (2, 2), (1, 1, 1, 1), 1),  # scatter: a stride
        ((5, 4, 6, 6), (6, 2, 3, 3), (1, 1), (1, 1, 1, 1), 2),  # groups
    ],
)
def test_conv2d_in_chunks_of_images_is_the_same_convolution(monkeypatch, x_shape, w_shape, stride, padding, groups):
    # Large batches are convolved a few images at a time; one image per chunk must give what one chunk gives.
    x, w, b = rand(*x_shape, seed=1), rand(*w_shape, seed=2), rand(w_shape[0], seed=3)

    def run():
        tx, tw, tb = (Tensor(v, requires_grad=True) for v in (x, w, b))
        y = ag.conv2d(tx, tw, stride, padding, groups, tb)
        y.backward(rand(*y.shape, seed=4))
        return y.data, tx.grad, tw.grad, tb.grad

    whole = run()
    monkeypatch.setattr(ag, "_CHUNK_BYTES", 1)
    for ours, expected in zip(run(), whole, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_in_small_products_is_the_same_convolution(monkeypatch):
    # A layer with few small kernels is convolved in chunks whose products stay under _SMALL_PRODUCT
    # multiply-adds, every chunk in the same buffers: here 9 images as 2 + 2 + 2 + 2 + 1.
    x, w, b = rand(9, 1, 8, 8, seed=1), rand(3, 1, 5, 5, seed=2), rand(3, seed=3)

    def run():
        tx, tw, tb = (Tensor(v, requires_grad=True) for v in (x, w, b))
        y = ag.conv2d(tx, tw, padding=(2, 2, 2, 2), bias=tb)
        y.backward(rand(*y.shape, seed=4))
        return y.data, tx.grad, tw.grad, tb.grad

    whole = run()
    macs_per_image = 3 * 25 * (7 * 12 + 8)  # C_out * C * kH * kW * L, with L = (H_out - 1) * Wp + W_out
    monkeypatch.setattr(ag, "_SMALL_PRODUCT", 2 * macs_per_image)
    monkeypatch.setattr(ag, "_SMALL_IMAGES", 2)
    assert len(ag._image_chunks(9, 1, macs_per_image)) == 5
    for ours, expected in zip(run(), whole, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [(0, 0, 0, 0), (1, 0, 2, 1), (2, 2, 2, 2)])
def test_conv2d_input_gradient_is_the_full_convolution_of_output_gradient_and_kernel(padding):
    # The transposed convolution, from SciPy: dX[n, c] = sum_o convolve2d(dY[n, o], W[o, c], "full"),
    # cropped to the unpadded input. Shapes as LeNet's second layer, smaller.
    top, bottom, left, right = padding
    x, w = rand(2, 3, 9, 8, seed=1), rand(4, 3, 5, 4, seed=2)
    H_out, W_out = 9 + top + bottom - 5 + 1, 8 + left + right - 4 + 1
    dY = rand(2, 4, H_out, W_out, seed=3)
    t = Tensor(x, requires_grad=True)
    ag.conv2d(t, w, padding=padding).backward(dY)
    full = np.array([[sum(signal.convolve2d(dY[n, o], w[o, c]) for o in range(4)) for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(t.grad, full[:, :, top : top + 9, left : left + 8], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "groups"),
    [
        ((2, 1, 6, 6), (3, 1, 3, 3), (1, 1), (1, 1, 1, 1), 1),
        ((1, 4, 7, 6), (6, 2, 2, 3), (2, 1), (0, 1, 2, 0), 2),
    ],
)
def test_conv2d_with_bias_gradients(x_shape, w_shape, stride, padding, groups):
    x, w, b = rand(*x_shape, seed=3), rand(*w_shape, seed=4), rand(w_shape[0], seed=5)
    check_gradients(lambda a, k, c: ag.conv2d(a, k, stride, padding, groups, bias=c), x, w, b)
    check_gradients(lambda c: ag.conv2d(x, w, stride, padding, groups, bias=c), b)  # only the bias tracked
    check_gradients(lambda a, k: ag.conv2d(a, k, stride, padding, groups, bias=b), x, w)  # a constant bias


def test_conv2d_bias_gradient_is_the_output_gradient_summed_over_batch_and_pixels():
    x, w = Tensor(rand(3, 2, 5, 6, seed=1)), Tensor(rand(4, 2, 3, 3, seed=2))
    b = Tensor(np.zeros(4), requires_grad=True)
    dY = rand(3, 4, 3, 4, seed=3)
    ag.conv2d(x, w, bias=b).backward(dY)
    np.testing.assert_allclose(b.grad, [dY[:, o].sum() for o in range(4)], rtol=1e-12)
    assert x.grad is None and w.grad is None  # constants: no gradient computed for them


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_gradients(with_bias):
    x, w, b = rand(4, 3, seed=1), rand(5, 3, seed=2), rand(5, seed=3)
    if with_bias:
        check_gradients(ag.linear, x, w, b)
        check_gradients(lambda c: ag.linear(x, w, c), b)
    else:
        check_gradients(ag.linear, x, w)
    check_gradients(lambda a: ag.linear(a, w, b if with_bias else None), x)
    check_gradients(lambda k: ag.linear(x, k, b if with_bias else None), w)


def test_linear_gradients_are_the_matrix_products_of_the_dense_layer():
    x, w, b = rand(6, 4, seed=1), rand(3, 4, seed=2), rand(3, seed=3)
    G = rand(6, 3, seed=4)
    tx, tw, tb = (Tensor(v, requires_grad=True) for v in (x, w, b))
    ag.linear(tx, tw, tb).backward(G)
    # Independent: the Jacobians of the row-major vec(Y) written out in full, applied to vec(G).
    jac_x = np.kron(np.eye(6), w)  # Y[n, j] depends on X[n', k] through W[j, k] when n == n'
    jac_w = np.einsum("jJ,nk->njJk", np.eye(3), x).reshape(18, 12)  # ... on W[j', k] through X[n, k] when j == j'
    jac_b = np.tile(np.eye(3), (6, 1))
    np.testing.assert_allclose(tx.grad.ravel(), G.ravel() @ jac_x, rtol=1e-12)
    np.testing.assert_allclose(tw.grad.ravel(), G.ravel() @ jac_w, rtol=1e-12)
    np.testing.assert_allclose(tb.grad, G.ravel() @ jac_b, rtol=1e-12)


def test_conv2d_weight_gradient_is_the_correlation_of_input_and_output_gradient():
    X = rand(6, 8, seed=5)
    dY = rand(4, 6, seed=6)
    w = Tensor(rand(1, 1, 3, 3, seed=7), requires_grad=True)
    ag.conv2d(X[None, None], w).backward(dY[None, None])
    np.testing.assert_allclose(w.grad[0, 0], signal.correlate(X, dY, mode="valid"), rtol=1e-12)


@pytest.mark.parametrize(
    ("shape", "window", "stride", "padding"),
    [
        ((1, 1, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0)),
        ((1, 1, 3, 3), (2, 2), (1, 1), (0, 0, 0, 0)),  # overlapping windows
        ((2, 2, 5, 6), (3, 3), (2, 2), (1, 1, 1, 1)),
        ((1, 2, 5, 7), (3, 2), (2, 3), (1, 0, 1, 0)),  # untouched last column, one-sided padding
        ((1, 1, 4, 5), (3, 3), (1, 1), (1, 1, 1, 1)),
    ],
)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool2d_gradients(shape, window, stride, padding, mode):
    x = distinct(*shape) if mode == "max" else rand(*shape)
    check_gradients(lambda a: ag.pool2d(a, window, stride, padding, mode), x)


@settings(max_examples=15, deadline=None)
@given(pool_cases())
def test_pool2d_gradients_random(case):
    x, window, stride, padding, mode = case
    if mode == "max":
        x = distinct(*x.shape)
    check_gradients(lambda a: ag.pool2d(a, window, stride, padding, mode), x)


def test_value_and_grad_differentiates_a_tensor_argument_as_a_fresh_leaf():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w.grad = np.array([100.0, 100.0])
    _, (g,) = ag.value_and_grad(lambda t: ag.sum(t * 3.0), w)
    np.testing.assert_array_equal(g, [3.0, 3.0])
    np.testing.assert_array_equal(w.grad, [100.0, 100.0])  # the caller's Tensor is left alone


def test_max_pool_gradient_goes_to_the_first_maximum_on_ties():
    x = Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    ag.pool2d(x, (2, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_a_small_network_end_to_end():
    images, labels = rand(4, 1, 6, 6, seed=8), np.array([0, 2, 1, 2])
    params = [rand(3, 1, 3, 3, seed=9), rand(3, seed=10), rand(3 * 2 * 2, 3, seed=11)]

    def loss(w, b, dense):
        h = ag.relu(ag.conv2d(images, w, padding=(1, 1, 1, 1)) + ag.reshape(b, (1, 3, 1, 1)))
        h = ag.pool2d(h, (3, 3), (3, 3), mode="avg")
        scores = ag.reshape(h, (4, -1)) @ dense
        return -ag.mean(ag.log_softmax(scores)[np.arange(4), labels])

    _, grads = ag.value_and_grad(loss, *params)
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g, numerical_gradient(loss, params, i), rtol=1e-5, atol=1e-7)


# value_and_grad, the graph, and plain arrays ---------------------------------------------------------------------


def test_value_and_grad_gives_none_for_an_unused_argument():
    value, (gx, gy, gz) = ag.value_and_grad(lambda x, y, z: ag.sum(x * x) + z, np.array([1.0, 2.0]), np.ones(3), 0.5)
    assert value == 5.5 and isinstance(value, float)
    np.testing.assert_array_equal(gx, [2.0, 4.0])
    assert gy is None  # no path from y to the output: None, not zeros
    assert gz == 1.0


def test_value_and_grad_passes_other_arguments_through():
    value, grads = ag.value_and_grad(lambda x, k: ag.sum(x[:k]), np.arange(4.0), 2)
    assert value == 1.0
    np.testing.assert_array_equal(grads[0], [1.0, 1.0, 0.0, 0.0])
    assert grads[1] is None


def test_value_and_grad_says_what_came_back():
    with pytest.raises(TypeError, match=r"returned ndarray: the graph was lost"):
        ag.value_and_grad(lambda x: np.asarray(x).sum(keepdims=True), np.ones(3))
    with pytest.raises(TypeError, match="returned str"):
        ag.value_and_grad(lambda x: "no", np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        ag.value_and_grad(lambda x: x * 2, np.ones(3))


def corr2d_loop(X, K):
    """The book's loop: each output pixel is written into a plain NumPy array."""
    h, w = K.shape
    Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def test_the_books_loop_drops_the_graph():
    # Expected outcome, not a bug: writing a Tensor into an ndarray keeps the number and
    # loses the graph, so the kernel gets no gradient. Only the bias, added afterwards, does.
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    Y = corr2d_loop(X, np.array([[1.0, -1.0]]))

    def loss(K, b):
        return ag.sum((corr2d_loop(X, K) + b - Y) ** 2)

    K0 = np.array([[0.5, 0.25]])
    value, (gK, gb) = ag.value_and_grad(loss, K0, 0.0)
    residual = corr2d_loop(X, K0) - Y
    assert value == pytest.approx((residual**2).sum())
    assert gK is None
    assert gb == pytest.approx(2 * residual.sum())

    # The same layer through conv2d keeps the graph, and the kernel's gradient is the exact one.
    def conv_loss(K, b):
        return ag.sum((ag.conv2d(X[None, None], K) + b - Y) ** 2)

    _, (gK, _) = ag.value_and_grad(conv_loss, K0[None, None], 0.0)
    np.testing.assert_allclose(gK[0, 0], signal.correlate(X, 2 * residual, mode="valid"))


PLAIN_CALLS = {
    "add": lambda x: ag.add(x, 1.0),
    "subtract": lambda x: ag.subtract(2.0, x),
    "multiply": lambda x: ag.multiply(x, x),
    "divide": lambda x: ag.divide(x, 2.0),
    "negative": ag.negative,
    "power": lambda x: ag.power(x, 2),
    "matmul": lambda x: ag.matmul(x[0, 0], x[0, 0].T),
    "sigmoid": ag.sigmoid,
    "relu": ag.relu,
    "exp": ag.exp,
    "log": lambda x: ag.log(ag.exp(x)),
    "log_softmax": ag.log_softmax,
    "sum": ag.sum,
    "mean": ag.mean,
    "sum_axis": lambda x: ag.sum(x, axis=1),
    "reshape": lambda x: ag.reshape(x, (-1,)),
    "transpose": ag.transpose,
    "getitem": lambda x: ag.getitem(x, (0, 0, [1, 1])),
    "pad": lambda x: ag.pad(x, 1),
    "argmax": ag.argmax,
    "conv2d": lambda x: ag.conv2d(x, np.ones((1, 1, 2, 2))),
    "conv2d_bias": lambda x: ag.conv2d(x, np.ones((1, 1, 2, 2)), bias=np.ones(1)),
    "linear": lambda x: ag.linear(x[0, 0], np.ones((3, 4)), np.ones(3)),
    "pool2d": lambda x: ag.pool2d(x, (2, 2)),
}


@pytest.mark.parametrize("name", list(PLAIN_CALLS))
def test_plain_arrays_give_plain_arrays(name):
    out = PLAIN_CALLS[name](rand(1, 1, 4, 4))
    assert type(out) is np.ndarray


@pytest.mark.parametrize("name", [n for n in PLAIN_CALLS if n != "argmax"])
def test_constant_tensors_give_constant_tensors(name):
    out = PLAIN_CALLS[name](Tensor(rand(1, 1, 4, 4)))
    assert isinstance(out, Tensor) and not out.requires_grad and out._parents == ()


def test_python_scalars_give_arrays():
    assert type(ag.add(1.0, 2.0)) is np.ndarray and ag.add(1.0, 2.0) == 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = Tensor(rand(1, 2, 5, 5).astype(dtype), requires_grad=True)
    w = Tensor(rand(2, 1, 2, 2).astype(dtype), requires_grad=True)
    b = Tensor(np.zeros(2, dtype), requires_grad=True)
    dense = Tensor(rand(3, 4).astype(dtype), requires_grad=True)
    dense_bias = Tensor(np.ones(3, dtype), requires_grad=True)
    h = ag.conv2d(x, w, stride=(2, 1), padding=(1, 0, 0, 1), groups=2) * 0.5 + ag.reshape(b, (1, 2, 1, 1))
    h = ag.conv2d(h, w, groups=2, bias=b)
    h = ag.pool2d(ag.sigmoid(h), (2, 2), mode="avg") - ag.pool2d(h, (2, 2))
    h = ag.linear(ag.reshape(h, (1, -1)), dense, dense_bias)
    loss = ag.mean(ag.log_softmax(h) ** 2) / 2.0
    assert loss.dtype == dtype
    loss.backward()
    for t in (x, w, b, dense, dense_bias):
        assert t.grad.dtype == dtype and t.grad.shape == t.shape
    _, grads = ag.value_and_grad(lambda a: ag.sum(ag.relu(a) * 2.0), rand(3).astype(dtype))
    assert grads[0].dtype == dtype


def test_deep_graph_does_not_recurse():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + x * 0.5
    y.backward()
    assert float(x.grad) == pytest.approx(1 + 20_000 * 0.5)


def test_gradients_accumulate_over_backward_calls_and_are_owned():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (x + y).sum().backward()
    x.grad *= 10  # the leaves' gradients are their own arrays, not views shared with each other
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    ag.sum(x * y).backward()
    np.testing.assert_array_equal(x.grad, [13.0, 14.0])


def test_backward_on_a_leaf_fills_its_own_gradient():
    x = Tensor(np.array(3.0), requires_grad=True)
    x.backward()
    assert x.grad == 1.0
    x.backward()
    assert x.grad == 2.0


def test_a_leaf_reached_by_many_paths_gets_the_sum_of_them():
    # Leaves take their shares as they come, not through the pending heap: x feeds three nodes
    # made at different times, and an intermediate result (y) feeds two.
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = x * x
    z = ag.sum(y * 3.0 + x) + ag.sum(ag.exp(y)) + ag.sum(x)
    z.backward()
    xv = np.array([1.0, -2.0])
    np.testing.assert_allclose(x.grad, 6 * xv + 1 + 2 * xv * np.exp(xv**2) + 1, rtol=1e-14)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_outputs_are_c_contiguous(mode):
    # Later layers reshape them (Flatten) and pool them; a transposed view would make each a copy.
    x = rand(4, 3, 8, 8)
    assert ag.conv2d(x, rand(5, 3, 3, 3), padding=(1, 1, 1, 1)).flags.c_contiguous
    assert ag.conv2d(x, rand(5, 3, 3, 3), bias=np.ones(5)).flags.c_contiguous
    assert ag.pool2d(x, (2, 2), mode=mode).flags.c_contiguous


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_that_tiles_the_input_matches_the_loop(mode):
    # Window == stride and a size it divides: the gradient is written without zeros, once per pixel.
    x = distinct(3, 4, 10, 12)
    np.testing.assert_allclose(ag.pool2d(x, (2, 2), mode=mode), pool2d_reference(x, (2, 2), (2, 2), (0,) * 4, mode))
    check_gradients(lambda a: ag.pool2d(a, (2, 2), mode=mode), distinct(2, 2, 4, 6))


def test_backward_needs_a_gradient_for_a_non_scalar():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_tensor_basics():
    t = Tensor(np.arange(6).reshape(2, 3), requires_grad=True)
    assert t.dtype == np.float64 and t.shape == (2, 3) and t.ndim == 2 and len(t) == 2
    assert type(np.asarray(t)) is np.ndarray
    assert isinstance(np.ones(3) + t, Tensor) and isinstance(np.ones((3, 2)) @ t, Tensor)
    assert "requires_grad=True" in repr(t) and repr(Tensor(1.0)) == "Tensor(1., dtype=float64)"
    with pytest.raises(TypeError, match="ufunc"):
        np.exp(t)  # NumPy's functions would silently drop the graph: they refuse instead


# Reusing memory from step to step ---------------------------------------------------------------------------------


def test_a_workspace_reuses_an_array_only_once_nothing_reaches_it():
    workspace = ag.Workspace()
    first = workspace.empty((256, 256), np.float32)
    address = first.__array_interface__["data"][0]
    view = first.reshape(-1)[::2]  # a view outlives the array it came from
    del first
    second = workspace.empty((256, 256), np.float32)
    assert not np.shares_memory(second, view)
    del view
    third = workspace.empty((256, 256), np.float32)
    assert third.__array_interface__["data"][0] == address  # the first one's memory, free again


def test_a_workspace_forgets_arrays_no_step_asked_for():
    workspace = ag.Workspace()
    array = workspace.empty((300, 300), np.float32)
    memory = weakref.ref(array.base.memory)
    del array
    workspace.release_unused()  # handed out during this step: kept for the next
    assert memory() is not None
    workspace.empty((100, 100), np.float32)  # the next step asks for other shapes only (a smaller batch)
    workspace.release_unused()
    assert memory() is None


def _lenet_step(X, Y, params):
    """A LeNet-shaped computation on the primitives: its loss, gradients and the activations a caller might keep."""
    h = ag.sigmoid(ag.conv2d(X, params[0], padding=(2, 2, 2, 2), bias=params[1]))
    h = ag.pool2d(h, (2, 2), mode="avg")
    h = ag.relu(ag.conv2d(h, params[2], bias=params[3]))
    h = ag.pool2d(h, (2, 2), mode="max")
    logits = ag.linear(ag.reshape(h, (X.shape[0], -1)), params[4])
    loss = -ag.sum(Y * ag.log_softmax(logits, 1)) / X.shape[0]
    loss.backward()
    return loss, h, [p.grad for p in params]


def test_primitives_in_a_workspace_give_the_same_bits_and_never_overwrite_what_is_still_held():
    rng = np.random.default_rng(0)
    shapes = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (10, 400)]
    values = [rng.standard_normal(shape).astype(np.float32) * 0.3 for shape in shapes]
    batches = [rng.random((64, 1, 28, 28), dtype=np.float32) for _ in range(3)]
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]

    def run(X, workspace):
        params = [Tensor(v, requires_grad=True) for v in values]
        if workspace is None:
            return _lenet_step(X, Y, params)
        with ag.reusing(workspace):
            return _lenet_step(X, Y, params)

    workspace = ag.Workspace()
    held = []  # what a caller keeps from each step: the loss, an activation (a Tensor and a view), the gradients
    for X in batches:
        loss, h, grads = run(X, workspace)
        expected_loss, expected_h, expected_grads = run(X, None)
        assert loss.data.tobytes() == expected_loss.data.tobytes()
        assert h.data.tobytes() == expected_h.data.tobytes()
        assert all(g.tobytes() == e.tobytes() for g, e in zip(grads, expected_grads, strict=True))
        held.append((loss, h, h.data[:, 3], grads, [a.copy() for a in (loss.data, h.data, *grads)]))
        del h  # only the view of it is held now, for the next steps
    for loss, h, view, grads, copies in held:
        assert all(np.array_equal(a, c) for a, c in zip((loss.data, h.data, *grads), copies, strict=True))
        assert np.array_equal(view, copies[1][:, 3])
    # the workspace does reuse: a step whose results nobody keeps hands its memory to the next
    run(batches[0], workspace)
    blocks = sum(len(b) for b in workspace._blocks.values())
    for _ in range(3):
        run(batches[0], workspace)
    assert sum(len(b) for b in workspace._blocks.values()) == blocks


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "groups"),
    [
        ((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2, 2, 2), 1),  # LeNet's first layer: many small chunks
        ((64, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0, 0, 0), 1),  # its second: one chunk, input gradient scattered
        ((32, 8, 16, 16), (8, 8, 3, 3), (1, 1), (1, 1, 1, 1), 1),  # input gradient gathered
        ((16, 8, 17, 17), (12, 4, 3, 3), (2, 2), (1, 0, 1, 0), 2),  # strided, grouped, uneven padding
        ((1, 3, 64, 64), (1, 3, 3, 3), (2, 2), (0, 0, 0, 0), 1),  # one image, one kernel: a product that is NCHW
        ((8, 16, 32, 32), (8, 16, 1, 1), (1, 1), (0, 0, 0, 0), 1),  # 1x1: the pixels are the columns
        ((1, 16, 32, 32), (8, 16, 1, 1), (1, 1), (0, 0, 0, 0), 1),
    ],
)
def test_conv2d_and_pooling_in_a_workspace_give_the_eager_bits(x_shape, w_shape, stride, padding, groups):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    bias = rng.standard_normal(w_shape[0]).astype(np.float32)

    def run():
        leaves = [Tensor(a, requires_grad=True) for a in (x, w, bias)]
        y = ag.conv2d(leaves[0], leaves[1], stride, padding, groups, leaves[2])
        again = ag.conv2d(leaves[0] * 0.5, leaves[1], stride, padding, groups)  # the same temporaries, other values
        pooled = [ag.pool2d(ag.sigmoid(y), (2, 2), mode=mode, padding=(0, 1, 0, 1)) for mode in ("max", "avg")]
        total = ag.sum(ag.relu(pooled[0]) * pooled[1]) + ag.sum(again * again)
        total.backward()
        return [a.tobytes() for a in (y.data, again.data, total.data, *(leaf.grad for leaf in leaves))]

    eager = run()
    workspace = ag.Workspace()
    for _ in range(3):  # the first run fills the workspace, the next ones reuse it
        with ag.reusing(workspace):
            assert run() == eager
