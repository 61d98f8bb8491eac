"""The JAX backend: ``jax.numpy`` tensors, Flax NNX layers, ``jax.jit``.

JAX arrays are immutable, so the book's loop builds its output with
``Y = Y.at[i, j].set(...)``, which returns a new array each time; it runs
eagerly, one dispatch per pixel, as in the book (slow, but differentiable).
``corr2d_vectorized`` is the core's shift-and-add under ``jax.jit``: XLA fuses
it into one pass over the output, and it stays differentiable.
``corr2d_native`` is ``jax.lax.conv_general_dilated``.

The layers are Flax NNX modules (``flax.nnx`` is Flax's current API; its
modules hold their state and are called directly, unlike linen's
``apply(params, x)``): the hand-written ``Conv2D`` keeps ``weight`` and
``bias`` as ``nnx.Param``, so ``nnx.Optimizer`` and optax see them; the
built-in layer is ``nnx.Conv`` (NHWC, kernel ``(k_h, k_w, 1, 1)``).
``init="framework"`` uses the book's NNX initialisers, ``uniform()`` on
``[0, 0.01)`` for ``Conv2D`` and ``nnx.Conv``'s default ``lecun_normal``,
drawn from ``nnx.Rngs(0)``: JAX's randomness is explicit, so the layers use a
fixed seed (0), as the book's ``d2l.get_key()`` does, and every such layer
starts from the same values.

Gradients come from ``nnx.value_and_grad`` under ``nnx.jit``, compiled once
per layer structure, input shape and loss; ``sgd_update`` writes new values
into the layer's ``nnx.Param`` (``param[...] -= lr * grad``, as the book).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from convlab.backends.base import Backend, Forward, Loss

SEED = 0
"""Seed of the ``nnx.Rngs`` behind ``init="framework"``."""


def _value_and_grad(layer: Any, X: Any, Y: Any, loss: Loss) -> Any:
    # `loss` is static: the core's losses compare by value, so one compilation serves every call.
    return nnx.value_and_grad(lambda layer: loss(layer(X), Y))(layer)


def _native(X: Any, K: Any) -> Any:
    # HIGHEST keeps float32 accuracy where XLA would otherwise use TF32/bf16 (GPU, TPU).
    Y = jax.lax.conv_general_dilated(X[None, None], K[None, None], (1, 1), "VALID", precision="highest")
    return Y[0, 0]


class Conv2D(nnx.Module):
    """The chapter's hand-written layer; its forward pass is the core's."""

    def __init__(self, weight: Any, bias: Any, forward: Forward) -> None:
        self.weight = nnx.Param(weight)
        self.bias = None if bias is None else nnx.Param(bias)
        self.forward = forward

    def __call__(self, X: Any) -> Any:
        return self.forward(X, self.weight[...], None if self.bias is None else self.bias[...])


class BuiltinConv(nnx.Conv):
    """Flax's ``nnx.Conv`` on 2-D images: adds and removes the batch and channel axes."""

    def __call__(self, X: Any) -> Any:
        return super().__call__(X[None, :, :, None])[0, :, :, 0]


def _named(layer: Any, tree: Any) -> dict[str, Any]:
    """The weight and bias in ``tree`` (the layer itself or its gradient ``State``), weight shaped 2-D."""
    if isinstance(layer, nnx.Conv):
        return {"weight": tree.kernel[...].reshape(layer.kernel_size)}
    named = {"weight": tree.weight[...]}
    if layer.bias is not None:
        named["bias"] = tree.bias[...]
    return named


class JaxBackend(Backend):
    def __init__(self, spec: Any, device: str | None = None) -> None:
        super().__init__(spec, device)
        self._place = jax.devices(self.device.partition(":")[0])[int(self.device.partition(":")[2] or 0)]
        self._vectorized = jax.jit(super().corr2d_vectorized)
        self._native = jax.jit(_native)
        self._value_and_grad = nnx.jit(_value_and_grad, static_argnames="loss")

    def version(self) -> str:
        return jax.__version__

    def resolve_device(self, device: str | None) -> str:
        kind, _, index = (device or jax.default_backend()).partition(":")
        try:
            count = len(jax.devices(kind))
        except RuntimeError:
            raise ValueError(f"device: JAX has no {kind!r} devices here; it has {jax.default_backend()!r}") from None
        if index and not (index.isdigit() and int(index) < count):
            raise ValueError(f"device: expected {kind}:0 to {kind}:{count - 1}, got {device!r}")
        return f"{kind}:{index}" if index else kind

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (jax.Array,)  # also matches tracers, so the core's checks work under jit and grad

    def tensor(self, data: Any) -> Any:
        return jax.device_put(jnp.asarray(data, dtype=jnp.float32), self._place)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def corr2d_loop(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = jnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y = Y.at[i, j].set((X[i : i + h, j : j + w] * K).sum())
        return Y

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        return self._vectorized(X, K)

    def corr2d_native(self, X: Any, K: Any) -> Any:
        return self._native(X, K)

    def auto_method(self, x_shape: tuple[int, int], k_shape: tuple[int, int]) -> str:
        # On CPU XLA's one-channel convolution is slow: jitted shift-and-add vs native, in microseconds,
        # n x n input: n=8 1x2 13 vs 14, 5x5 20 vs 30; n=64 3x3 40 vs 941; n=256 1x2 142 vs 101 (the
        # only ties are 1x2 below n=512, within noise), 3x3 151 vs 10641; n=1024 1x2 216 vs 1858,
        # 5x5 2646 vs 260941; n=2048 3x3 2900 vs 580062.
        return "vectorized"

    def conv2d_layer(self, kernel_size, weight, bias, forward: Forward) -> Any:
        if weight is None:  # the book's NNX tab: nnx.initializers.uniform(), on [0, 0.01)
            weight = nnx.initializers.uniform()(nnx.Rngs(SEED).params(), kernel_size)
        return Conv2D(self.tensor(weight), None if bias is None else self.tensor(bias), forward)

    def builtin_layer(self, kernel_size, weight) -> Any:
        layer = BuiltinConv(1, 1, kernel_size, use_bias=False, padding="VALID", rngs=nnx.Rngs(SEED))
        if weight is not None:
            layer.kernel[...] = self.tensor(weight).reshape(layer.kernel.shape)
        return layer

    def parameters(self, layer: Any) -> dict[str, np.ndarray]:
        return {name: np.array(value) for name, value in _named(layer, layer).items()}

    def value_and_grad(self, layer: Any, X: Any, Y: Any, loss: Loss):
        value, grads = self._value_and_grad(layer, X, Y, loss)
        return float(value), _named(layer, grads)

    def sgd_update(self, layer: Any, grads: dict[str, Any], lr: float) -> None:
        for name, grad in grads.items():
            param = layer.kernel if isinstance(layer, nnx.Conv) else getattr(layer, name)
            param[...] -= lr * jnp.reshape(grad, param.shape)
