"""The TensorFlow backend (TensorFlow 2 with Keras 3).

Notes
-----
- Layers are Keras 3 layers (``tf.keras`` re-exports Keras 3 since TF 2.16).
  Their weights are ``keras.Variable`` objects wrapping a ``tf.Variable``
  (``.value``) without being one: ``tf.GradientTape.watch`` refuses them,
  which is why the book's training code fails under Keras 3. Here the tape
  watches the variables its code reads by itself and is asked for gradients
  with respect to the Keras variables, which works. ``keras.Variable`` is
  among :attr:`tensor_types`, and :meth:`TensorFlowBackend.tensor` reads it
  into a plain tensor (a read the tape records, so gradients flow).
- ``corr2d_loop`` is the book's tab: a ``tf.Variable`` filled element by
  element with ``assign``. ``assign`` is not differentiable, so the tape
  returns ``None`` for the kernel of a layer built on it (the chapter's
  exercise 2), while the bias, added outside the loop, still gets a gradient.
- Eager TensorFlow pays a dispatch cost per op and shift-and-add is
  ``4 k_h k_w`` ops, so ``corr2d_vectorized`` is a ``tf.function`` traced
  once per kernel shape with a dynamic input shape, and compiled by XLA
  (``jit_compile=True``) once per image shape: XLA fuses it into one pass
  over the output, with no output-sized temporaries, and it stays
  differentiable. ``corr2d_native`` is ``tf.nn.conv2d`` (NHWC input, HWIO
  kernel) in one ``tf.function`` with dynamic shapes.
- ``value_and_grad`` runs eagerly: tracing a ``tf.function`` for each new
  layer costs more than the short trainings the chapter runs. Per step the
  eager op count is what costs, so ``sgd_update`` is TF's fused SGD kernel
  (``ResourceApplyGradientDescent``) on the ``tf.Variable`` under each Keras
  weight, and the built-in layer's axes come and go by ``expand_dims`` and
  ``squeeze``.
- The built-in layer is ``keras.layers.Conv2D(1, kernel_size, use_bias=False)``
  in a thin wrapper that adds and removes the batch and channel axes.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow's C++ runtime loads

import keras
import numpy as np
import tensorflow as tf

from convlab.backends.base import Backend, Forward, Loss


class BuiltinConv2D:
    """Keras' own ``Conv2D`` (one channel in and out, no bias) applied to 2-D inputs."""

    def __init__(self, conv: Any) -> None:
        self.conv = conv

    def __call__(self, X: Any) -> Any:
        # NHWC with N = C = 1. expand_dims/squeeze, as indexing and reshape (whose shape
        # argument becomes a tensor) cost several times more per call in eager mode.
        return tf.squeeze(self.conv(tf.expand_dims(tf.expand_dims(X, 0), -1)), (0, 3))

    @property
    def trainable_weights(self) -> list[Any]:
        return self.conv.trainable_weights

    def __repr__(self) -> str:
        return f"BuiltinConv2D({self.conv.name}, kernel_size={self.conv.kernel_size})"


class Conv2D(keras.layers.Layer):
    """The chapter's hand-written layer: ``forward(X, weight, bias)`` on Keras weights."""

    def __init__(self, kernel_size, weight, bias, forward: Forward) -> None:
        super().__init__()
        self._forward = forward
        # The book's tab initialises with tf.random_normal_initializer (stddev 0.05).
        init = tf.random_normal_initializer() if weight is None else keras.initializers.Constant(weight)
        self.weight = self.add_weight(name="weight", shape=kernel_size, initializer=init)
        self.bias = None
        if bias is not None:
            self.bias = self.add_weight(name="bias", shape=(1,), initializer=keras.initializers.Constant(bias))
        self.built = True  # weights made here, not in build()

    def call(self, X):
        return self._forward(X, self.weight, self.bias)


def _shift_and_add(X: Any, K: Any) -> Any:
    # The base class's shift-and-add, with the output size read at run time
    # (tf.shape), so that one function serves every image size.
    h, w = K.shape
    out_h, out_w = tf.shape(X)[0] - h + 1, tf.shape(X)[1] - w + 1
    Y = X[:out_h, :out_w] * K[0, 0]
    for a in range(h):
        for b in range(w):
            if a or b:
                Y = Y + X[a : a + out_h, b : b + out_w] * K[a, b]
    return Y


@functools.lru_cache(maxsize=128)
def _shift_and_add_graph(k_shape: tuple[int, int]) -> Any:
    # XLA fuses the k_h * k_w scaled slices into one pass over the output (no
    # temporaries), as jax.jit does; it compiles once per image shape (~50 ms).
    signature = [tf.TensorSpec([None, None], tf.float32), tf.TensorSpec(k_shape, tf.float32)]
    return tf.function(_shift_and_add, input_signature=signature, jit_compile=True)


def _not_a_retracing_warning(record: logging.LogRecord) -> bool:
    # One tf.function per kernel shape is by design, but TF counts their traces
    # together and warns of "retracing" from the sixth kernel shape on.
    return "triggered tf.function retracing" not in record.getMessage()


def _conv(X: Any, K: Any) -> Any:
    return tf.nn.conv2d(X[None, :, :, None], K[:, :, None, None], strides=1, padding="VALID")[0, :, :, 0]


if keras.backend.backend() != "tensorflow":
    raise ImportError(f"Keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow")


class TensorFlowBackend(Backend):
    def __init__(self, spec: Any, device: str | None = None) -> None:
        super().__init__(spec, device)
        tf.get_logger().addFilter(_not_a_retracing_warning)
        self._native = tf.function(_conv, input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2)
        # EagerTensor subclasses tf.Tensor; listed for readers who look for type(x).
        self._types = (tf.Tensor, type(tf.constant(0.0)), tf.Variable, keras.Variable)

    def version(self) -> str:
        return tf.__version__

    def resolve_device(self, device: str | None) -> str:
        names = {d.name.partition("device:")[2].lower(): d.name for d in tf.config.list_logical_devices()}
        if device is None:
            return "gpu" if "gpu:0" in names else "cpu"
        key = device.lower() if ":" in device else f"{device.lower()}:0"
        if key not in names:
            raise ValueError(f"device: expected one of {sorted(names)}, got {device!r}")
        return key.removesuffix(":0")

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return self._types

    def tensor(self, data: Any) -> Any:
        if isinstance(data, tf.Tensor) and data.dtype == tf.float32:
            return data
        return tf.cast(tf.convert_to_tensor(data), tf.float32)  # reads variables; a no-op cast on float32

    def is_real(self, x: Any) -> bool:
        dtype = tf.as_dtype(x.dtype)
        return dtype.is_floating or dtype.is_integer

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.numpy())

    def sum(self, x: Any) -> Any:
        return tf.reduce_sum(x)

    def corr2d_loop(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = tf.Variable(tf.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1)))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j].assign(tf.reduce_sum(X[i : i + h, j : j + w] * K))
        return tf.convert_to_tensor(Y)

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        return _shift_and_add_graph(tuple(K.shape))(X, K)

    def corr2d_native(self, X: Any, K: Any) -> Any:
        return self._native(X, K)

    def auto_method(self, x_shape: tuple[int, int], k_shape: tuple[int, int]) -> str:
        # Compiled by XLA, the shift-and-add beats oneDNN's conv at every size measured
        # (3x3, ms, shift-and-add vs native: n=32 0.24/0.45, 256 0.37/0.74,
        # 1024 0.88/3.4, 2048 3.5/17.8), once compiled for the image's shape.
        return "vectorized"

    def conv2d_layer(self, kernel_size, weight, bias, forward: Forward) -> Any:
        return Conv2D(kernel_size, weight, bias, forward)

    def builtin_layer(self, kernel_size, weight) -> Any:
        conv = keras.layers.Conv2D(1, kernel_size, use_bias=False)  # default init: glorot_uniform
        conv.build((None, None, None, 1))
        if weight is not None:
            conv.kernel.assign(np.asarray(weight, dtype=np.float32)[:, :, None, None])  # HWIO
        return BuiltinConv2D(conv)

    def _variables(self, layer: Any) -> dict[str, Any]:
        if isinstance(layer, BuiltinConv2D):
            return {"weight": layer.conv.kernel}
        if layer.bias is None:
            return {"weight": layer.weight}
        return {"weight": layer.weight, "bias": layer.bias}

    def parameters(self, layer: Any) -> dict[str, np.ndarray]:
        params = {name: np.array(var.numpy()) for name, var in self._variables(layer).items()}
        params["weight"] = params["weight"].reshape(params["weight"].shape[:2])  # HWIO -> HW
        return params

    def value_and_grad(self, layer: Any, X: Any, Y: Any, loss: Loss):
        variables = self._variables(layer)
        with tf.GradientTape() as tape:
            value = loss(layer(X), Y)
        grads = tape.gradient(value, variables)
        if isinstance(layer, BuiltinConv2D) and grads["weight"] is not None:
            grads["weight"] = tf.squeeze(grads["weight"], (2, 3))  # HWIO -> HW
        return float(value), grads

    def sgd_update(self, layer: Any, grads: dict[str, Any], lr: float) -> None:
        variables = self._variables(layer)
        for name, grad in grads.items():
            if isinstance(layer, BuiltinConv2D):
                grad = tf.expand_dims(tf.expand_dims(grad, -1), -1)  # HW -> HWIO
            # TF's own SGD kernel, var -= alpha * delta in one op, on the tf.Variable under the Keras one
            # (Keras' assign_sub(lr * grad) is a multiply, a read, a subtract, a cast and an assign).
            tf.raw_ops.ResourceApplyGradientDescent(var=variables[name].value.handle, alpha=lr, delta=grad)
