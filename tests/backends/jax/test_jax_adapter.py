"""``cl.nn`` on JAX as Flax NNX sees it: nested state, NNX's optimiser, ``nnx.Conv`` and ``nnx.Linear`` defaults.

The references are Flax's own: ``nnx.state``, ``nnx.Optimizer`` with
``optax.sgd``, and new ``nnx.Conv`` / ``nnx.Linear`` layers (NHWC,
``(in, out)`` kernels) run on the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import conv2d_reference, pool2d_reference

import convlab as cl
from conftest import load_or_skip
from convlab.backends.reference import reference_function
from convlab.nn import layers as nn
from convlab.nn.losses import SquaredError


@pytest.fixture
def jax_backend():
    load_or_skip("jax")
    with cl.use_backend("jax") as active:
        yield active


def lenet_like(seed):
    """A LeNet-shaped net on (N, 1, 12, 12): convolutions, pools, activations and linears, nested one level."""
    return nn.Sequential(
        nn.Conv2d(1, 3, 5, padding=2, seed=seed),
        nn.Sigmoid(),
        nn.AvgPool2d(2),
        nn.Conv2d(3, 4, 3, seed=seed + 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5, seed=seed + 2),
    )


def test_nnx_state_holds_every_nested_parameter(jax_backend):
    from flax import nnx

    net = nn.Sequential(lenet_like(0), nn.Linear(5, 2, seed=3))
    by_path = dict(nnx.to_flat_state(nnx.state(net, nnx.Param)))
    named = cl.parameters(net)
    assert len(by_path) == len(named) == 8
    for name, value in named.items():
        *indices, own = name.split(".")
        path = (*(part for index in indices for part in ("layers", int(index))), own)
        assert by_path[path][...] is value, name  # the same live array, not a copy


def test_nnx_optimizer_trains_a_sequential_as_sgd_update_does(jax_backend):
    import optax
    from flax import nnx

    rng = np.random.default_rng(0)
    x = jax_backend.tensor(rng.standard_normal((4, 1, 12, 12)))
    target = jax_backend.tensor(rng.standard_normal((4, 5)))
    loss = SquaredError(jax_backend)
    by_optax, by_convlab = lenet_like(1), lenet_like(1)
    optimizer = nnx.Optimizer(by_optax, optax.sgd(0.01), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        value, grads = nnx.value_and_grad(lambda model: loss(model(x), y))(model)
        optimizer.update(model, grads)
        return value

    start = {name: np.array(value) for name, value in cl.parameters(by_optax).items()}
    losses = [float(train_step(by_optax, optimizer, x, target)) for _ in range(5)]
    for _ in range(5):
        _, grads = jax_backend.value_and_grad(by_convlab, x, target, loss)
        jax_backend.sgd_update(by_convlab, grads, 0.01)
    assert losses[-1] < losses[0]
    got, want = cl.parameters(by_optax), cl.parameters(by_convlab)
    for name, value in start.items():
        assert not np.array_equal(np.asarray(got[name]), value), f"{name} was not trained"
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=1e-5, atol=1e-6, err_msg=name)


def test_unseeded_layers_compute_as_new_nnx_layers(jax_backend):
    """A fresh backend's unseeded layers are nnx.Conv / nnx.Linear drawn from one nnx.Rngs(SEED), in order."""
    from flax import nnx

    from convlab.backends.jax.adapter import SEED

    fresh = type(jax_backend)(jax_backend.spec)
    rngs = nnx.Rngs(SEED)
    rng = np.random.default_rng(1)
    for _ in range(2):  # the second pair draws the stream's next keys, as it would from one shared Rngs
        conv = nn.Conv2dDef(3, 4, (3, 2), (1, 1), (1, 1, 0, 0))
        ours = fresh.module(conv, fresh.framework_initial("conv2d", {"weight": (4, 3, 3, 2), "bias": (4,)}))
        theirs = nnx.Conv(3, 4, (3, 2), padding=((1, 1), (0, 0)), rngs=rngs)
        x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
        want = np.asarray(theirs(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(np.asarray(ours(fresh.tensor(x))), want, rtol=1e-5, atol=1e-5)
        linear = nn.LinearDef(6, 3)
        ours = fresh.module(linear, fresh.framework_initial("linear", {"weight": (3, 6)}))
        theirs = nnx.Linear(6, 3, use_bias=False, rngs=rngs)
        x = rng.standard_normal((4, 6)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(ours(fresh.tensor(x))), np.asarray(theirs(x)), rtol=1e-5, atol=1e-5)
    assert sorted(cl.parameters(ours)) == ["weight"]


def test_two_unseeded_layers_differ(jax_backend):
    first, second = nn.Conv2d(2, 3, 3), nn.Conv2d(2, 3, 3)
    assert not np.array_equal(cl.to_numpy(first.weight[...]), cl.to_numpy(second.weight[...]))
    np.testing.assert_array_equal(cl.to_numpy(first.bias[...]), np.zeros(3, np.float32))  # nnx.Conv's zeros


def test_one_compilation_per_structure(jax_backend):
    traces = []

    class CountingLoss:
        """SquaredError that records each time JAX traces it; equal to every other, so jit may reuse its step."""

        def __call__(self, Y_hat, Y):
            traces.append(None)
            return jax_backend.sum((Y_hat - Y) ** 2)

        def __eq__(self, other):
            return isinstance(other, CountingLoss)

        def __hash__(self):
            return hash(CountingLoss)

    x = jax_backend.tensor(np.ones((2, 1, 12, 12)))
    target = jax_backend.tensor(np.zeros((2, 5)))
    first = jax_backend.value_and_grad(lenet_like(2), x, target, CountingLoss())[0]
    second = jax_backend.value_and_grad(lenet_like(7), x, target, CountingLoss())[0]
    assert first != second  # other values, one compiled step
    assert len(traces) == 1


def test_labels_are_int32_on_the_backends_device(jax_backend):
    labels = jax_backend.labels(np.array([0, 9, 3], dtype=np.int64))
    assert isinstance(labels, jax_backend.tensor_types)
    assert labels.dtype == np.int32
    assert {str(device) for device in labels.devices()} == {str(jax_backend._place)}
    np.testing.assert_array_equal(np.asarray(labels), [0, 9, 3])


@pytest.mark.parametrize(
    ("mode", "window", "stride", "padding"),
    [
        ("max", (3, 3), (2, 2), (1, 1, 1, 1)),
        ("avg", (2, 3), (2, 1), (0, 1, 2, 0)),
        ("max", (2, 2), (2, 2), (0, 3, 0, 0)),
    ],
)
def test_pooling_inside_a_compiled_function_matches_the_reference(jax_backend, mode, window, stride, padding):
    """Traced on the CPU, pool2d pools an NHWC view: its values (-inf for windows of padding alone) and gradients."""
    import jax

    x = np.random.default_rng(6).standard_normal((2, 3, 5, 6)).astype(np.float32)
    want = pool2d_reference(x, window, stride, padding, mode)

    def pooled(x):
        return jax_backend.pool2d(x, window, stride, padding, mode)

    traced = np.asarray(jax.jit(pooled)(jax_backend.tensor(x)))
    np.testing.assert_allclose(traced, want, rtol=1e-6)
    finite = np.isfinite(want)
    assert finite.all() != (padding[1] == 3)  # the bottom padding of 3 leaves windows of padding alone
    weights = np.random.default_rng(7).standard_normal(want.shape).astype(np.float32) * finite

    # Each output's weight flows to its window's largest input (max), or evenly to the window's cells (avg).
    top, bottom, left, right = padding
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-np.inf)
    grad_padded = np.zeros_like(padded)
    for n, c, i, j in zip(*np.nonzero(finite), strict=True):
        rows = slice(i * stride[0], i * stride[0] + window[0])
        cols = slice(j * stride[1], j * stride[1] + window[1])
        if mode == "max":
            a, b = np.unravel_index(np.argmax(padded[n, c, rows, cols]), window)
            grad_padded[n, c, rows.start + a, cols.start + b] += weights[n, c, i, j]
        else:
            grad_padded[n, c, rows, cols] += weights[n, c, i, j] / (window[0] * window[1])
    expected = grad_padded[:, :, top : top + x.shape[2], left : left + x.shape[3]]

    def weighted_sum(x):
        return (jax.numpy.where(finite, pooled(x), 0.0) * weights).sum()

    got = np.asarray(jax.jit(jax.grad(weighted_sum))(jax_backend.tensor(x)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", [0, 2])
def test_framework_conv2d_step_differentiates_the_sum(jax_backend, padding):
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 7)).astype(np.float32)
    total, grads = reference_function(jax_backend, "framework_conv2d_step")(3, 2, 3, padding, x)()
    d_kernel, d_bias = np.asarray(grads["kernel"][...]), np.asarray(grads["bias"][...])
    # d sum / d bias: one per output pixel; d sum / d kernel[i, j, c, o]: the sum of the input pixels that
    # entry (i, j) of the kernel meets over every window, the same for each output channel.
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = padded.shape[2] - 2, padded.shape[3] - 2
    np.testing.assert_allclose(d_bias, [2 * out_h * out_w] * 2)
    want = np.array(
        [[padded[:, :, i : i + out_h, j : j + out_w].sum(axis=(0, 2, 3)) for j in range(3)] for i in range(3)]
    )
    assert d_kernel.shape == (3, 3, 3, 2)  # nnx.Conv's HWIO
    np.testing.assert_allclose(d_kernel, np.repeat(want[..., None], 2, axis=-1), rtol=1e-4, atol=1e-4)
    # The value is the forward pass of a new nnx.Conv drawn from the backend's seed, by the float64 reference.
    from flax import nnx

    from convlab.backends.jax.adapter import SEED

    layer = nnx.Conv(3, 2, (3, 3), padding=padding, rngs=nnx.Rngs(SEED))
    kernel = np.asarray(layer.kernel[...]).transpose(3, 2, 0, 1)  # HWIO -> OIHW
    forward = conv2d_reference(x, kernel, (1, 1), (padding,) * 4, 1) + np.asarray(layer.bias[...])[:, None, None]
    assert float(total) == pytest.approx(forward.sum(), rel=1e-4, abs=1e-3)


def _nhwc(x):
    return x.transpose(0, 2, 3, 1)


@pytest.mark.parametrize(
    ("example", "stride", "padding"),
    [
        ("conv 3, padding 1", (1, 1), (1, 1, 1, 1)),
        ("conv (5, 3), padding (2, 1)", (1, 1), (2, 2, 1, 1)),
        ("conv 3, padding 1, stride 2", (2, 2), (1, 1, 1, 1)),
        ("conv (3, 5), padding (0, 1), stride (3, 4)", (3, 4), (0, 0, 1, 1)),
    ],
)
def test_book_conv_tabs_zero_pad_symmetrically(jax_backend, example, stride, padding):
    """Each 7.3 tab is the cross-correlation of the zero-padded input with the kernel its init drew, plus the bias."""
    import jax
    from flax import linen

    X = np.random.default_rng(8).random((1, 1, 8, 8), dtype=np.float32)
    tab = reference_function(jax_backend, "book_tab")(example, X)
    layer = eval(tab.code, {"nn": linen})
    params = layer.init(jax.random.PRNGKey(0), _nhwc(X))["params"]  # the tab's own key, as the book's d2l.get_seed()
    kernel = np.asarray(params["kernel"]).transpose(3, 2, 0, 1)  # HWIO -> OIHW
    want = conv2d_reference(X, kernel, stride, padding, 1) + np.asarray(params["bias"])[None, :, None, None]
    assert tab.note == ""
    np.testing.assert_allclose(tab.output, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("example", "window", "stride", "zeros"),
    [
        ("max-pool 3", (3, 3), (3, 3), (0, 0, 0, 0)),
        ("max-pool 3, padding 1, stride 2", (3, 3), (2, 2), (1, 0, 1, 0)),
        ("max-pool (2, 3), padding (0, 1), stride (2, 3)", (2, 3), (2, 3), (0, 0, 1, 1)),
    ],
)
def test_book_pooling_tabs_pool_what_jnp_pad_gives(jax_backend, example, window, stride, zeros):
    """Each 7.5 tab pads zeros where its jnp.pad says (above and left, or both sides of the width), then pools."""
    top, bottom, left, right = zeros
    for X in (
        np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5),
        -1 - np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4),
    ):
        tab = reference_function(jax_backend, "book_tab")(example, X)
        if any(zeros):  # the table above says what the quoted jnp.pad pads
            assert f"((0, 0), ({top}, {bottom}), ({left}, {right}), (0, 0))" in tab.code
        padded = np.pad(X.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
        np.testing.assert_array_equal(tab.output, pool2d_reference(padded, window, stride, (0, 0, 0, 0), "max"))
        assert bool(tab.note) == any(zeros)
