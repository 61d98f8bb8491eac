"""The exercises of sections 7.4 (channels) and 7.5 (pooling), on every backend.

Costs are checked against plain float64 loops that count every multiplication,
addition and comparison they perform, and against the sizes of the arrays the
backends really make; results against SciPy and float64 NumPy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import conv2d_reference, pool2d_reference
from scipy import signal, special

import convlab as cl

SLOW_OK = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FLOAT32_UNIT = 2.0**-24
"""Unit roundoff of float32."""


# -- counting references ---------------------------------------------------------------------------


def counted_conv(x, w, dy, stride, padding, groups):
    """Forward pass and both gradients by plain loops in float64, counting each ``*`` and ``+`` done.

    A sum starts from its first term, so a sum of ``n`` terms is ``n - 1`` additions. The input
    gradient is accumulated on the padded input (as the forward pass multiplies the padded zeros),
    then cropped.
    """
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    N, _, Hp, Wp = xp.shape
    C_out, Cg, kh, kw = w.shape
    per_group = C_out // groups
    out_h, out_w = (Hp - kh) // stride[0] + 1, (Wp - kw) // stride[1] + 1
    counts = dict.fromkeys(["fwd_mul", "fwd_add", "dx_mul", "dx_add", "dw_mul", "dw_add"], 0)
    y = np.zeros((N, C_out, out_h, out_w))
    dw, dw_started = np.zeros_like(w), np.zeros(w.shape, bool)
    dxp, dx_started = np.zeros_like(xp), np.zeros(xp.shape, bool)

    def accumulate(array, started, index, value, key):
        if started[index]:
            array[index] += value
            counts[key] += 1
        else:
            array[index], started[index] = value, True

    for n, o, i, j in np.ndindex(N, C_out, out_h, out_w):
        total = None
        for c, a, b in np.ndindex(Cg, kh, kw):
            where = (n, (o // per_group) * Cg + c, i * stride[0] + a, j * stride[1] + b)
            product = w[o, c, a, b] * xp[where]
            counts["fwd_mul"] += 1
            if total is None:
                total = product
            else:
                total += product
                counts["fwd_add"] += 1
            accumulate(dw, dw_started, (o, c, a, b), dy[n, o, i, j] * xp[where], "dw_add")
            counts["dw_mul"] += 1
            accumulate(dxp, dx_started, where, dy[n, o, i, j] * w[o, c, a, b], "dx_add")
            counts["dx_mul"] += 1
        y[n, o, i, j] = total
    return y, dxp[:, :, top : Hp - bottom, left : Wp - right], dw, counts


def counted_pool(x, window, stride, padding, mode):
    """Pooling by plain loops in float64, counting comparisons, additions and divisions."""
    top, bottom, left, right = padding
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    N, C, Hp, Wp = xp.shape
    out_h, out_w = (Hp - window[0]) // stride[0] + 1, (Wp - window[1]) // stride[1] + 1
    counts = {"comparisons": 0, "additions": 0, "divisions": 0}
    y = np.zeros((N, C, out_h, out_w))
    for n, c, i, j in np.ndindex(N, C, out_h, out_w):
        result = None
        for a, b in np.ndindex(*window):
            value = xp[n, c, i * stride[0] + a, j * stride[1] + b]
            if result is None:
                result = value
            elif mode == "max":
                counts["comparisons"] += 1
                result = value if value > result else result
            else:
                counts["additions"] += 1
                result += value
        if mode == "avg":
            result /= window[0] * window[1]
            counts["divisions"] += 1
        y[n, c, i, j] = result
    return y, counts


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_i, c_o = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, kh - padding[0] - padding[1]), 6))
    w = draw(st.integers(max(1, kw - padding[2] - padding[3]), 6))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    batch = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((batch, c_i, h, w))
    weight = rng.standard_normal((c_o, c_i // groups, kh, kw))
    return x, weight, padding, stride, groups, rng


def output_gradient(x, weight, padding, stride, rng):
    top, bottom, left, right = padding
    out_h = (x.shape[2] + top + bottom - weight.shape[2]) // stride[0] + 1
    out_w = (x.shape[3] + left + right - weight.shape[3]) // stride[1] + 1
    return rng.standard_normal((x.shape[0], weight.shape[0], out_h, out_w))


# -- 7.4 exercises 2 to 4: the cost of a convolution -----------------------------------------------


@settings(max_examples=25, deadline=None)
@given(case=conv_case())
def test_conv_cost_counts_what_a_loop_does(case):
    x, weight, padding, stride, groups, rng = case
    dy = output_gradient(x, weight, padding, stride, rng)
    y, dx, dw, counts = counted_conv(x, weight, dy, stride, padding, groups)

    # The counting loop computes the right things: the forward pass is SciPy's, and the two
    # gradients are the adjoints of the (linear) convolution in x and in the weight.
    np.testing.assert_allclose(y, conv2d_reference(x, weight, stride, padding, groups), atol=1e-10)
    x_probe, w_probe = rng.standard_normal(x.shape), rng.standard_normal(weight.shape)
    np.testing.assert_allclose(
        (dx * x_probe).sum(), (dy * conv2d_reference(x_probe, weight, stride, padding, groups)).sum(), atol=1e-9
    )
    np.testing.assert_allclose(
        (dw * w_probe).sum(), (dy * conv2d_reference(x, w_probe, stride, padding, groups)).sum(), atol=1e-9
    )

    cost = cl.conv_cost(
        x.shape[1:], weight.shape[0], weight.shape[2:], padding=padding, stride=stride, groups=groups, batch=len(x)
    )
    assert cost.output_shape == y.shape
    assert cost.kernel_shape == weight.shape
    assert (cost.forward_multiplications, cost.forward_additions) == (counts["fwd_mul"], counts["fwd_add"])
    assert (cost.input_grad_multiplications, cost.input_grad_additions) == (counts["dx_mul"], counts["dx_add"])
    assert (cost.weight_grad_multiplications, cost.weight_grad_additions) == (counts["dw_mul"], counts["dw_add"])
    assert cost.forward_flops == counts["fwd_mul"] + counts["fwd_add"]
    assert cost.backward_flops == sum(counts[k] for k in ("dx_mul", "dx_add", "dw_mul", "dw_add"))
    assert cost.forward_memory == x.size + weight.size + y.size
    assert cost.backward_memory == x.size + weight.size + dy.size + dx.size + dw.size


@pytest.mark.parametrize(
    "input_shape, out_channels, kernel, padding, stride, groups",
    [((3, 7, 6), 4, (3, 2), (1, 0, 2, 1), (2, 1), 1), ((4, 5, 5), 2, 3, 1, 2, 2), ((2, 4, 4), 3, 1, 0, 1, 1)],
)
def test_conv_cost_matches_the_arrays_a_backend_makes(
    backend, input_shape, out_channels, kernel, padding, stride, groups
):
    cost = cl.conv_cost(input_shape, out_channels, kernel, padding=padding, stride=stride, groups=groups, batch=2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(cost.input_shape).astype(np.float32)
    weight = rng.standard_normal(cost.kernel_shape).astype(np.float32)
    dy = rng.standard_normal(cost.output_shape).astype(np.float32)
    y = backend.conv2d(backend.tensor(x), backend.tensor(weight), cost.stride, cost.padding, groups)
    assert tuple(cl.to_numpy(y).shape) == cost.output_shape

    def objective(x, weight, dy):
        return backend.sum(backend.conv2d(x, weight, cost.stride, cost.padding, groups) * dy)

    _, (dx, dw, _) = backend.grad(objective, x, weight, dy)
    assert dx.size + dw.size + dy.size + x.size + weight.size == cost.backward_memory
    assert x.size + weight.size + cl.to_numpy(y).size == cost.forward_memory
    assert cost.forward_memory_bytes == 4 * cost.forward_memory
    # The framework's autograd computes what the counted loop computes.
    _, ref_dx, ref_dw, _ = counted_conv(x, weight, dy, cost.stride, cost.padding, groups)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-4, atol=1e-4)


def test_doubling_channels_quadruples_the_products_and_doubling_padding_grows_the_output():
    base = cl.conv_cost((8, 16, 16), 8, 3, padding=1)
    doubled = cl.conv_cost((16, 16, 16), 16, 3, padding=1)
    assert doubled.forward_multiplications == 4 * base.forward_multiplications
    # Additions grow slightly more than 4x: each window sum has one addition fewer than products.
    assert 4 < doubled.forward_additions / base.forward_additions < 4.1
    padded = cl.conv_cost((8, 16, 16), 8, 3, padding=2)
    assert padded.output_shape[2:] == (18, 18)
    assert padded.forward_multiplications / base.forward_multiplications == pytest.approx((18 * 18) / (16 * 16))


def test_a_1x1_convolution_costs_one_matrix_product():
    c_i, c_o, h, w = 5, 7, 6, 4
    cost = cl.conv_cost((c_i, h, w), c_o, 1)
    # (c_o x c_i) @ (c_i x hw): c_o * hw dot products of length c_i
    assert cost.forward_multiplications == c_o * c_i * h * w
    assert cost.forward_additions == c_o * (c_i - 1) * h * w


def test_groups_divide_the_products_but_not_the_output():
    dense = cl.conv_cost((64, 8, 8), 64, 3, padding=1)
    grouped = cl.conv_cost((64, 8, 8), 64, 3, padding=1, groups=4)
    assert grouped.output_shape == dense.output_shape
    assert grouped.forward_multiplications * 4 == dense.forward_multiplications
    assert grouped.weight_elements * 4 == dense.weight_elements


def test_conv_cost_reprs_name_the_numbers():
    cost = cl.conv_cost((3, 32, 32), 16, 3, padding=1)
    assert f"forward {cost.forward_flops:,} FLOPs" in repr(cost)
    assert "(1, 16, 32, 32)" in repr(cost)
    assert f"{cost.forward_multiplications:,} mul" in str(cost)
    assert "weight gradient" in str(cost)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"input_shape": (3, 32)}, ValueError, r"input_shape: expected \(channels, height, width\)"),
        ({"input_shape": (3, 0, 4)}, ValueError, "input_shape: expected"),
        ({"out_channels": 0}, ValueError, "out_channels: expected a positive int, got 0"),
        ({"out_channels": 2.0}, TypeError, "out_channels: expected a positive int, got 2.0"),
        ({"groups": 2}, ValueError, r"groups: expected a divisor of both the input channels \(3\) and out_channels"),
        ({"stride": 0}, ValueError, "stride: expected positive sizes, got 0"),
        ({"padding": -1}, ValueError, "padding: expected non-negative sizes, got -1"),
        ({"kernel_size": 7}, ValueError, r"kernel_size: expected a kernel no larger than the padded input \(6, 6\)"),
        ({"batch": 0}, ValueError, "batch: expected a positive int"),
    ],
)
def test_conv_cost_bad_input(kwargs, error, message):
    arguments = {"input_shape": (3, 4, 4), "out_channels": 4, "kernel_size": 3, "padding": 1, **kwargs}
    with pytest.raises(error, match=message):
        cl.conv_cost(**arguments)


# -- 7.5 exercise 4: the cost of pooling -----------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(["max", "avg"]),
    window=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(*[st.integers(0, 1)] * 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    channels=st.integers(1, 3),
)
def test_pool_cost_counts_what_a_loop_does(mode, window, padding, stride, extra, channels):
    h, w = (
        max(1, window[0] - padding[0] - padding[1]) + extra[0],
        max(1, window[1] - padding[2] - padding[3]) + extra[1],
    )
    x = np.random.default_rng(0).standard_normal((2, channels, h, w))
    y, counts = counted_pool(x, window, stride, padding, mode)
    np.testing.assert_allclose(y, pool2d_reference(x, window, stride, padding, mode), atol=1e-12)
    cost = cl.pool_cost((channels, h, w), window, mode, padding=padding, stride=stride, batch=2)
    assert cost.output_shape == y.shape
    assert (cost.comparisons, cost.additions, cost.divisions) == (
        counts["comparisons"],
        counts["additions"],
        counts["divisions"],
    )
    assert cost.operations == sum(counts.values())
    assert cost.memory == x.size + y.size


def test_pool_cost_matches_the_arrays_a_backend_makes(backend):
    X = np.random.default_rng(1).standard_normal((3, 7, 6)).astype(np.float32)
    for mode in ("max", "avg"):
        cost = cl.pool_cost(X.shape, (3, 2), mode, padding=(1, 0, 1, 1), stride=(2, 3))
        Y = cl.to_numpy(cl.pool2d(X, (3, 2), mode, padding=(1, 0, 1, 1), stride=(2, 3)))
        assert (1, *Y.shape) == cost.output_shape
        assert cost.memory == X.size + Y.size
        assert cost.memory_bytes == 4 * (X.size + Y.size)


def test_pooling_is_cheaper_than_a_convolution_by_the_output_channels():
    conv = cl.conv_cost((8, 32, 32), 16, 2, stride=2)
    pool = cl.pool_cost((8, 32, 32), 2, "avg", stride=2)
    assert conv.output_shape[2:] == pool.output_shape[2:]
    # Per output element, c_i windows of products against one window of additions; c_o kernels.
    assert conv.forward_multiplications == 16 * (pool.additions + pool.divisions)
    assert "avg" in repr(pool) and f"{pool.additions:,} additions" in repr(pool)


def test_pool_cost_bad_input():
    with pytest.raises(ValueError, match="mode: expected one of 'max', 'avg', got 'min'"):
        cl.pool_cost((1, 4, 4), 2, "min")
    with pytest.raises(ValueError, match=r"pool_size: expected a kernel no larger than the padded input \(6, 6\)"):
        cl.pool_cost((1, 4, 4), 7, padding=1)
    with pytest.raises(ValueError, match="stride: expected positive sizes"):
        cl.pool_cost((1, 4, 4), 2, stride=(1, 0))


# -- 7.4 exercise 5: are Y1 and Y2 the same? -------------------------------------------------------


@pytest.mark.parametrize("c_i, c_o, size", [(3, 2, 3), (64, 32, 9)], ids=["book", "wide"])
def test_1x1_matrix_product_and_convolution_agree(backend, c_i, c_o, size, record_property):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (c_i, size, size)).astype(np.float32)
    K = rng.normal(0, 1, (c_o, c_i, 1, 1)).astype(np.float32)
    Y1, Y2 = cl.to_numpy(cl.corr2d_multi_in_out_1x1(X, K)), cl.to_numpy(cl.corr2d_multi_in_out(X, K))
    difference = float(np.abs(Y1 - Y2).max())
    record_property(f"max |Y1 - Y2| on {backend.name}", difference)
    print(f"{backend.name}: c_i={c_i}: max |Y1 - Y2| = {difference:.3g}, bitwise equal: {np.array_equal(Y1, Y2)}")

    terms = K[:, :, 0, 0].astype(np.float64)[:, :, None, None] * X.astype(np.float64)[None]
    exact = terms.sum(axis=1)
    # n float32 products summed in any order err by at most about (n + 1) u times the sum of |terms|.
    bound = (c_i + 1) * FLOAT32_UNIT * np.abs(terms).sum(axis=1)
    assert (np.abs(Y1 - exact) <= bound).all() and (np.abs(Y2 - exact) <= bound).all()
    assert (np.abs(Y1 - Y2) <= 2 * bound).all()
    if c_i == 3:  # the book's check, on the book's shapes
        assert difference < 1e-6, f"{backend.name}: max |Y1 - Y2| = {difference}"


# -- 7.4 exercise 1: two convolutions as one -------------------------------------------------------


@pytest.mark.parametrize("k1, k2", [((2, 2), (2, 2)), ((1, 3), (3, 1)), ((3, 2), (2, 3))])
def test_composite_of_two_kernels_is_their_full_convolution(k1, k2):
    rng = np.random.default_rng(4)
    K1, K2 = rng.standard_normal(k1), rng.standard_normal(k2)
    composite = cl.to_numpy(cl.compose_kernels(K1, K2))
    np.testing.assert_allclose(composite, signal.convolve2d(K1, K2, mode="full"), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("s1, s2", [((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 2), (2, 1)), ((2, 2), (2, 2))])
def test_two_cross_correlations_are_one(backend, s1, s2):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((13, 14)).astype(np.float32)
    K1, K2 = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    twice = cl.to_numpy(cl.corr2d(cl.corr2d(X, K1, stride=s1), K2, stride=s2))
    stride = (s1[0] * s2[0], s1[1] * s2[1])
    once = cl.to_numpy(cl.corr2d(X, cl.compose_kernels(K1, K2, first_stride=s1), stride=stride))
    assert once.shape == twice.shape
    np.testing.assert_allclose(once, twice, rtol=1e-5, atol=1e-5)


def test_two_multichannel_convolutions_are_one(backend):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((3, 9, 8)).astype(np.float32)
    K1 = rng.standard_normal((4, 3, 2, 3)).astype(np.float32)  # 3 -> 4 channels
    K2 = rng.standard_normal((2, 4, 3, 2)).astype(np.float32)  # 4 -> 2 channels
    composite = cl.compose_kernels(K1, K2)
    assert tuple(cl.to_numpy(composite).shape) == (2, 3, 4, 4)
    twice = cl.to_numpy(cl.corr2d_multi_in_out(cl.corr2d_multi_in_out(X, K1), K2))
    once = cl.to_numpy(cl.corr2d_multi_in_out(X, composite))
    np.testing.assert_allclose(once, twice, rtol=1e-5, atol=1e-5)
    reference = conv2d_reference(conv2d_reference(X[None], K1, (1, 1), (0,) * 4, 1), K2, (1, 1), (0,) * 4, 1)[0]
    np.testing.assert_allclose(once, reference, rtol=1e-5, atol=1e-5)


def test_a_relu_in_between_breaks_the_composition(backend):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 8)).astype(np.float32)
    K1, K2 = rng.standard_normal((2, 2)).astype(np.float32), rng.standard_normal((2, 2)).astype(np.float32)
    with_relu = np.maximum(cl.to_numpy(cl.corr2d(X, K1)), 0)
    twice = cl.to_numpy(cl.corr2d(with_relu, K2))
    once = cl.to_numpy(cl.corr2d(X, cl.compose_kernels(K1, K2)))
    assert np.abs(once - twice).max() > 0.1


def test_compose_kernels_bad_input():
    with pytest.raises(ValueError, match=r"second: expected a 2-D kernel, as first is, got shape \(1, 1, 2, 2\)"):
        cl.compose_kernels(np.ones((2, 2)), np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="second: expected 4 input channels, as first has output channels, got 3"):
        cl.compose_kernels(np.ones((4, 3, 2, 2)), np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"first: expected a non-empty 2-D kernel .* got shape \(2, 2, 2\)"):
        cl.compose_kernels(np.ones((2, 2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="first_stride: expected positive sizes"):
        cl.compose_kernels(np.ones((2, 2)), np.ones((2, 2)), first_stride=0)


# -- 7.5 exercises 1 to 3: pooling and convolutions ------------------------------------------------


@st.composite
def pool_case(draw, padded=True, within_window=False):
    """``within_window``: less padding than the window on each side, so that every window holds input."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    limits = (kh - 1, kh - 1, kw - 1, kw - 1) if within_window else (2, 2, 2, 2)
    padding = tuple(draw(st.integers(0, min(2, limit))) for limit in limits) if padded else (0, 0, 0, 0)
    h = draw(st.integers(max(1, kh - padding[0] - padding[1]), 8))
    w = draw(st.integers(max(1, kw - padding[2] - padding[3]), 8))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    channels = draw(st.sampled_from([None, 1, 3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((h, w) if channels is None else (channels, h, w)).astype(np.float32)
    return X, (kh, kw), padding, stride


def batched(X):
    return X[None, None] if X.ndim == 2 else X[None]


@SLOW_OK
@given(case=pool_case())
def test_average_pooling_is_a_convolution(backend, case):
    X, window, padding, stride = case
    by_conv = cl.to_numpy(cl.avg_pool2d_by_conv(X, window, padding=padding, stride=stride))
    pooled = cl.to_numpy(cl.pool2d(X, window, "avg", padding=padding, stride=stride))
    assert by_conv.shape == pooled.shape
    np.testing.assert_allclose(by_conv, pooled, rtol=1e-6, atol=1e-6)
    reference = pool2d_reference(batched(X), window, stride, padding, "avg").reshape(pooled.shape)
    np.testing.assert_allclose(by_conv, reference, rtol=1e-5, atol=1e-6)


def test_max_pooling_is_not_a_convolution(backend):
    # Every convolution (with or without a bias) f is affine: f(X1 + X2) + f(0) = f(X1) + f(X2).
    X1, X2, zero = np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32)
    X1[0, 0], X2[0, 1] = 1.0, 1.0

    def affinity_gap(f):
        return float(
            np.abs(cl.to_numpy(f(X1 + X2)) + cl.to_numpy(f(zero)) - cl.to_numpy(f(X1)) - cl.to_numpy(f(X2))).max()
        )

    assert affinity_gap(lambda X: cl.pool2d(X, 2)) == 1.0  # max(1, 1) = 1, but 1 + 1 = 2
    assert affinity_gap(lambda X: cl.avg_pool2d_by_conv(X, 2)) < 1e-6
    assert affinity_gap(lambda X: cl.corr2d(X, [[0.5, -2.0], [1.0, 3.0]]) + 0.25) < 1e-6
    # Nor is it homogeneous: scaling by -1 turns the maximum into minus the minimum.
    X = np.array([[1.0, -3.0], [2.0, 0.5]], np.float32)
    assert cl.to_numpy(cl.pool2d(-X, 2)).item() == 3.0 != -cl.to_numpy(cl.pool2d(X, 2)).item()


@SLOW_OK
@given(case=pool_case(padded=False))
def test_max_pooling_from_convolutions_and_relus(backend, case):
    X, window, _, stride = case
    by_relu = cl.to_numpy(cl.max_pool2d_by_relu(X, window, stride=stride))
    reference = pool2d_reference(batched(X), window, stride, (0, 0, 0, 0), "max")
    assert by_relu.shape == cl.to_numpy(cl.pool2d(X, window, stride=stride)).shape
    # relu(a - b) + b rounds: equal to max(a, b) to a few float32 units.
    np.testing.assert_allclose(by_relu, reference.reshape(by_relu.shape), rtol=1e-6, atol=1e-6)


def test_pooling_by_other_means_bad_input():
    with pytest.raises(ValueError, match=r"pool_size: expected a kernel no larger than the padded input \(5, 5\)"):
        cl.avg_pool2d_by_conv(np.ones((3, 3)), 6, padding=1)
    with pytest.raises(ValueError, match=r"pool_size: expected a kernel no larger than the input X \(3, 3\)"):
        cl.max_pool2d_by_relu(np.ones((3, 3)), 4)
    with pytest.raises(ValueError, match=r"X: expected a non-empty 2-D or 3-D \(channels, height, width\) array"):
        cl.max_pool2d_by_relu(np.ones((1, 1, 3, 3)), 2)
    with pytest.raises(ValueError, match="stride: expected positive sizes"):
        cl.avg_pool2d_by_conv(np.ones((3, 3)), 2, stride=0)
    with pytest.raises(ValueError, match="padding: expected non-negative sizes"):
        cl.avg_pool2d_by_conv(np.ones((3, 3)), 2, padding=-1)


# -- 7.5 softmax pooling ----------------------------------------------------------------------------


def softmax_pool_reference(X, window, temperature, padding, stride):
    """float64: the softmax over each window's real elements (padding excluded), weighting its values."""
    x = batched(np.asarray(X, np.float64))[0]
    top, bottom, left, right = padding
    values = np.pad(x, ((0, 0), (top, bottom), (left, right)))
    real = np.pad(np.ones_like(x), ((0, 0), (top, bottom), (left, right))) > 0
    windows = np.lib.stride_tricks.sliding_window_view(values, window, axis=(1, 2))[:, :: stride[0], :: stride[1]]
    masks = np.lib.stride_tricks.sliding_window_view(real, window, axis=(1, 2))[:, :: stride[0], :: stride[1]]
    logits = np.where(masks, windows / temperature, -np.inf).reshape(*windows.shape[:3], -1)
    weights = special.softmax(logits, axis=-1)
    return (weights * windows.reshape(weights.shape)).sum(-1).reshape(X.shape[:-2] + windows.shape[1:3])


@SLOW_OK
@given(case=pool_case(within_window=True), temperature=st.sampled_from([0.3, 1.0, 4.0]))
def test_softmax_pooling_matches_a_float64_softmax(backend, case, temperature):
    X, window, padding, stride = case
    got = cl.to_numpy(cl.softmax_pool2d(X, window, temperature, padding=padding, stride=stride))
    expected = softmax_pool_reference(X, window, temperature, padding, stride)
    np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=1e-5, atol=1e-5)


def test_softmax_pooling_tends_to_max_and_to_average(backend):
    X = np.random.default_rng(8).standard_normal((2, 7, 7)).astype(np.float32)
    window, n = (3, 3), 9
    maximum = cl.to_numpy(cl.pool2d(X, window, stride=2))
    average = cl.to_numpy(cl.pool2d(X, window, "avg", stride=2))
    for temperature in (1.0, 0.1, 0.01, 0.001):
        below = maximum - cl.to_numpy(cl.softmax_pool2d(X, window, temperature, stride=2))
        # sum_a w_a (max - x_a) with w_a <= exp(-(max - x_a) / T): each term is at most T / e.
        assert (below >= -1e-6).all() and (below <= (n - 1) * temperature / math.e + 1e-6).all(), temperature
    spread = cl.to_numpy(cl.pool2d(X, window, stride=2)) + cl.to_numpy(cl.pool2d(-X, window, stride=2))
    for temperature in (1e1, 1e3, 1e5):
        error = np.abs(cl.to_numpy(cl.softmax_pool2d(X, window, temperature, stride=2)) - average)
        # The weights lie within exp(-r / T) of each other (r: the window's range), so the weighted
        # mean moves from the mean by at most r^2 exp(r / T) / T.
        assert (error <= spread**2 * np.exp(spread / temperature) / temperature + 1e-6).all(), temperature
    np.testing.assert_allclose(cl.to_numpy(cl.softmax_pool2d(X, window, math.inf, stride=2)), average, atol=1e-6)


def test_softmax_pooling_padding_gets_no_weight(backend):
    X = -5.0 - np.arange(9, dtype=np.float32).reshape(3, 3)  # all below the padded zeros
    hot = cl.to_numpy(cl.softmax_pool2d(X, 2, 1e-3, padding=1, stride=2))
    np.testing.assert_allclose(hot, cl.to_numpy(cl.pool2d(X, 2, padding=1, stride=2)), atol=1e-5)
    cold = cl.to_numpy(cl.softmax_pool2d(X, 2, math.inf, padding=1, stride=2))
    np.testing.assert_allclose(cold, [[-5.0, -6.5], [-9.5, -11.0]], atol=1e-5)  # means of the real elements


def test_softmax_pool2d_bad_input():
    X = np.ones((3, 3))
    with pytest.raises(ValueError, match="temperature: expected a positive number, got 0"):
        cl.softmax_pool2d(X, 2, 0)
    with pytest.raises(ValueError, match=r"temperature: expected a positive number, got -1\.0"):
        cl.softmax_pool2d(X, 2, -1.0)
    with pytest.raises(TypeError, match="temperature: expected a positive number, got 'hot'"):
        cl.softmax_pool2d(X, 2, "hot")
    with pytest.raises(ValueError, match=r"pool_size: expected a kernel no larger than the padded input"):
        cl.softmax_pool2d(X, 4, padding=(0, 0, 1, 0))
    with pytest.raises(ValueError, match=r"padding: expected every window to hold an element of X, .* some rows"):
        cl.softmax_pool2d(X, 2, padding=(2, 0, 0, 0))
    with pytest.raises(ValueError, match=r"padding: .* some columns of windows lie wholly in the padding"):
        cl.softmax_pool2d(X, (1, 2), padding=(0, 0, 0, 3), stride=(1, 2))


# -- gradients of the new functions ----------------------------------------------------------------


def test_pooling_by_other_means_passes_gradcheck(backend):
    rng = np.random.default_rng(10)
    distinct = rng.permutation(24).reshape(2, 3, 4) * 0.1 - 1.2  # no ties within eps; some below the padding
    checks = {
        "avg pool by conv": lambda x: backend.sum(cl.avg_pool2d_by_conv(x, 2, padding=(1, 0, 0, 1), stride=2) ** 2),
        "max pool by relu": lambda x: backend.sum(cl.max_pool2d_by_relu(x, (2, 3), stride=(1, 2)) ** 2),
        "softmax pool": lambda x: backend.sum(cl.softmax_pool2d(x, 2, 0.5, padding=1, stride=(1, 2)) ** 2),
    }
    for name, f in checks.items():
        result = cl.gradcheck(f, distinct, raise_exception=False)
        assert result.passed, f"{name}: {result.mismatches}"


# -- the checks the section's functions already make --------------------------------------------------


def test_channel_and_pooling_arguments_are_checked():
    X = np.ones((2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="K: expected 2 input channels, as X has, got 3"):
        cl.corr2d_multi_in_out(X, np.ones((4, 3, 2, 2)))
    with pytest.raises(ValueError, match="K: expected 2 input channels, as X has, got 1"):
        cl.corr2d_multi_in(X, np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="stride: expected positive sizes, got 0"):
        cl.pool2d(X, 2, stride=0)
    with pytest.raises(ValueError, match=r"padding: expected non-negative sizes, got \(1, -1\)"):
        cl.pool2d(X, 2, padding=(1, -1))
    with pytest.raises(ValueError, match=r"pool_size: expected a kernel no larger than the padded input \(6, 4\)"):
        cl.pool2d(X, (3, 5), padding=(1, 0))
