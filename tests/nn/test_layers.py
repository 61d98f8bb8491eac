"""``cl.nn``: the layers as real modules of every backend, checked against float64 references.

References are independent of convlab: SciPy's correlation and plain loops
(``tests/reference.py``), a NumPy re-derivation of Xavier-uniform, and
central finite differences of a float64 NumPy forward pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reference import conv2d_reference, pool2d_reference

import convlab as cl
from convlab.core.registry import backend_names
from convlab.nn import layers as nn
from convlab.nn.losses import SquaredError


def reference_forward(layers, params, x):
    """The float64 NumPy forward pass of a list of ``(kind, settings)`` layers."""
    for index, (kind, settings_) in enumerate(layers):
        own = {name.partition(".")[2]: value for name, value in params.items() if name.startswith(f"{index}.")}
        if kind == "conv":
            x = conv2d_reference(x, own["weight"], settings_["stride"], settings_["padding"], 1)
            x = x + own["bias"][None, :, None, None]
        elif kind == "pool":
            x = pool2d_reference(x, settings_["window"], settings_["stride"], settings_["padding"], settings_["mode"])
        elif kind == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif kind == "relu":
            x = np.maximum(x, 0)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "linear":
            x = x @ own["weight"].T + own["bias"]
    return x


SMALL_NET = [
    ("conv", {"stride": (1, 1), "padding": (1, 1, 1, 1)}),
    ("sigmoid", {}),
    ("pool", {"window": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "mode": "avg"}),
    ("conv", {"stride": (2, 1), "padding": (0, 1, 1, 0)}),
    ("relu", {}),
    ("pool", {"window": (2, 2), "stride": (1, 1), "padding": (1, 1, 1, 1), "mode": "max"}),
    ("flatten", {}),
    ("linear", {}),
]


def small_net(seed=0):
    """The layers of SMALL_NET on the active backend, on a (2, 2, 6, 6) input."""
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, seed=seed),
        nn.Sigmoid(),
        nn.AvgPool2d(2),
        nn.Conv2d(3, 2, (2, 3), stride=(2, 1), padding=(0, 1, 1, 0), seed=seed + 1),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=1, padding=1),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 5, seed=seed + 2),
    )


def numpy_params(module):
    return {name: cl.to_numpy(value).astype(np.float64) for name, value in cl.parameters(module).items()}


def test_layers_are_the_frameworks_modules(backend):
    net = small_net()
    assert sorted(cl.parameters(net)) == sorted(f"{i}.{name}" for i in (0, 3, 7) for name in ("weight", "bias"))
    shapes = {name: tuple(value.shape) for name, value in cl.parameters(net).items()}
    assert shapes["0.weight"] == (3, 2, 3, 3) and shapes["3.weight"] == (2, 3, 2, 3)
    assert shapes["7.weight"] == (5, 18) and shapes["7.bias"] == (5,)
    assert len(backend.submodules(net)) == 8
    assert all(isinstance(p, backend.tensor_types) for p in cl.parameters(net).values())


def test_forward_matches_float64_reference(backend):
    net = small_net()
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    got = cl.to_numpy(net(cl.tensor(x)))
    want = reference_forward(SMALL_NET, numpy_params(net), x)
    assert got.shape == want.shape == (2, 5)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_seeded_initial_values_are_numpys_xavier_uniform(backend):
    conv, linear = nn.Conv2d(6, 16, 5, seed=7), nn.Linear(400, 120, seed=8)
    bound = math.sqrt(6 / (6 * 25 + 16 * 25))
    want = np.random.default_rng(7).uniform(-bound, bound, (16, 6, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(cl.to_numpy(cl.parameters(conv)["weight"]), want)
    bound = math.sqrt(6 / (400 + 120))
    want = np.random.default_rng(8).uniform(-bound, bound, (120, 400)).astype(np.float32)
    np.testing.assert_array_equal(cl.to_numpy(cl.parameters(linear)["weight"]), want)
    for layer, size in ((conv, 16), (linear, 120)):
        np.testing.assert_array_equal(cl.to_numpy(cl.parameters(layer)["bias"]), np.zeros(size, np.float32))


def test_unseeded_layers_use_the_frameworks_initialiser(backend):
    conv = nn.Conv2d(6, 16, 5)
    weight = cl.to_numpy(cl.parameters(conv)["weight"])
    assert weight.shape == (16, 6, 5, 5) and weight.dtype == np.float32
    assert np.isfinite(weight).all() and weight.std() > 0
    # Every framework's default scales with the fan: a 150-input layer's weights spread by about 0.1, not 1.
    assert 0.01 < weight.std() < 0.2
    assert not np.array_equal(weight, cl.to_numpy(cl.parameters(nn.Conv2d(6, 16, 5, seed=0))["weight"]))
    assert cl.to_numpy(cl.parameters(nn.Linear(3, 2, bias=False))["weight"]).shape == (2, 3)


def test_book_pooling_numbers(backend):
    """d2l 7.5's printed results of nn.MaxPool2d on arange(16), one and two channels."""
    X = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(cl.to_numpy(nn.MaxPool2d(3)(X)), [[[[10]]]])
    np.testing.assert_array_equal(cl.to_numpy(nn.MaxPool2d(3, padding=1, stride=2)(X)), [[[[5, 7], [13, 15]]]])
    np.testing.assert_array_equal(
        cl.to_numpy(nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))(X)), [[[[5, 7], [13, 15]]]]
    )
    two = np.concatenate([X, X + 1], axis=1)
    np.testing.assert_array_equal(cl.to_numpy(nn.MaxPool2d(3, padding=1, stride=2)(two))[0, 1], [[6, 8], [14, 16]])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    c_in=st.integers(1, 3),
    c_out=st.integers(1, 3),
    size=st.tuples(st.integers(3, 7), st.integers(3, 7)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    mode=st.sampled_from(["max", "avg"]),
)
# Found by Hypothesis: TensorFlow's oneDNN convolution misplaced the rows of an output one column wide.
@example(c_in=1, c_out=2, size=(3, 3), kernel=(2, 2), stride=(1, 3), padding=(2, 2, 0, 0), mode="max")
def test_conv_and_pool_layers_on_drawn_shapes(backend, c_in, c_out, size, kernel, stride, padding, mode):
    x = np.random.default_rng(2).standard_normal((2, c_in, *size))
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, seed=3)
    params = numpy_params(conv)
    want = conv2d_reference(x, params["weight"], stride, padding, 1) + params["bias"][None, :, None, None]
    np.testing.assert_allclose(cl.to_numpy(conv(cl.tensor(x))), want, rtol=1e-4, atol=1e-4)
    pool = (nn.MaxPool2d if mode == "max" else nn.AvgPool2d)(kernel, stride=stride, padding=padding)
    want = pool2d_reference(x, kernel, stride, padding, mode)
    np.testing.assert_allclose(cl.to_numpy(pool(cl.tensor(x))), want, rtol=1e-5, atol=1e-5)


DEFINITIONS = {
    "conv": (nn.Conv2dDef(2, 3, (2, 3), (2, 1), (1, 0, 0, 2)), {"weight": (3, 2, 2, 3), "bias": (3,)}, (1, 2, 5, 4)),
    "max-pool": (nn.Pool2dDef("max", (2, 2), (1, 2), (1, 0, 1, 1)), {}, (1, 2, 4, 4)),
    "avg-pool": (nn.Pool2dDef("avg", (3, 2), (2, 1), (1, 1, 0, 1)), {}, (1, 2, 4, 4)),
    "linear": (nn.LinearDef(6, 4), {"weight": (4, 6), "bias": (4,)}, (3, 6)),
    "sigmoid": (nn.ActivationDef("sigmoid"), {}, (2, 3)),
    "relu": (nn.ActivationDef("relu"), {}, (2, 3)),
    "flatten": (nn.FlattenDef(), {}, (2, 2, 3)),
}


@pytest.mark.parametrize("layer", sorted(DEFINITIONS))
def test_gradcheck_every_layer(backend, layer):
    definition, shapes, x_shape = DEFINITIONS[layer]
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape)
    if layer == "max-pool":  # distinct values a step apart: no ties for finite differences to straddle
        x = rng.permutation(x.size).reshape(x_shape) * 0.01
    if layer == "relu":
        x = np.where(np.abs(x) < 0.05, 0.5, x)  # away from the kink
    names = list(shapes)

    def squared_output(x, *params):
        # The sum of squares weights each output by itself: every entry of the Jacobian counts.
        out = definition.forward(cl.get_backend(), dict(zip(names, params, strict=True)), x)
        return cl.get_backend().sum(out * out)

    values = [rng.standard_normal(shape) for shape in shapes.values()]
    result = cl.gradcheck(squared_output, x, *values, eps=1e-5)
    assert result.passed and all(grad is not None for grad in result.analytic)


def test_sequential_gradients_match_finite_differences(backend):
    net = small_net(seed=5)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    target = rng.standard_normal((2, 5)).astype(np.float32)
    loss = SquaredError(backend)
    value, grads = backend.value_and_grad(net, backend.tensor(x), backend.tensor(target), loss)
    params = numpy_params(net)

    def reference_loss(params):
        return float(((reference_forward(SMALL_NET, params, x.astype(np.float64)) - target) ** 2).sum())

    assert value == pytest.approx(reference_loss(params), rel=1e-4)
    eps = 1e-4
    for name in ("0.weight", "3.bias", "7.weight"):
        flat = params[name].reshape(-1)
        for index in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            bumped = {k: v.copy() for k, v in params.items()}
            bumped[name].reshape(-1)[index] += eps
            up = reference_loss(bumped)
            bumped[name].reshape(-1)[index] -= 2 * eps
            numeric = (up - reference_loss(bumped)) / (2 * eps)
            got = cl.to_numpy(grads[name]).reshape(-1)[index]
            assert got == pytest.approx(numeric, rel=2e-3, abs=2e-3), (name, index)


def test_sgd_update_trains_every_parameter(backend):
    net = small_net(seed=9)
    x = backend.tensor(np.random.default_rng(10).standard_normal((2, 2, 6, 6)))
    target = backend.tensor(np.zeros((2, 5)))
    loss = SquaredError(backend)
    before = numpy_params(net)
    first, grads = backend.value_and_grad(net, x, target, loss)
    backend.sgd_update(net, grads, 0.01)
    after = numpy_params(net)
    for name, value in before.items():
        np.testing.assert_allclose(after[name], value - 0.01 * cl.to_numpy(grads[name]), rtol=1e-5, atol=1e-6)
    second, _ = backend.value_and_grad(net, x, target, loss)
    assert second < first


def test_a_layer_keeps_its_backend(backend):
    layer = nn.Linear(2, 1, seed=0)
    with cl.use_backend("numpy"):
        out = layer(np.ones((1, 2), np.float32))
    assert isinstance(out, backend.tensor_types)


def test_bound_module_pins_the_layers(backend):
    import importlib

    bound = importlib.import_module(f"convlab.{backend.name}")
    with cl.use_backend("numpy"):
        layer = bound.nn.Conv2d(1, 1, 2, seed=0)
    assert layer.backend is backend
    assert {"Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "Sequential", "Flatten"} <= set(bound.nn.__all__)


def test_errors_name_the_argument(backend):
    conv = nn.Conv2d(3, 2, 3, seed=0)
    with pytest.raises(ValueError, match=r"Conv2d: expected an input of shape \(N, 3, H, W\), in_channels=3"):
        conv(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d: expected an input of shape"):
        conv(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="kernel_size: expected a kernel no larger than the padded input"):
        conv(np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="stride: expected positive"):
        nn.Conv2d(1, 1, 3, stride=0)
    with pytest.raises(ValueError, match="padding: expected non-negative"):
        nn.MaxPool2d(2, padding=-1)
    with pytest.raises(ValueError, match="kernel_size: expected a kernel no larger than the padded input"):
        nn.AvgPool2d(4, padding=1)(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"Linear: expected an input of shape \(N, 4\), in_features=4"):
        nn.Linear(4, 2, seed=0)(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="in_channels: expected a positive int"):
        nn.Conv2d(1.5, 1, 3)
    with pytest.raises(TypeError, match="seed: expected an int or None"):
        nn.Linear(1, 1, seed="0")
    with pytest.raises(TypeError, match=r"Sequential: layer 1: expected a convlab layer"):
        nn.Sequential(nn.ReLU(), object())


def test_sequential_refuses_layers_of_another_backend(backend):
    other = "numpy" if backend.name != "numpy" else next((n for n in backend_names() if n != "numpy"), None)
    if other is None:
        pytest.skip("no second backend is registered")
    from conftest import load_or_skip

    load_or_skip(other)
    with cl.use_backend(other):
        foreign = nn.ReLU()
    with pytest.raises(ValueError, match=r"Sequential: layer 0 \(ReLU\) was made on"):
        nn.Sequential(foreign)
