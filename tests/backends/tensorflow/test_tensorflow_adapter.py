"""``cl.nn`` on TensorFlow: Keras' own machinery sees, trains and matches convlab's layers.

The references are Keras' own: its ``trainable_weights`` listing, its
``keras.optimizers.SGD``, its ``Conv2D`` and ``Dense`` layers (channels_last,
as Keras users call them) and their default initialisers, plus plain NumPy
(the SGD rule, a padded window maximum, the gradient of a sum).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import conv2d_reference, pool2d_reference

import convlab as cl
from conftest import load_or_skip
from convlab import nn
from convlab.backends.reference import reference_function


@pytest.fixture(autouse=True)
def backend():
    """The TensorFlow backend, active; loading it first imports torch where installed, as it must."""
    load_or_skip("tensorflow")
    with cl.use_backend("tensorflow") as active:
        yield active


def nested_net():
    """A Sequential inside a Sequential, on (N, 1, 6, 6): dotted names two levels deep."""
    head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4, seed=2))
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, seed=1), nn.ReLU(), nn.MaxPool2d(2), head)


def test_trainable_weights_list_every_nested_parameter_once(backend):
    layers = (nn.Flatten(), nn.Linear(2, 2, seed=0))
    head = nn.Sequential(*layers)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, seed=1), nn.ReLU(), nn.Sigmoid(), head)
    named = cl.parameters(net)
    assert list(named) == ["0.weight", "0.bias", "3.1.weight", "3.1.bias"]
    assert [id(w) for w in net.trainable_weights] == [id(w) for w in named.values()]
    assert backend.submodules(head) == layers  # the very layers, in order
    assert backend.submodules(net)[3] is head and backend.submodules(layers[1]) == ()
    assert named["3.1.weight"] is layers[1].weight


def test_a_layer_used_twice_is_named_once_as_keras_lists_it():
    shared = nn.Linear(3, 3, seed=0)
    net = nn.Sequential(shared, nn.Sigmoid(), shared)
    assert list(cl.parameters(net)) == ["0.weight", "0.bias"]
    assert len(net.trainable_weights) == 2


def test_keras_sgd_trains_a_sequential():
    import keras
    import tensorflow as tf

    net = nested_net()
    rng = np.random.default_rng(0)
    X = tf.constant(rng.standard_normal((4, 1, 6, 6)), tf.float32)
    target = tf.constant(rng.standard_normal((4, 4)), tf.float32)
    optimizer = keras.optimizers.SGD(learning_rate=0.01)

    def loss_and_grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((net(X) - target) ** 2)
        return float(loss), tape.gradient(loss, net.trainable_weights)

    losses = []
    for _ in range(5):
        before = [w.numpy() for w in net.trainable_weights]
        loss, grads = loss_and_grads()
        assert all(g is not None for g in grads)
        optimizer.apply_gradients(zip(grads, net.trainable_weights, strict=True))
        for old, grad, new in zip(before, grads, net.trainable_weights, strict=True):
            np.testing.assert_allclose(new.numpy(), old - 0.01 * grad.numpy(), rtol=1e-6, atol=1e-7)
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0]
    # cl.parameters is live: it reads what Keras' optimizer wrote.
    np.testing.assert_array_equal(cl.to_numpy(cl.parameters(net)["3.1.bias"]), net.trainable_weights[3].numpy())


@pytest.mark.parametrize("padding", [0, 2])
def test_conv2d_matches_keras_conv2d(padding):
    import keras
    import tensorflow as tf

    layer = nn.Conv2d(3, 4, 5, padding=padding, seed=0)
    own = keras.layers.Conv2D(4, 5, padding="same" if padding else "valid")
    own.build((None, None, None, 3))
    own.kernel.assign(np.transpose(cl.to_numpy(layer.weight), (2, 3, 1, 0)))  # OIHW -> HWIO
    own.bias.assign(np.linspace(-1, 1, 4, dtype=np.float32))
    layer.bias.assign(own.bias.numpy())
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 8)).astype(np.float32)
    X, X_nhwc = tf.constant(x), tf.constant(np.transpose(x, (0, 2, 3, 1)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([X, X_nhwc])
        ours, theirs = layer(X), own(X_nhwc)
        ours_sum, theirs_sum = tf.reduce_sum(ours**2), tf.reduce_sum(theirs**2)
    np.testing.assert_allclose(ours.numpy(), np.transpose(theirs.numpy(), (0, 3, 1, 2)), rtol=1e-5, atol=1e-5)
    dx, dw, db = tape.gradient(ours_sum, [X, layer.weight, layer.bias])
    dx_own, dw_own, db_own = tape.gradient(theirs_sum, [X_nhwc, own.kernel, own.bias])
    np.testing.assert_allclose(dx.numpy(), np.transpose(dx_own.numpy(), (0, 3, 1, 2)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw.numpy(), np.transpose(dw_own.numpy(), (3, 2, 0, 1)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db.numpy(), db_own.numpy(), rtol=1e-4, atol=1e-4)


def test_linear_matches_keras_dense(backend):
    import keras
    import tensorflow as tf

    layer = nn.Linear(6, 3, seed=0)
    own = keras.layers.Dense(3)
    own.build((None, 6))
    own.kernel.assign(cl.to_numpy(layer.weight).T)
    own.bias.assign(np.array([0.5, -1.0, 2.0], np.float32))
    layer.bias.assign(own.bias.numpy())
    X = tf.constant(np.random.default_rng(2).standard_normal((5, 6)), tf.float32)
    np.testing.assert_allclose(layer(X).numpy(), own(X).numpy(), rtol=1e-6, atol=1e-6)
    assert backend.linear(X, layer.weight).shape == (5, 3)


@pytest.mark.parametrize(
    ("kind", "shapes", "make", "input_shape", "to_core"),
    [
        ("conv2d", {"weight": (16, 6, 5, 5), "bias": (16,)}, ("Conv2D", 16, 5), (None, 8, 8, 6), (3, 2, 0, 1)),
        ("conv2d", {"weight": (2, 3, 1, 2)}, ("Conv2D", 2, (1, 2)), (None, 4, 4, 3), (3, 2, 0, 1)),
        ("linear", {"weight": (120, 400), "bias": (120,)}, ("Dense", 120), (None, 400), (1, 0)),
    ],
)
def test_framework_initial_is_a_new_keras_layers_draw(backend, kind, shapes, make, input_shape, to_core):
    import keras

    keras.utils.set_random_seed(11)
    initial = backend.framework_initial(kind, shapes)
    keras.utils.set_random_seed(11)
    layer_class, *args = make
    own = getattr(keras.layers, layer_class)(*args, use_bias="bias" in shapes)
    own.build(input_shape)
    assert sorted(initial) == sorted(shapes)
    np.testing.assert_array_equal(initial["weight"], np.transpose(own.kernel.numpy(), to_core))
    assert initial["weight"].shape == shapes["weight"]
    if "bias" in shapes:
        np.testing.assert_array_equal(initial["bias"], np.zeros(shapes["bias"], np.float32))
    # Glorot-uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), fans counting the kernel's window.
    out_size, in_size, *window = shapes["weight"]
    receptive = math.prod(window)
    bound = math.sqrt(6 / (in_size * receptive + out_size * receptive))
    weight = initial["weight"]
    assert np.abs(weight).max() <= bound
    if weight.size > 1000:
        assert weight.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_unseeded_layers_differ_from_each_other():
    first, second = nn.Conv2d(1, 6, 5), nn.Conv2d(1, 6, 5)
    assert not np.array_equal(cl.to_numpy(first.weight), cl.to_numpy(second.weight))


def test_max_pool_windows_of_padding_alone_are_minus_infinity():
    # TensorFlow's MaxPool starts at the lowest float32; the layer's -inf padding must stay -inf.
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 3)).astype(np.float32)
    got = cl.to_numpy(nn.MaxPool2d(1, padding=(0, 0, 2, 1))(x))
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (0, 0), (0, 0), (2, 1)), constant_values=-np.inf))
    got = cl.to_numpy(nn.MaxPool2d(2, padding=(0, 3, 0, 0))(x))  # window rows 0-1, 2-3, 4-5 of 3 real rows
    assert got.shape == (1, 2, 3, 1)
    np.testing.assert_array_equal(got[:, :, 1, 0], x[:, :, 2, :2].max(axis=-1))
    assert np.isneginf(got[:, :, 2]).all()


def test_labels_are_int64_tensors(backend):
    import tensorflow as tf

    labels = backend.labels(np.array([3, 0, 9]))
    assert isinstance(labels, tf.Tensor) and labels.dtype == tf.int64
    np.testing.assert_array_equal(labels.numpy(), [3, 0, 9])


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_framework_conv2d_step_differentiates_the_sum(backend, padding):
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 7)).astype(np.float32)
    kernel_size = 3
    grads = reference_function(backend, "framework_conv2d_step")(3, 2, kernel_size, padding, x)()
    d_kernel, d_bias = (g.numpy() for g in grads)
    # d sum / d bias: one per output pixel; d sum / d kernel[i, j, c, o]: the sum of the input pixels
    # that the kernel's entry (i, j) meets, over every window (the same for every output channel).
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h, out_w = padded.shape[2] - kernel_size + 1, padded.shape[3] - kernel_size + 1
    np.testing.assert_allclose(d_bias, [2 * out_h * out_w] * 2)
    want = np.array(
        [[padded[:, :, i : i + out_h, j : j + out_w].sum(axis=(0, 2, 3)) for j in range(3)] for i in range(3)]
    )
    assert d_kernel.shape == (3, 3, 3, 2)
    np.testing.assert_allclose(d_kernel, np.repeat(want[..., None], 2, axis=-1), rtol=1e-4, atol=1e-4)


def test_compiled_functions_are_bounded(backend, monkeypatch):
    # One compilation per operation, settings and shapes, in caches of a fixed size: exploring many shapes
    # (a notebook) drops the least recently used instead of growing without limit.
    from convlab.backends.tensorflow import adapter, kernels

    for cache in (kernels._compiled, kernels._shift_and_add_graph, kernels._max_pool_backward):
        assert cache.cache_info().maxsize == kernels.COMPILED_CACHE_SIZE
    monkeypatch.setattr(adapter, "_nchw_kernels", lambda op, dtype: False)  # the XLA path, whatever the build
    before = kernels._compiled.cache_info()
    for n in (41, 43, 47):  # shapes no other test uses
        cl.pool2d(np.ones((n, 5), np.float32), 2)
        cl.pool2d(np.ones((n, 5), np.float32), 2)  # the same shapes again: a hit, not a new compilation
    after = kernels._compiled.cache_info()
    assert after.misses - before.misses == 3 and after.hits - before.hits >= 3
    assert after.currsize <= kernels.COMPILED_CACHE_SIZE


def test_keras_training_argument_sets_the_mode_of_a_call(backend):
    # Keras users pick the mode per call, layer(x, training=False); Keras hands it down to the sublayers.
    net = cl.models.bn_lenet(seed=0)
    X = np.random.default_rng(6).random((4, 1, 28, 28), dtype=np.float32)
    before = {name: cl.to_numpy(value).copy() for name, value in cl.state(net).items()}
    evaluated = cl.to_numpy(cl.nn.set_training(net, False)(X))
    cl.nn.set_training(net, True)
    np.testing.assert_array_equal(cl.to_numpy(net(X, training=False)), evaluated)
    for name, value in cl.state(net).items():  # evaluation moved no running statistic
        np.testing.assert_array_equal(cl.to_numpy(value), before[name])
    trained = cl.to_numpy(net(X, training=True))
    assert not np.allclose(trained, evaluated)  # the batch's statistics, not the running ones
    cl.nn.set_training(net, False)
    np.testing.assert_allclose(cl.to_numpy(net(X, training=True)), trained, rtol=1e-5)  # the argument wins


NCHW_CASES = [
    ("conv2d", dict(stride=(1, 1), padding=(2, 2, 2, 2), groups=1)),  # "SAME"
    ("conv2d", dict(stride=(2, 3), padding=(0, 1, 2, 0), groups=1)),  # padded first
    ("conv2d", dict(stride=(2, 2), padding=(0, 1, 0, 1), groups=1)),  # "SAME" at stride 2
    ("conv2d", dict(stride=(1, 1), padding=(0, 0, 0, 0), groups=2)),
    ("max", dict(window=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1))),
    ("max", dict(window=(2, 3), stride=(1, 3), padding=(0, 0, 1, 2))),
    ("avg", dict(window=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0))),
    ("avg", dict(window=(3, 2), stride=(1, 2), padding=(1, 0, 0, 1))),
]


def _nchw_op_and_reference(backend, kind, settings, x, w):
    """The backend's op on float32 tensors, and the float64 reference's values, of ``kind`` and ``settings``."""
    if kind == "conv2d":
        op = lambda x, w: backend.conv2d(x, w, settings["stride"], settings["padding"], settings["groups"])  # noqa: E731
        reference = lambda x, w: conv2d_reference(x, w, settings["stride"], settings["padding"], settings["groups"])  # noqa: E731
        return op, reference
    window, stride, padding = settings["window"], settings["stride"], settings["padding"]
    return (
        lambda x, w: backend.pool2d(x, window, stride, padding, kind),
        lambda x, w: pool2d_reference(x, window, stride, padding, kind),
    )


@pytest.mark.parametrize("kernels", ["nchw", "transposing"])
@pytest.mark.parametrize(("kind", "settings"), NCHW_CASES)
def test_nchw_kernels_and_their_fallback_match_the_reference(backend, monkeypatch, kernels, kind, settings):
    # oneDNN's NCHW kernels where the build has them, and the transposing XLA path that stands in for them
    # elsewhere (TF_ENABLE_ONEDNN_OPTS=0, float64), each against float64 NumPy: values and gradients.
    import tensorflow as tf

    from convlab.backends.tensorflow import adapter
    from convlab.backends.tensorflow.kernels import _nchw_kernels

    op_name = f"{kind}_pool2d" if kind in ("max", "avg") else "grouped_conv2d" if settings.get("groups") == 2 else kind
    if kernels == "nchw" and not _nchw_kernels(op_name, tf.float32):
        pytest.skip("this TensorFlow has no NCHW CPU kernel for it (oneDNN off)")
    if kernels == "transposing":
        monkeypatch.setattr(adapter, "_nchw_kernels", lambda op, dtype: False)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 4 // settings.get("groups", 1), 3, 3)).astype(np.float32)
    op, reference = _nchw_op_and_reference(backend, kind, settings, x, w)
    want = reference(x, w)
    dy = rng.standard_normal(want.shape)
    X, W, dY = tf.constant(x), tf.constant(w), tf.constant(dy.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch([X, W])
        y = op(X, W)
        total = tf.reduce_sum(y * dY)
    dx, dw = tape.gradient(total, [X, W], unconnected_gradients="zero")
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-5)
    # The gradients' inner products with a direction, against the reference's directional derivative.
    eps = 1e-4
    direction_x, direction_w = rng.standard_normal(x.shape), rng.standard_normal(w.shape)

    def along(t):
        return float((dy * reference(x + t * direction_x, w + t * direction_w)).sum())

    numeric = (along(eps) - along(-eps)) / (2 * eps)
    analytic = float((dx.numpy() * direction_x).sum() + (dw.numpy() * direction_w).sum())
    assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-3)


ONE_COLUMN_CASES = [
    # (height, width), kernel, stride, padding: one input channel, an output one column wide, strides that differ
    ((3, 3), (2, 2), (1, 3), (2, 2, 0, 0)),  # Hypothesis' find in test_conv_and_pool_layers_on_drawn_shapes
    ((5, 2), (1, 2), (1, 2), (0, 0, 0, 0)),
    ((7, 4), (3, 3), (1, 3), (0, 0, 0, 0)),
    ((4, 2), (2, 3), (1, 2), (0, 1, 0, 1)),  # "SAME"'s padding for these sizes and strides
    ((6, 3), (2, 2), (2, 3), (1, 0, 1, 0)),
]


@pytest.mark.parametrize(("size", "kernel", "stride", "padding"), ONE_COLUMN_CASES)
def test_a_convolution_one_column_wide_matches_the_reference(backend, size, kernel, stride, padding):
    # oneDNN's NCHW kernel misplaced these outputs' rows: (3, 3) gave rows 0, 2, 4 where 0, 1, 2 belong.
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 1, *size)), rng.standard_normal((2, 1, *kernel))
    want = conv2d_reference(x, w, stride, padding, 1)
    assert want.shape[3] == 1
    dy = rng.standard_normal(want.shape)
    X, W = tf.constant(x.astype(np.float32)), tf.constant(w.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch([X, W])
        y = backend.conv2d(X, W, stride, padding, 1)
        total = tf.reduce_sum(y * dy.astype(np.float32))
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-5)
    # The output is linear in x and in w: each gradient entry is dy's inner product with the reference's output
    # for the unit input (or kernel) at that entry.
    dx, dw = (gradient.numpy().ravel() for gradient in tape.gradient(total, [X, W]))
    units = np.eye(x.size).reshape(x.size, *x.shape)
    np.testing.assert_allclose(dx, [(dy * conv2d_reference(u, w, stride, padding, 1)).sum() for u in units], atol=1e-4)
    units = np.eye(w.size).reshape(w.size, *w.shape)
    np.testing.assert_allclose(dw, [(dy * conv2d_reference(x, u, stride, padding, 1)).sum() for u in units], atol=1e-4)


def test_nchw_probe_names_its_ops():
    from convlab.backends.tensorflow import kernels

    with pytest.raises(ValueError, match="conv2d"):
        kernels._nchw_kernels("conv3d", None)


def test_max_pool_ties_take_the_transposing_paths_gradient(backend, monkeypatch):
    # After a ReLU, windows of zeros tie: oneDNN's NCHW gradient must route each to the pixel the NHWC path does.
    import tensorflow as tf

    from convlab.backends.tensorflow import adapter, kernels

    if not kernels._nchw_kernels("max_pool2d", tf.float32):
        pytest.skip("this TensorFlow has no NCHW CPU max pooling (oneDNN off)")
    x = tf.constant(np.maximum(np.random.default_rng(8).standard_normal((2, 3, 8, 8)), 0).astype(np.float32))

    def gradient():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = backend.pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1), "max")
        return tape.gradient(y, x, output_gradients=y + 1).numpy()

    native = gradient()
    monkeypatch.setattr(adapter, "_nchw_kernels", lambda op, dtype: False)
    np.testing.assert_array_equal(native, gradient())


ONEDNN_OFF = """
import numpy as np, tensorflow as tf
import convlab as cl
from convlab.backends.tensorflow import kernels
from reference import conv2d_reference, pool2d_reference
assert not any(kernels._nchw_kernels(op, tf.float32) for op in kernels.NCHW_OPS)
x = np.random.default_rng(0).standard_normal((2, 3, 7, 7)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
with cl.use_backend("tensorflow") as backend:
    y = backend.conv2d(backend.tensor(x), backend.tensor(w), (2, 1), (1, 0, 1, 1), 1)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x, w, (2, 1), (1, 0, 1, 1), 1), rtol=1e-5, atol=1e-5)
    y = backend.pool2d(backend.tensor(x), (3, 3), (2, 2), (1, 1, 1, 1), "max")
    np.testing.assert_allclose(y.numpy(), pool2d_reference(x, (3, 3), (2, 2), (1, 1, 1, 1), "max"))
"""


def test_without_onednn_the_transposing_path_computes():
    # TF_ENABLE_ONEDNN_OPTS=0 leaves TensorFlow's own CPU kernels, NHWC only: read when TensorFlow loads, so a
    # process of its own. The probe finds no NCHW kernel, and the transposing path gives the right values.
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parents[2]
    path = os.pathsep.join([str(tests.parent), str(tests), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", ONEDNN_OFF], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
