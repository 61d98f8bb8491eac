"""The book's TensorFlow tabs and Keras' idiomatic code, for ``convlab bench`` and the shape report.

See :mod:`convlab.backends.reference`; the core never imports this module. The
idiomatic code is Keras as its users write it, on NHWC input converted once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from convlab.backends.base import Padding, Pair
from convlab.backends.reference import BookTab, FrameworkRun
from convlab.backends.tensorflow.adapter import TensorFlowBackend

# TensorFlow and Keras as the whole backend imports them (its logging level set first, Keras' backend checked).
from convlab.backends.tensorflow.framework import keras, tf
from convlab.backends.tensorflow.networks import FLATTENED, NETWORKS, keras_dropout

AUTOGRAD_OUTCOME = ("no gradient", "no gradient for weight")
"""What :func:`convlab.autograd_exercise` reports: the loop writes with ``Variable.assign``, not differentiable."""

BOOK_TAB_SHAPES: dict[str, Pair] = {"conv (3, 5), padding (0, 1), stride (3, 4)": (2, 1)}
"""Keras' ``Conv2D`` pads only ``"same"`` or ``"valid"``: the tab's ``"valid"`` gives (2, 1), not (2, 2)."""

BOOK_TAB_ZERO_PADDING: dict[str, Padding] = {
    "max-pool 3": (0, 0, 0, 0),
    "max-pool 3, padding 1, stride 2": (1, 0, 1, 0),  # tf.pad: [1, 0] rows, [1, 0] columns
    "max-pool (2, 3), padding (0, 1), stride (2, 3)": (0, 0, 1, 1),  # [0, 0] rows, [1, 1] columns
}
"""The 7.5 tabs pad zeros with ``tf.pad`` (none for the first), then pool with ``padding="valid"``."""


BATCH_NORM_MOMENTUM = 0.01
"""Keras' ``momentum=0.99`` is the old value's weight: convlab's (PyTorch's) 0.01."""

BATCH_NORM_RUNNING_VAR = "biased"
"""``BatchNormalization`` averages the batch's biased variance into ``moving_variance``."""

BOOK_STEM_POOL_PADDING = "same"
"""The stems' ``MaxPool2D(pool_size=3, strides=2, padding='same')``: (0, 1) on an even size, (1, 1) on an odd one."""


def book_stem_pool(backend: TensorFlowBackend, X: np.ndarray) -> BookTab:
    """The stem max pooling of d2l's TensorFlow GoogLeNet, ResNet and DenseNet tabs, on NHWC ``X``."""
    code = "tf.keras.layers.MaxPool2D(pool_size=3, strides=2, padding='same')(X)"
    with tf.device(backend.device.upper()):
        nhwc = tf.constant(np.ascontiguousarray(np.transpose(X, (0, 2, 3, 1))))
        output = eval(code, {"tf": tf, "X": nhwc})  # the quoted text is what runs
    note = (
        "'same' pads an odd size (1, 1) but an even one (0, 1), only below and to the right: there its windows "
        "start a row and a column later than padding=1's, so the shapes agree and the values do not"
    )
    return BookTab(np.transpose(output.numpy(), (0, 3, 1, 2)), code, note)


def framework_batch_norm(backend: TensorFlowBackend, batches: Sequence[np.ndarray]) -> FrameworkRun:
    """``keras.layers.BatchNormalization()`` on NHWC batches, each called with ``training=True``."""
    code = "keras.layers.BatchNormalization()"
    means, variances = [], []
    with tf.device(backend.device.upper()):
        layer = eval(code, {"keras": keras})  # the quoted text is what runs
        for X in batches:
            layer(tf.constant(np.ascontiguousarray(np.transpose(X, (0, 2, 3, 1)))), training=True)
            means.append(layer.moving_mean.numpy().copy())
            variances.append(layer.moving_variance.numpy().copy())
    note = (
        f"momentum={layer.momentum} is the old value's weight (moving = momentum moving + (1 - momentum) batch), "
        f"convlab's {1 - layer.momentum:.2g}; moving_variance averages the batch's biased variance"
    )
    return FrameworkRun(
        {"running_mean": np.stack(means), "running_var": np.stack(variances)}, f"{code}(X, training=True)", note
    )


def framework_dropout(backend: TensorFlowBackend, X: np.ndarray, p: float) -> FrameworkRun:
    """``keras.layers.Dropout(p)`` called with ``training=True``, then ``training=False``."""
    code = f"keras.layers.Dropout({p})"
    with tf.device(backend.device.upper()):
        layer = eval(code, {"keras": keras})  # the quoted text is what runs
        x = tf.constant(X)
        training = layer(x, training=True).numpy()
        evaluation = layer(x, training=False).numpy()
    note = "a call without training=True (outside fit) is the identity, as in evaluation"
    return FrameworkRun({"training": training, "evaluation": evaluation}, f"{code}(X, training=True / False)", note)


def book_tab(backend: TensorFlowBackend, example: str, X: np.ndarray) -> BookTab:
    """d2l's TensorFlow tabs of 7.3 (``Conv2D`` with ``"same"``/``"valid"``) and 7.5 (``tf.pad``, ``MaxPool2D``)."""
    top_left_zeros = (
        "the tab pads zeros on the top and left only (tf.pad), then pools without padding: a padded 0 "
        "beats negative values, and odd sizes lose a row and a column of outputs"
    )
    calls = {
        "conv 3, padding 1": ("tf.keras.layers.Conv2D(1, kernel_size=3, padding='same')(X)", ""),
        "conv (5, 3), padding (2, 1)": ("tf.keras.layers.Conv2D(1, kernel_size=(5, 3), padding='same')(X)", ""),
        "conv 3, padding 1, stride 2": (
            "tf.keras.layers.Conv2D(1, kernel_size=3, padding='same', strides=2)(X)",
            "",  # the book's shape; 'same' at stride 2 pads (0, 1) rows and columns, not (1, 1)
        ),
        "conv (3, 5), padding (0, 1), stride (3, 4)": (
            "tf.keras.layers.Conv2D(1, kernel_size=(3,5), padding='valid', strides=(3, 4))(X)",
            "Keras' Conv2D pads only 'same' or 'valid', and neither is (0, 1): the tab uses 'valid', "
            "so it prints (2, 1) where padding (0, 1) gives (2, 2)",
        ),
        "max-pool 3": ("tf.keras.layers.MaxPool2D(pool_size=[3, 3])(X)", ""),
        "max-pool 3, padding 1, stride 2": (
            "tf.keras.layers.MaxPool2D(pool_size=[3, 3], padding='valid', strides=2)"
            "(tf.pad(X, tf.constant([[0, 0], [1, 0], [1, 0], [0, 0]]), 'CONSTANT'))",
            top_left_zeros,
        ),
        "max-pool (2, 3), padding (0, 1), stride (2, 3)": (
            "tf.keras.layers.MaxPool2D(pool_size=[2, 3], padding='valid', strides=(2, 3))"
            "(tf.pad(X, tf.constant([[0, 0], [0, 0], [1, 1], [0, 0]]), 'CONSTANT'))",
            "the tab pads zeros (tf.pad), not -inf, so a padded 0 beats negative values",
        ),
    }
    code, note = calls[example]
    nhwc = tf.constant(np.ascontiguousarray(np.transpose(X, (0, 2, 3, 1))))
    # The quoted text is what runs: the report cannot show other code than it ran.
    output = eval(code, {"tf": tf, "X": nhwc})
    return BookTab(np.transpose(output.numpy(), (0, 3, 1, 2)), code, note)


def framework_conv2d_step(
    backend: TensorFlowBackend, in_channels: int, out_channels: int, kernel_size: int, padding: int, x: np.ndarray
) -> Callable[[], Any]:
    """Keras' ``Conv2D`` as its users write it, under a ``GradientTape``, on NHWC input converted once.

    The padding is ``padding="same"`` where that is the padding asked for
    (odd kernel, stride 1), else a ``ZeroPadding2D`` layer in front of a
    ``"valid"`` conv.
    """
    same = 2 * padding == kernel_size - 1
    conv = keras.layers.Conv2D(out_channels, kernel_size, padding="same" if same else "valid")
    layer = conv if same or not padding else keras.Sequential([keras.layers.ZeroPadding2D(padding), conv])
    device = backend.device.upper()
    with tf.device(device):
        X = tf.constant(np.transpose(x, (0, 2, 3, 1)))  # NCHW -> NHWC, once
        layer(X)  # builds the weights

    def step() -> Any:
        with tf.device(device):
            with tf.GradientTape() as tape:
                total = tf.reduce_sum(layer(X))
            return backend.synchronize(tape.gradient(total, layer.trainable_weights))

    return step


def idiomatic_lenet_step(
    backend: TensorFlowBackend, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """The book's TensorFlow LeNet: a Keras ``Sequential`` on NHWC images, Keras' loss and SGD.

    The sigmoid activations are fused into the layers, as the book writes
    them; the layers with weights are named by their position in convlab's
    LeNet, whose weights load by name (see :func:`_sgd_step`).
    """
    with tf.device(backend.device.upper()):
        net = keras.Sequential([
            keras.layers.Conv2D(filters=6, kernel_size=5, activation="sigmoid", padding="same", name="0"),
            keras.layers.AvgPool2D(pool_size=2, strides=2),
            keras.layers.Conv2D(filters=16, kernel_size=5, activation="sigmoid", name="3"),
            keras.layers.AvgPool2D(pool_size=2, strides=2),
            keras.layers.Flatten(),
            keras.layers.Dense(120, activation="sigmoid", name="7"),
            keras.layers.Dense(84, activation="sigmoid", name="9"),
            keras.layers.Dense(10, name="11"),
        ])  # fmt: skip
    return _sgd_step(backend, net, weights, lr, X, y, flattened={"7": (16, 5, 5)})


def _sgd_step(
    backend: TensorFlowBackend,
    net: keras.Model,
    weights: Mapping[str, np.ndarray],
    lr: float,
    X: np.ndarray,
    y: np.ndarray,
    flattened: Mapping[str, tuple[int, int, int]] | None = None,
) -> Callable[[], float]:
    """The Keras training step of ``net`` from convlab's ``weights``: ``GradientTape``, Keras' loss and SGD.

    Parameters
    ----------
    backend : TensorFlowBackend
        Its device is where the network is built and trained.
    net : keras.Model
        The network, unbuilt, on 28x28 one-channel NHWC images. Each layer
        with weights, and each container on its way, is named by its
        position in convlab's model, so a variable's path (``3/0/conv1/kernel``)
        names convlab's parameter (``3.0.conv1.weight``).
    weights : mapping of str to numpy.ndarray
        convlab's parameters by name, in its layouts: OIHW convolutions,
        ``(out, in)`` dense layers.
    lr : float
        The learning rate.
    X, y : numpy.ndarray
        The batch, NCHW images and integer labels, converted once.
    flattened : mapping of str to tuple of int, optional
        The dense layers that read a ``Flatten`` of feature maps, with the
        ``(C, H, W)`` of those maps in convlab.

    Returns
    -------
    callable
        One step on the batch, training mode (batch statistics, dropout):
        ``SparseCategoricalCrossentropy`` (the batch's mean) under a
        ``GradientTape``, then ``keras.optimizers.SGD``; it returns the loss.
    """
    device = backend.device.upper()
    with tf.device(device):
        net.build((None, 28, 28, 1))
        _load(net, weights, flattened or {})
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = keras.optimizers.SGD(learning_rate=lr)
        X, y = tf.constant(np.transpose(X, (0, 2, 3, 1))), backend.labels(y)  # NCHW -> NHWC, once

    def step() -> float:
        with tf.device(device):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, net(X, training=True))
            grads = tape.gradient(loss, net.trainable_variables)
            optimizer.apply_gradients(zip(grads, net.trainable_variables, strict=True))
            return float(loss)

    return step


_CONVLAB_NAME = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
"""convlab's name of a Keras layer's trainable variable (batch norm's scale and shift are its weight and bias)."""


def _load(net: keras.Model, weights: Mapping[str, np.ndarray], flattened: Mapping[str, tuple[int, int, int]]) -> None:
    """Assign convlab's ``weights`` to the built ``net``'s trainable variables, by path, in Keras' layouts.

    Raises
    ------
    ValueError
        If the variables and ``weights`` do not name the same parameters,
        or a shape differs: the network is not convlab's.
    """
    named: dict[str, Any] = {}
    for variable in net.trainable_variables:
        # The path starts with the outer model's own name ("sequential_3/"), which is not convlab's.
        *layer, kind = variable.path.split("/")[1:]
        named[".".join([*layer, _CONVLAB_NAME[kind]])] = variable
    if named.keys() != weights.keys():
        raise ValueError(f"the network's parameters {sorted(named)} are not convlab's {sorted(weights)}")
    for name, variable in named.items():
        value = np.asarray(weights[name])
        if value.ndim == 4:  # OIHW -> HWIO
            value = np.transpose(value, (2, 3, 1, 0))
        elif value.ndim == 2:
            layer = name.rsplit(".", 1)[0]
            if layer in flattened:
                # Keras flattens NHWC maps as (h, w, c): the rows are reordered from convlab's (c, h, w).
                channels, height, width = flattened[layer]
                value = value.reshape(-1, channels, height, width).transpose(0, 2, 3, 1).reshape(len(value), -1)
            value = np.transpose(value)  # (out, in) -> (in, out)
        if tuple(variable.shape) != value.shape:
            raise ValueError(f"{name}: the network's shape {tuple(variable.shape)} is not convlab's {value.shape}")
        variable.assign(value)


def idiomatic_modern_step(
    backend: TensorFlowBackend,
    model: str,
    weights: Mapping[str, np.ndarray],
    lr: float,
    X: np.ndarray,
    y: np.ndarray,
) -> Callable[[], float] | None:
    """The book's TensorFlow network (:mod:`convlab.backends.tensorflow.networks`), Keras' loss and SGD.

    The network trains on NHWC images, converted once, with Keras' own
    dropout; see :func:`_sgd_step`. ``None`` for a model without a Keras copy.
    """
    if model not in NETWORKS:
        return None
    with tf.device(backend.device.upper()):
        net = NETWORKS[model](keras_dropout)
    return _sgd_step(backend, net, weights, lr, X, y, flattened=FLATTENED.get(model))


def book_train_kernel(
    backend: TensorFlowBackend, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
) -> list[float]:
    """The book's TensorFlow tab: Keras ``Conv2D``, ``GradientTape``, then the kernel reassigned.

    It runs on the backend's device, so that it is timed where ``train_kernel`` runs.
    """
    with tf.device(backend.device.upper()):
        conv2d = tf.keras.layers.Conv2D(1, kernel_size, use_bias=False, kernel_initializer="zeros")
        X = tf.reshape(tf.constant(X), (1, *X.shape, 1))
        Y = tf.reshape(tf.constant(Y), (1, *Y.shape, 1))
        conv2d(X)  # builds the kernel
        kernel = conv2d.weights[0]
        losses = []
        for _ in range(num_epochs):
            with tf.GradientTape() as g:
                Y_hat = conv2d(X)
                l = tf.reduce_sum((Y_hat - Y) ** 2)  # noqa: E741 - the book's name
            update = tf.multiply(lr, g.gradient(l, kernel))
            kernel.assign(kernel - update)  # the book: get_weights(), subtract, set_weights()
            losses.append(float(l))
        return losses
