"""``cl.nn`` on MXNet as Gluon sees it: registration, names, initial values, Gluon's own training loop.

The conformance suite (``tests/nn/test_layers.py``) checks what every backend
computes; these tests check what only Gluon users meet. The references are
Gluon's own idiomatic code (``collect_params``, ``save_parameters``,
``gluon.Trainer``, ``nn.Conv2D`` and ``nn.Dense`` after ``initialize()``),
closed-form float64 gradients and the float64 pooling loop of
``tests/reference.py``.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from reference import pool2d_reference

import convlab as cl
from convlab import nn
from convlab.backends.reference import reference_function
from convlab.nn.losses import SoftmaxCrossEntropy, SquaredError

if importlib.util.find_spec("mxnet") is None:
    pytest.skip("mxnet is not installed (pip install --no-deps mxnet==1.9.1)", allow_module_level=True)


@pytest.fixture
def backend():
    cl.core.registry.load_backend("mxnet")
    with cl.use_backend("mxnet") as active:
        yield active


@pytest.fixture
def mx():
    import mxnet

    return mxnet


def nested_net(seed=0):
    """A convolution, and a Sequential inside the Sequential: names two levels deep."""
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, seed=seed),
        nn.ReLU(),
        nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3, seed=seed + 1)),
    )


NESTED_NAMES = {"0.weight", "0.bias", "2.2.weight", "2.2.bias"}


def test_collect_params_holds_every_nested_parameter(backend):
    net = nested_net()
    ours = cl.parameters(net)
    assert set(ours) == NESTED_NAMES
    gluons = [p.data() for p in net.collect_params().values()]
    assert len(gluons) == len(ours)
    # The same arrays, not copies: what the framework's optimiser updates is what convlab reads.
    assert {id(value) for value in gluons} == {id(value) for value in ours.values()}
    assert [type(child) for child in backend.submodules(net)] == [type(net)] * 3
    assert len(backend.submodules(backend.submodules(net)[2])) == 3


def test_dotted_names_are_save_parameters_keys(backend, mx, tmp_path):
    net = nested_net(seed=0)
    path = str(tmp_path / "net.params")
    net.save_parameters(path)
    saved = mx.nd.load(path)
    assert set(saved) == NESTED_NAMES
    for name, value in cl.parameters(net).items():
        np.testing.assert_array_equal(saved[name].asnumpy(), cl.to_numpy(value))
    other = nested_net(seed=10)
    other.load_parameters(path)
    for name, value in cl.parameters(other).items():
        np.testing.assert_array_equal(cl.to_numpy(value), saved[name].asnumpy())


def test_nesting_initialises_nothing_twice(backend):
    conv = nn.Conv2d(1, 2, 3, seed=4)
    before = cl.to_numpy(cl.parameters(conv)["weight"]).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gluon warns "already initialized" for each parameter initialised again
        net = nn.Sequential(nn.Sequential(conv, nn.Sigmoid()), nn.Flatten())
    np.testing.assert_array_equal(cl.to_numpy(cl.parameters(net)["0.0.weight"]), before)
    assert cl.parameters(net)["0.0.weight"] is cl.parameters(conv)["weight"]


def test_gluon_trainer_trains_a_sequential(backend, mx):
    from mxnet import autograd, gluon

    net = nested_net(seed=2)
    rng = np.random.default_rng(3)
    X = backend.tensor(rng.standard_normal((4, 1, 4, 4)))
    Y = backend.tensor(rng.standard_normal((4, 3)))
    lr = 0.01
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    losses = []
    for step in range(30):
        with autograd.record():
            loss = ((net(X) - Y) ** 2).sum()
        loss.backward()
        if step == 0:
            before = {name: cl.to_numpy(value).copy() for name, value in cl.parameters(net).items()}
            grads = {name: p.grad().asnumpy().copy() for name, p in net._collect_params_with_prefix().items()}
        trainer.step(1)
        if step == 0:
            for name, value in cl.parameters(net).items():
                assert np.abs(grads[name]).max() > 0, name
                np.testing.assert_allclose(cl.to_numpy(value), before[name] - lr * grads[name], rtol=1e-5, atol=1e-7)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_value_and_grad_gives_gluons_gradients(backend):
    from mxnet import autograd

    net = nested_net(seed=5)
    rng = np.random.default_rng(6)
    X = backend.tensor(rng.standard_normal((2, 1, 4, 4)))
    Y = backend.tensor(rng.standard_normal((2, 3)))
    value, grads = backend.value_and_grad(net, X, Y, SquaredError(backend))
    ours = {name: cl.to_numpy(grad).copy() for name, grad in grads.items()}
    with autograd.record():
        loss = ((net(X) - Y) ** 2).sum()
    loss.backward()
    assert value == pytest.approx(loss.item(), rel=1e-6)
    gluons = {name: p.grad().asnumpy() for name, p in net._collect_params_with_prefix().items()}
    assert set(ours) == set(gluons) == NESTED_NAMES
    for name in ours:
        np.testing.assert_allclose(ours[name], gluons[name], rtol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_unseeded_layers_start_where_gluons_layers_start(backend, mx, bias):
    """The same MXNet seed: cl.nn's unseeded layers and Gluon's own, after initialize(), compute the same."""
    from mxnet.gluon import nn as gluon_nn

    X = backend.tensor(np.random.default_rng(7).standard_normal((2, 3, 6, 5)))
    mx.random.seed(11)
    conv = nn.Conv2d(3, 4, (3, 2), padding=1, bias=bias)
    mx.random.seed(11)
    gluon_conv = gluon_nn.Conv2D(4, (3, 2), padding=1, in_channels=3, use_bias=bias)
    gluon_conv.initialize()
    np.testing.assert_array_equal(cl.to_numpy(conv(X)), gluon_conv(X).asnumpy())
    assert set(cl.parameters(conv)) == ({"weight", "bias"} if bias else {"weight"})

    x = backend.tensor(np.random.default_rng(8).standard_normal((3, 5)))
    mx.random.seed(12)
    linear = nn.Linear(5, 2, bias=bias)
    mx.random.seed(12)
    dense = gluon_nn.Dense(2, use_bias=bias, in_units=5)
    dense.initialize()
    np.testing.assert_allclose(cl.to_numpy(linear(x)), dense(x).asnumpy(), rtol=1e-6)


def test_framework_initial_is_gluons_default_uniform(backend):
    values = backend.framework_initial("conv2d", {"weight": (16, 6, 5, 5), "bias": (16,)})
    weight = values["weight"]
    assert weight.shape == (16, 6, 5, 5) and weight.dtype == np.float32
    # Uniform(0.07): bounded by 0.07, standard deviation 0.07 / sqrt(3) (2400 draws: about 1.5% error).
    assert np.abs(weight).max() <= 0.07
    assert weight.std() == pytest.approx(0.07 / np.sqrt(3), rel=0.06)
    assert abs(weight.mean()) < 0.005
    np.testing.assert_array_equal(values["bias"], np.zeros(16, np.float32))
    linear = backend.framework_initial("linear", {"weight": (120, 400)})
    assert set(linear) == {"weight"} and linear["weight"].shape == (120, 400)


def test_linear_gradients_are_the_closed_form(backend):
    rng = np.random.default_rng(9)
    x, w, bias, g = (rng.standard_normal(shape) for shape in ((4, 3), (2, 3), (2,), (4, 2)))

    def weighted(x, w, bias, g):  # g, an input too, so that it stays float64
        return backend.sum(backend.linear(x, w, bias) * g)

    value, (dx, dw, dbias, _) = backend.grad(weighted, x, w, bias, g)
    assert value == pytest.approx(float(((x @ w.T + bias) * g).sum()), rel=1e-12)
    np.testing.assert_allclose(dx, g @ w, rtol=1e-12)
    np.testing.assert_allclose(dw, g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(dbias, g.sum(axis=0), rtol=1e-12)
    assert dx.dtype == np.float64


def test_conv_bias_gradient_is_the_output_gradients_sum(backend):
    rng = np.random.default_rng(10)
    x, w, bias, g = (rng.standard_normal(shape) for shape in ((2, 2, 5, 4), (3, 2, 2, 2), (3,), (2, 3, 4, 4)))

    def weighted(x, w, bias, g):
        return backend.sum(backend.conv2d(x, w, (1, 1), (0, 0, 0, 1), 1, bias) * g)

    _, (_, _, dbias, _) = backend.grad(weighted, x, w, bias, g)
    np.testing.assert_allclose(dbias, g.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_window_in_the_padding_is_minus_inf(backend, dtype):
    x = np.arange(8.0, dtype=dtype).reshape(1, 2, 2, 2)
    padding = (0, 0, 0, 2)  # the second window of each row is all padding
    want = pool2d_reference(x, (2, 2), (2, 2), padding, "max")
    assert np.isneginf(want).sum() == 2

    def total_of_finite(x):
        out = backend.pool2d(x, (2, 2), (2, 2), padding, "max")
        return backend.sum(out[:, :, :, :1])

    np.testing.assert_array_equal(cl.to_numpy(nn.MaxPool2d(2, padding=padding)(x)), want)
    _, (grad,) = backend.grad(total_of_finite, x)
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, (x == x.max(axis=(2, 3), keepdims=True)).astype(dtype))


def test_max_pool_of_a_reshaped_view_sends_each_gradient_to_its_maximum(backend):
    # MXNet 1.9.1's own backward, given the reshape_view, sent 7.2 more to some pixels (its window's first).
    # float32, which oneDNN computes (and misread); distinct values: each window has one maximum
    x = (np.random.default_rng(9).permutation(20).reshape(4, 5) * 0.1).astype(np.float32)
    padding = (1, 1, 1, 1)

    def squares_of_pooled_view(x):
        return backend.sum(backend.pool2d(backend.reshape(x, (1, 1, 4, 5)), (3, 3), (2, 2), padding, "max") ** 2)

    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, 1, constant_values=-np.inf), (3, 3))[::2, ::2]
    want = np.zeros_like(x)
    for window in windows.reshape(-1, 9):
        top = window.max()
        want[x == top] += 2 * top  # d(top^2)/d(top), at the pixel that is the window's maximum
    _, (grad,) = backend.grad(squares_of_pooled_view, x)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, want, rtol=1e-6)


def test_max_pool_copies_only_a_view(backend):
    # Each copy of a convolution's output reorders it out of oneDNN's layout: 1.4 ms a max pooling on VGG.
    fresh = backend.relu(backend.tensor(np.ones((2, 3, 4, 4), dtype=np.float32)))
    assert not getattr(fresh, "is_reshaped_view", False)
    assert backend.reshape(fresh, (2, 3, 16)).is_reshaped_view


def test_labels_are_int64_and_compare_with_argmax(backend):
    labels = backend.labels(np.array([2, 0, 1]))
    assert labels.dtype == np.int64 and labels.ctx == backend.context
    scores = backend.tensor(np.eye(3)[[2, 1, 1]])
    np.testing.assert_array_equal((backend.argmax(scores, axis=1) == labels).asnumpy(), [True, False, True])


def test_sgd_update_is_param_minus_lr_grad_past_one_fused_call(backend):
    """MXNet's fused kernel takes at most 60 weights a call: 62 parameters need two calls, each exact."""
    net = nn.Sequential(*[nn.Linear(3, 2, seed=i) for i in range(31)])
    before = {name: cl.to_numpy(value).copy() for name, value in cl.parameters(net).items()}
    assert len(before) == 62
    rng = np.random.default_rng(12)
    grads = {name: rng.standard_normal(value.shape).astype(np.float32) for name, value in before.items()}
    lr = 0.3
    backend.sgd_update(net, {name: backend.tensor(grad) for name, grad in grads.items()}, lr)
    for name, value in cl.parameters(net).items():
        want = before[name] - np.float32(lr) * grads[name]
        np.testing.assert_allclose(cl.to_numpy(value), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_framework_conv2d_step_differentiates_the_sum(backend, padding):
    x = np.random.default_rng(13).standard_normal((2, 3, 6, 7)).astype(np.float32)
    kernel_size = 3
    step = reference_function(backend, "framework_conv2d_step")(3, 2, kernel_size, padding, x)
    d_weight, d_bias = (grad.asnumpy() for grad in step())
    # d sum / d bias: one per output pixel of each image; d sum / d weight[o, c, i, j]: the sum of the
    # input pixels of channel c that the kernel's entry (i, j) meets, the same for every output channel o.
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = padded.shape[2] - kernel_size + 1, padded.shape[3] - kernel_size + 1
    np.testing.assert_allclose(d_bias, [2 * out_h * out_w] * 2)
    met = np.array(
        [[padded[:, :, i : i + out_h, j : j + out_w].sum(axis=(0, 2, 3)) for j in range(3)] for i in range(3)]
    )  # (i, j, c)
    assert d_weight.shape == (2, 3, 3, 3)  # OIHW, Gluon's layout
    np.testing.assert_allclose(d_weight, np.broadcast_to(met.transpose(2, 0, 1), (2, 3, 3, 3)), rtol=1e-4, atol=1e-4)


def test_idiomatic_lenet_step_follows_convlabs_steps_from_the_same_weights(backend):
    """Gluon's own LeNet, loaded with cl.models.lenet's weights, takes the same SGD steps as convlab's."""
    rng = np.random.default_rng(14)
    X = rng.random((16, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    net = cl.models.lenet(seed=0)
    weights = {name: cl.to_numpy(value).copy() for name, value in cl.parameters(net).items()}
    lr = 0.1
    idiomatic = reference_function(backend, "idiomatic_lenet_step")(weights, lr, X, y)
    loss = SoftmaxCrossEntropy(backend)
    X_ours, Y_ours = backend.tensor(X), backend.tensor(np.eye(10, dtype=np.float32)[y])
    ours = []
    for _ in range(4):
        value, grads = backend.value_and_grad(net, X_ours, Y_ours, loss)
        backend.sgd_update(net, grads, lr)
        ours.append(value)
    theirs = [idiomatic() for _ in range(4)]
    np.testing.assert_allclose(theirs, ours, rtol=1e-4)
    # The steps moved the loss by far more than the tolerance: equal losses after them mean equal updates.
    assert ours[0] - ours[-1] > 0.1
    # Independently of convlab: the first loss is the mean cross-entropy of the weights' own forward pass.
    logits = cl.to_numpy(cl.models.lenet(seed=0)(backend.tensor(X))).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert theirs[0] == pytest.approx(-log_p[np.arange(16), y].mean(), rel=1e-5)


def test_save_and_load_parameters_keep_the_state_too(backend, tmp_path):
    # Gluon's own checkpoint: running statistics and dropout's 0-d step (which Gluon's set_data cannot write) load.
    net = cl.models.alexnet(seed=0)
    X = np.random.default_rng(2).random((4, 1, 28, 28), dtype=np.float32)
    net(X)
    net(X)
    net.save_parameters(str(tmp_path / "alexnet.params"))
    other = cl.models.alexnet(seed=1)
    other.load_parameters(str(tmp_path / "alexnet.params"))
    for mine, theirs in ((cl.parameters(net), cl.parameters(other)), (cl.state(net), cl.state(other))):
        assert sorted(mine) == sorted(theirs)
        for name, value in mine.items():
            np.testing.assert_array_equal(cl.to_numpy(theirs[name]), cl.to_numpy(value), err_msg=name)
    assert {name: float(cl.to_numpy(value)) for name, value in cl.state(other).items()} == {"16.step": 2, "19.step": 2}
