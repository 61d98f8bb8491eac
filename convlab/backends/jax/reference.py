"""The book's JAX tabs and Flax NNX's idiomatic code, for ``convlab bench`` and the shape report.

See :mod:`convlab.backends.reference`; the core never imports this module.
The book's JAX tabs are written for Flax linen, so this module alone imports
``flax.linen``; the adapter's layers are Flax NNX.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import nnx

from convlab.backends.base import Padding, Pair
from convlab.backends.jax.adapter import SEED, JaxBackend
from convlab.backends.jax.networks import FLATTENED_FEATURES, NETWORKS
from convlab.backends.reference import BookTab, FrameworkRun

AUTOGRAD_OUTCOME = ("gradient", "match the exact ones")
"""What :func:`convlab.autograd_exercise` reports: ``.at[i, j].set`` is a differentiable functional update."""

BOOK_TAB_SHAPES: dict[str, Pair] = {}
"""Every 7.3 tab gives convlab's shape: linen's ``nn.Conv`` takes explicit padding pairs (and ``'SAME'``)."""

BOOK_TAB_ZERO_PADDING: dict[str, Padding] = {
    "max-pool 3": (0, 0, 0, 0),
    "max-pool 3, padding 1, stride 2": (1, 0, 1, 0),  # jnp.pad: (1, 0) rows, (1, 0) columns
    "max-pool (2, 3), padding (0, 1), stride (2, 3)": (0, 0, 1, 1),  # (0, 0) rows, (1, 1) columns
}
"""The 7.5 tabs pad zeros with ``jnp.pad`` (none for the first), then ``nn.max_pool`` pools with ``'VALID'``."""


BATCH_NORM_MOMENTUM = 0.01
"""``nnx.BatchNorm``'s ``momentum=0.99`` (linen's too) is the old value's weight: convlab's (PyTorch's) 0.01."""

BATCH_NORM_RUNNING_VAR = "biased"
"""``nnx.BatchNorm`` averages the batch's biased variance (``mean(x**2) - mean(x)**2``) into ``var``."""

BOOK_STEM_POOL_PADDING = "same"
"""The stems' ``nn.max_pool(x, window_shape=(3, 3), strides=(2, 2), padding='same')``, as TensorFlow's ``'same'``."""

_BOOK_STEM_POOL = "nn.max_pool(X, window_shape=(3, 3), strides=(2, 2), padding='same')"
"""The stem pooling of d2l's JAX GoogLeNet, ResNet and DenseNet (``lambda x: ...`` in an ``nn.Sequential``)."""


def book_stem_pool(backend: JaxBackend, X: np.ndarray) -> BookTab:
    """The stem max pooling of d2l's JAX (Flax linen) tabs, on NHWC ``X``."""
    with jax.default_device(backend._place):
        scope = {"nn": nn, "X": jnp.asarray(np.transpose(X, (0, 2, 3, 1)))}
        output = eval(_BOOK_STEM_POOL, scope)  # the quoted text is what runs
    note = (
        "'same' (lax's SAME) pads an odd size (1, 1) but an even one (0, 1), only below and to the right: "
        "there its windows start a row and a column later than padding=1's, so the values differ"
    )
    return BookTab(np.asarray(output).transpose(0, 3, 1, 2), _BOOK_STEM_POOL, note)


def framework_batch_norm(backend: JaxBackend, batches: Sequence[np.ndarray]) -> FrameworkRun:
    """``nnx.BatchNorm(C)`` in training mode (its default, ``use_running_average=False``), on NHWC batches."""
    code = f"nnx.BatchNorm({batches[0].shape[1]}, rngs=nnx.Rngs(0))"
    means, variances = [], []
    with jax.default_device(backend._place):
        layer = eval(code, {"nnx": nnx})  # the quoted text is what runs
        for X in batches:
            layer(jnp.asarray(np.transpose(X, (0, 2, 3, 1))))
            means.append(np.array(layer.mean[...]))
            variances.append(np.array(layer.var[...]))
    note = (
        f"momentum={layer.momentum} is the old value's weight (ra = momentum ra + (1 - momentum) batch), "
        f"convlab's {1 - layer.momentum:.2g}; var averages the batch's biased variance"
    )
    return FrameworkRun({"running_mean": np.stack(means), "running_var": np.stack(variances)}, code, note)


def framework_dropout(backend: JaxBackend, X: np.ndarray, p: float) -> FrameworkRun:
    """``nnx.Dropout(p)`` as made (``deterministic=False``), then after ``layer.eval()``."""
    code = f"nnx.Dropout({p}, rngs=nnx.Rngs({SEED}))"
    with jax.default_device(backend._place):
        layer = eval(code, {"nnx": nnx})  # the quoted text is what runs
        x = jnp.asarray(X)
        training = np.asarray(layer(x))
        layer.eval()
        evaluation = np.asarray(layer(x))
    return FrameworkRun({"training": training, "evaluation": evaluation}, f"{code}; then .eval()")


_BOOK_TABS = {
    "conv 3, padding 1": "nn.Conv(1, kernel_size=(3, 3), padding='SAME')",
    "conv (5, 3), padding (2, 1)": "nn.Conv(1, kernel_size=(5, 3), padding=(2, 1))",
    "conv 3, padding 1, stride 2": "nn.Conv(1, kernel_size=(3, 3), padding=1, strides=2)",
    "conv (3, 5), padding (0, 1), stride (3, 4)": "nn.Conv(1, kernel_size=(3, 5), padding=(0, 1), strides=(3, 4))",
    "max-pool 3": "nn.max_pool(X, window_shape=(3, 3), strides=(3, 3))",
    "max-pool 3, padding 1, stride 2":
        "X_padded = jnp.pad(X, ((0, 0), (1, 0), (1, 0), (0, 0)), mode='constant')\n"
        "nn.max_pool(X_padded, window_shape=(3, 3), padding='VALID', strides=(2, 2))",
    "max-pool (2, 3), padding (0, 1), stride (2, 3)":
        "X_padded = jnp.pad(X, ((0, 0), (0, 0), (1, 1), (0, 0)), mode='constant')\n"
        "nn.max_pool(X_padded, window_shape=(2, 3), padding='VALID', strides=(2, 3))",
}  # fmt: skip
"""Each of the book's examples as d2l's JAX tab writes it, on an NHWC ``X``.

A conv tab's last line is the layer, which :func:`book_tab` initialises and
applies as the book's ``comp_conv2d`` does; a pooling tab's last line is its
result.
"""

_BOOK_TAB_NOTES = {
    "max-pool 3, padding 1, stride 2": (
        "the tab pads zeros, and only above and to the left, then pools without padding: a padded 0 "
        "beats negative values, and an odd-sized input loses its last window (a 5x5 gives 2x2, not 3x3)"
    ),
    "max-pool (2, 3), padding (0, 1), stride (2, 3)": (
        "the tab pads zeros, not -inf, then pools without padding: a padded 0 beats negative values"
    ),
}
"""Why a JAX tab's result differs from convlab's, for the tabs where it can."""


IDIOMATIC_STEP_COMPILED = True
"""The idiomatic training steps here are whole-step ``nnx.jit``: a compiled step is held to them (bench target n)."""


@nnx.jit
def _sum_of_outputs_and_grads(layer: nnx.Module, X: Any) -> tuple[Any, Any]:
    # The value is returned, not dropped: XLA would otherwise skip the forward pass, which the gradient
    # of a sum w.r.t. a linear layer's parameters does not need.
    return nnx.value_and_grad(lambda layer: layer(X).sum())(layer)


@nnx.jit
def _train_step(model: nnx.Module, optimizer: nnx.Optimizer, X: Any, y: Any) -> Any:
    def loss_fn(model: nnx.Module) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(model(X), y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def _nnx_weights(
    weights: Mapping[str, np.ndarray], flattened: Mapping[str, tuple[int, int, int]]
) -> dict[str, np.ndarray]:
    """The core's weights (OIHW, ``(out, in)``, NCHW flatten order) in NNX's layouts, by the same names.

    Parameters
    ----------
    weights : mapping of str to numpy.ndarray
        ``cl.parameters`` of a convlab network, as NumPy arrays.
    flattened : mapping of str to tuple of int
        The dense layers' weights that see a flattened feature map of more
        than one pixel, with that map's ``(C, H, W)``: an NHWC network
        flattens it in (height, width, channel) order, where the core's
        NCHW flatten gives (channel, height, width), so their rows are
        permuted to match and the network computes the same function.

    Returns
    -------
    dict of str to numpy.ndarray
        HWIO conv kernels, ``(in, out)`` dense kernels, 1-D values as they are.
    """
    converted = {}
    for name, value in weights.items():
        value = np.asarray(value, dtype=np.float32)
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif value.ndim == 2:
            value = value.T  # (out, in) -> (in, out)
            if name in flattened:  # rows in (channel, height, width) order -> (height, width, channel)
                channels, height, width = flattened[name]
                value = value.reshape(channels, height, width, -1).transpose(1, 2, 0, 3).reshape(value.shape)
        converted[name] = value
    return converted


def _load_weights(backend: JaxBackend, model: nnx.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Set ``model``'s parameters to ``weights``, already in NNX's layouts, by convlab's dotted names.

    A number picks a layer of an ``nnx.Sequential``, any other part an
    attribute (``"3.0.conv1.weight"`` is ``model.layers[3].layers[0].conv1``'s
    weight); a ``weight`` is a conv or dense layer's ``kernel`` and a batch
    norm's ``scale``.
    """
    for name, value in weights.items():
        *path, kind = name.split(".")
        layer = model
        for part in path:
            layer = layer.layers[int(part)] if part.isdigit() else getattr(layer, part)
        if kind == "weight":
            kind = "scale" if isinstance(layer, nnx.BatchNorm) else "kernel"
        variable = getattr(layer, kind)
        if variable.shape != value.shape:  # a wrong architecture would otherwise surface as a later shape error
            raise ValueError(f"{name}: NNX's {kind} has shape {variable.shape}, convlab's weight {value.shape}")
        variable[...] = backend.tensor(value)


def _sgd_step(
    backend: JaxBackend,
    model: nnx.Module,
    weights: Mapping[str, np.ndarray],
    lr: float,
    X: np.ndarray,
    y: np.ndarray,
) -> Callable[[], float]:
    """An NNX user's training step of ``model`` from ``weights`` (NNX's layouts): ``nnx.Optimizer``, ``nnx.jit``.

    ``X`` (NCHW) is made NHWC, NNX's layout, once; a call of the closure takes
    one ``optax.sgd`` step on the mean softmax cross-entropy and returns the
    loss.
    """
    _load_weights(backend, model, weights)
    # wrt=nnx.Param: batch norm's running statistics (nnx.BatchStat) are state the forward pass moves, not trained
    optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
    X = jax.device_put(np.ascontiguousarray(np.transpose(X, (0, 2, 3, 1)), dtype=np.float32), backend._place)
    y = backend.labels(y)

    def step() -> float:
        return float(_train_step(model, optimizer, X, y))

    return step


def book_tab(backend: JaxBackend, example: str, X: np.ndarray) -> BookTab:
    """d2l's JAX tabs of 7.3 (linen ``nn.Conv``, one output channel) and 7.5 (``jnp.pad``, ``nn.max_pool``)."""
    code = _BOOK_TABS[example]
    *statements, last = code.splitlines()
    with jax.default_device(backend._place):
        # The tabs' images are NHWC: the book reshapes its X to (1, 8, 8, 1) and (1, 4, 4, 1).
        scope = {"nn": nn, "jnp": jnp, "X": jnp.asarray(np.transpose(X, (0, 2, 3, 1)))}
        for statement in statements:
            exec(statement, scope)  # the quoted text is what runs: the report cannot show other code than it ran
        result = eval(last, scope)
        if isinstance(result, nn.Module):  # the tab's comp_conv2d: init with a PRNGKey, then apply
            params = result.init(jax.random.PRNGKey(SEED), scope["X"])
            result = result.apply(params, scope["X"])
    return BookTab(np.asarray(result).transpose(0, 3, 1, 2), code, _BOOK_TAB_NOTES.get(example, ""))


def framework_conv2d_step(
    backend: JaxBackend, in_channels: int, out_channels: int, kernel_size: int, padding: int, x: np.ndarray
) -> Callable[[], Any]:
    """``nnx.Conv`` (bias, Flax's defaults) on NHWC ``x``; a call returns ``sum(layer(x))`` and its gradients."""
    with jax.default_device(backend._place):
        kernel = (kernel_size, kernel_size)
        layer = nnx.Conv(in_channels, out_channels, kernel, padding=padding, rngs=nnx.Rngs(SEED))
    X = jax.device_put(np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)), dtype=np.float32), backend._place)

    def step() -> Any:
        return jax.block_until_ready(_sum_of_outputs_and_grads(layer, X))

    return step


def idiomatic_lenet_step(
    backend: JaxBackend, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float]:
    """d2l's LeNet as an NNX user writes it: ``nnx.Sequential``, ``nnx.Optimizer`` with ``optax.sgd``, ``nnx.jit``.

    Its layers are NHWC, so the first dense layer sees the 16 x 5 x 5
    features in (height, width, channel) order, where the core's NCHW
    flatten gives (channel, height, width): its kernel's rows are
    permuted to match, and the network computes the same function.
    """
    with jax.default_device(backend._place):
        rngs = nnx.Rngs(SEED)
        model = nnx.Sequential(
            nnx.Conv(1, 6, kernel_size=(5, 5), padding=2, rngs=rngs), nnx.sigmoid,
            lambda x: nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2)),
            nnx.Conv(6, 16, kernel_size=(5, 5), padding="VALID", rngs=rngs), nnx.sigmoid,
            lambda x: nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2)),
            lambda x: x.reshape(x.shape[0], -1),
            nnx.Linear(16 * 5 * 5, 120, rngs=rngs), nnx.sigmoid,
            nnx.Linear(120, 84, rngs=rngs), nnx.sigmoid,
            nnx.Linear(84, 10, rngs=rngs),
        )  # fmt: skip
    return _sgd_step(backend, model, _nnx_weights(weights, {"7.weight": (16, 5, 5)}), lr, X, y)


def idiomatic_modern_step(
    backend: JaxBackend, model: str, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
) -> Callable[[], float] | None:
    """d2l §8's network as an NNX user writes it (:mod:`convlab.backends.jax.networks`), trained as the LeNet.

    The network is NHWC, in training mode as NNX makes it (batch norm on
    the batch's statistics, ``nnx.Dropout`` drawing from the network's
    ``nnx.Rngs``); ``None`` for a ``model`` it has no copy of.
    """
    if model not in NETWORKS:
        return None
    with jax.default_device(backend._place):
        network = NETWORKS[model](nnx.Rngs(SEED))
    network.train()  # NNX makes layers in training mode already: this states it, as PyTorch's .train()
    converted = _nnx_weights(weights, FLATTENED_FEATURES.get(model, {}))
    return _sgd_step(backend, network, converted, lr, X, y)


def book_train_kernel(
    backend: JaxBackend, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
) -> list[float]:
    # The book's JAX tab: Flax nn.Conv, jax.value_and_grad (not jitted), a tree_map update.
    with jax.default_device(backend._place):
        conv2d = nn.Conv(1, kernel_size=kernel_size, use_bias=False, padding="VALID", kernel_init=nn.initializers.zeros)
        X = jax.numpy.asarray(X).reshape((1, *X.shape, 1))
        Y = jax.numpy.asarray(Y).reshape((1, *Y.shape, 1))
        params = conv2d.init(jax.random.PRNGKey(0), X)

        def loss(params, X, Y):
            Y_hat = conv2d.apply(params, X)
            return ((Y_hat - Y) ** 2).sum()

        losses = []
        for _ in range(num_epochs):
            l, grads = jax.value_and_grad(loss)(params, X, Y)  # noqa: E741 - the book's name
            params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
            losses.append(float(l))
        return losses
