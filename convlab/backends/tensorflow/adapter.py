"""The TensorFlow backend: TensorFlow 2, eager, with Keras 3 layers; NCHW convolutions and pooling on oneDNN's kernels.

This module is the protocol's implementation, :class:`TensorFlowBackend`.
TensorFlow's import is set up in :mod:`convlab.backends.tensorflow.framework`,
the Keras layers it makes are in :mod:`convlab.backends.tensorflow.layers`,
and the convolution and pooling kernels, oneDNN's NCHW ones and the
XLA-compiled ones that stand in for them, in
:mod:`convlab.backends.tensorflow.kernels`. Each choice is explained beside
the code it concerns; the book's TensorFlow tabs and Keras' idiomatic code
are in :mod:`convlab.backends.tensorflow.reference`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerDef, Loss, Padding, Pair, Step
from convlab.backends.tensorflow.framework import keras, tf
from convlab.backends.tensorflow.kernels import (
    _compiled,
    _conv2d_native,
    _conv2d_nchw,
    _nchw_kernels,
    _not_a_retracing_warning,
    _pool2d_native,
    _pool2d_nchw,
    _shift_and_add_graph,
    _spatial,
)
from convlab.backends.tensorflow.layers import BuiltinConv2d, Module


def _name_variables(module: Module, registry: str, prefix: str, named: dict[str, Any], seen: set[int]) -> None:
    """Add ``module``'s variables of ``registry`` (``"own_weights"``, ``"own_state"``) to ``named``, dotted.

    A sublayer's are prefixed with its name (``"0."``, ``"conv1."``). A
    variable met again (a layer used twice) keeps its first name, as in
    ``trainable_weights``, which lists each variable once, and in PyTorch.
    """
    for name, variable in getattr(module, registry).items():
        if id(variable) not in seen:
            seen.add(id(variable))
            named[prefix + name] = variable
    for child_name, child in module.named_layers.items():
        _name_variables(child, registry, f"{prefix}{child_name}.", named, seen)


_PLACED = (
    "tensor", "labels", "conv2d", "pool2d", "reshape", "flip", "matmul", "linear", "sigmoid", "relu", "log_softmax",
    "sum", "mean", "concat", "sqrt", "dropout_mask", "argmax", "corr2d_loop", "corr2d_vectorized", "module",
    "builtin_conv2d", "value_and_grad", "grad",
)  # fmt: skip
"""The methods that make tensors or run ops: placed with ``tf.device`` where TensorFlow has a choice.

Unplaced, an eager constant stays on the host and an op runs on the first
GPU, wherever its inputs live. With one device there is nothing to place, and
``tf.device`` would cost as much as a small op.
"""


def _placed(method: Callable[..., Any], device: str) -> Callable[..., Any]:
    """``method`` with the tensors it makes and the ops it runs on ``device``."""

    @functools.wraps(method)
    def placed(*args: Any, **kwargs: Any) -> Any:
        with tf.device(device):
            return method(*args, **kwargs)

    return placed


class TensorFlowBackend(Backend):
    """TensorFlow 2, eager, with Keras 3 layers."""

    dtypes = ("float32", "float64")

    def __init__(self, spec: Any, device: str | None = None, dtype: str = "float32") -> None:
        super().__init__(spec, device, dtype)
        self._dtype = tf.as_dtype(self.dtype)
        tf.get_logger().addFilter(_not_a_retracing_warning)
        self._on_cpu = self.device.partition(":")[0] == "cpu"
        if len(tf.config.list_logical_devices()) > 1:  # the bound methods, placed, shadow the class's (_PLACED)
            for name in _PLACED:
                setattr(self, name, _placed(getattr(self, name), self.device.upper()))
        if not self._on_cpu:
            # On a GPU, TensorFlow computes float32 matrix products and convolutions in TF32 by default (10-bit
            # mantissas). It has no per-op precision, so float32 accuracy is restored for the whole process.
            tf.config.experimental.enable_tensor_float_32_execution(False)
        # EagerTensor subclasses tf.Tensor; listed for readers who look for type(x). Layer weights are
        # keras.Variable objects, which wrap a tf.Variable (.value) without being one.
        self._types = (tf.Tensor, type(tf.constant(0.0)), tf.Variable, keras.Variable)

    # -- core --------------------------------------------------------------
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
        if isinstance(data, tf.Tensor) and data.dtype == self._dtype:
            return data
        # Reads a variable (a keras.Variable too) into a plain tensor, a read the tape records, so gradients
        # flow; the cast is a no-op on this backend's dtype.
        return tf.cast(tf.convert_to_tensor(data), self._dtype)

    def labels(self, data: np.ndarray) -> Any:
        return tf.constant(np.asarray(data, dtype=np.int64))

    def one_hot(self, labels: Any, classes: int) -> Any:
        return tf.one_hot(labels, classes, dtype=self._dtype)

    def is_real(self, x: Any) -> bool:
        dtype = tf.as_dtype(x.dtype)
        return dtype.is_floating or dtype.is_integer

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.numpy())

    # -- nn ----------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, stride: Pair, padding: Padding, groups: int, bias: Any = None) -> Any:
        if self._nchw_kernels("conv2d" if groups == 1 else "grouped_conv2d", x):
            return _conv2d_native(stride, padding, x, w, bias)
        tensors = (x, w) if bias is None else (x, w, bias)
        if groups == 1:
            return self._run_compiled(_conv2d_nchw, (stride, padding), *tensors)
        # TensorFlow's own CPU kernels have no gradient for grouped convolutions: one convolution per group.
        x, w = tf.transpose(x, (0, 2, 3, 1)), tf.transpose(w, (2, 3, 1, 0))  # NCHW -> NHWC, OIHW -> HWIO
        pads = _spatial(padding) if any(padding) else "VALID"
        pairs = zip(tf.split(x, groups, axis=3), tf.split(w, groups, axis=3), strict=True)
        y = tf.concat([tf.nn.conv2d(x_g, w_g, stride, pads) for x_g, w_g in pairs], axis=3)
        if bias is not None:
            y = tf.nn.bias_add(y, bias)
        return tf.transpose(y, (0, 3, 1, 2))

    def pool2d(self, x: Any, window: Pair, stride: Pair, padding: Padding, mode: str) -> Any:
        if self._nchw_kernels(f"{mode}_pool2d", x):
            return _pool2d_native(window, stride, padding, mode, x)
        return self._run_compiled(_pool2d_nchw, (window, stride, padding, mode), x)

    def _nchw_kernels(self, op: str, x: Any) -> bool:
        """Whether ``op`` runs on oneDNN's NCHW kernels here, eagerly: faster than TensorFlow's NHWC ones or XLA's.

        Eagerly on the CPU, where :func:`_nchw_kernels` finds them for ``x``'s
        dtype. Not in the compiled step: XLA's own kernels compute it whole
        (:meth:`compiled_train_step`) and take any layout. Forward and
        backward (input included), medians of 21 interleaved samples on 2
        loaded cores, against the XLA-compiled transposing op this replaces
        and Keras' NHWC layer: LeNet's 1->6 5x5 convolution 11.3 ms (was
        32.4; Keras 12.9), its 6->16 9.8 ms (19.8; 10.3), a 64->64 3x3 at
        56x56, batch 8, 62 ms (87; 58); 2x2 average pooling of 128x6x28x28
        2.0 ms (2.6; 2.5); 3x3 max pooling, stride 2, of 128x32x26x26 8.8 ms
        (40; 26).
        """
        return self._on_cpu and self.traced() is not self and _nchw_kernels(op, x.dtype)

    def _run_compiled(self, op: Callable[..., Any], config: tuple[Any, ...], *tensors: Any) -> Any:
        """``op(config, *tensors)``, compiled by XLA on the CPU from the first call (the same bits on every call).

        XLA's kernels and the eager ones round differently, so a call that ran
        eagerly once and compiled after would change its result between two
        identical calls. One compilation per op, shapes and settings, forward
        and backward.
        """
        if not self._on_cpu or self.traced() is self:
            # Inline inside the whole step's XLA function: there, with the op's own function nested, XLA
            # recompiled the step after every update of a convolution's weight (seconds per step, measured).
            return op(config, *tensors)
        signature = tuple(tf.TensorSpec(t.shape, t.dtype) for t in tensors)
        return _compiled(op, config, signature)(*tensors)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return tf.reshape(x, shape)

    def flip(self, x: Any, axes: tuple[int, ...]) -> Any:
        return tf.reverse(x, axes)

    def matmul(self, a: Any, b: Any) -> Any:
        return tf.linalg.matmul(a, b)

    def linear(self, x: Any, w: Any, bias: Any = None) -> Any:
        y = tf.linalg.matmul(x, w, transpose_b=True)  # the GEMM reads w transposed: no transpose op
        return y if bias is None else tf.nn.bias_add(y, bias)

    def sigmoid(self, x: Any) -> Any:
        return tf.sigmoid(x)

    def relu(self, x: Any) -> Any:
        return tf.nn.relu(x)

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        return tf.nn.log_softmax(x, axis)

    def sum(self, x: Any, axis: int | None = None) -> Any:
        return tf.reduce_sum(x, axis)

    def mean(self, x: Any, axis: int | tuple[int, ...] | None = None) -> Any:
        return tf.reduce_mean(x, axis)

    def concat(self, tensors: Any, axis: int) -> Any:
        return tf.concat(list(tensors), axis)

    def sqrt(self, x: Any) -> Any:
        return tf.sqrt(x)

    def argmax(self, x: Any, axis: int = -1) -> Any:
        return tf.argmax(x, axis)

    def batch_norm(self, X: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any]:
        # TensorFlow's fused kernel: forward and backward of a ResNet-18 batch norm (128x32x14x14) in 6.7 ms,
        # where the composed default's mean, centring, variance and normalisation took 15.5 (medians of 15).
        # It computes float32 (and half precisions) alone, so float64 keeps the default. Inside the compiled step
        # XLA fuses the default itself, as fast (BN-LeNet's step 12.7 against 12.9 ms), and the compiled step
        # keeps the numbers it had.
        if X.dtype != tf.float32 or self.traced() is self:
            return super().batch_norm(X, weight, bias, eps)
        shape = tuple(X.shape)
        nchw = X if len(shape) == 4 else tf.reshape(X, (shape[0], shape[1], 1, 1))
        Y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
            nchw, weight, bias, epsilon=eps, data_format="NCHW", is_training=True
        )
        # The kernel returns the variance it feeds running statistics, unbiased; the protocol's is the batch's
        # (the core has refused a channel of one value in training, where the unbiased one is undefined).
        count = int(np.prod(shape)) // shape[1]
        variance = unbiased * ((count - 1) / count)
        return (Y if len(shape) == 4 else tf.reshape(Y, shape)), mean, variance

    # -- chapter -----------------------------------------------------------
    def corr2d_loop(self, X: Any, K: Any) -> Any:
        """The book's tab: a ``tf.Variable`` filled element by element with ``assign``.

        ``assign`` is not differentiable, so the tape returns ``None`` for the
        kernel of a layer built on it (the chapter's exercise 2), while the
        bias, added outside the loop, still gets a gradient.
        """
        h, w = K.shape
        Y = tf.Variable(tf.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1)))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j].assign(tf.reduce_sum(X[i : i + h, j : j + w] * K))
        return tf.convert_to_tensor(Y)

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        return _shift_and_add_graph(tuple(X.shape), tuple(K.shape), K.dtype)(X, K)

    def auto_method(self, x_shape: Pair, k_shape: Pair) -> str:
        # Compiled by XLA, the shift-and-add beat oneDNN's conv at every size measured (`convlab bench`).
        return "vectorized"

    # -- modules and training ----------------------------------------------
    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Module:
        return Module(definition, self, initial, children, state)

    def submodules(self, module: Module) -> tuple[Any, ...]:
        return module.layers

    def state(self, module: Module) -> dict[str, Any]:
        named: dict[str, Any] = {}
        _name_variables(module, "own_state", "", named, set())
        return named

    def dropout_mask(self, shape: tuple[int, ...], p: float, counter: Any) -> Any:
        # TensorFlow's generator (tf.random.set_seed governs it), as tf.nn.dropout draws: keep where U >= p.
        keep = tf.cast(tf.random.uniform(shape, dtype=self._dtype) >= p, self._dtype)
        return keep / (1.0 - p)

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        # A new Keras layer of that shape, built, and its variables read: its own initialisers
        # (glorot_uniform kernel, zeros bias) draw the values from Keras' global seed generator
        # (keras.utils.set_random_seed repeats them), then HWIO or (in, out) become the core's layout.
        out_size, in_size, *kernel_size = shapes["weight"]
        use_bias = "bias" in shapes
        if kind == "conv2d":
            layer = keras.layers.Conv2D(out_size, tuple(kernel_size), use_bias=use_bias)
            layer.build((None, None, None, in_size))
            to_core = (3, 2, 0, 1)  # HWIO -> OIHW
        else:
            layer = keras.layers.Dense(out_size, use_bias=use_bias)
            layer.build((None, in_size))
            to_core = (1, 0)  # (in, out) -> (out, in)
        initial = {"weight": np.ascontiguousarray(np.transpose(layer.kernel.numpy(), to_core))}
        if use_bias:
            initial["bias"] = layer.bias.numpy()
        return initial

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> BuiltinConv2d:
        layer = BuiltinConv2d(kernel_size, None if self.dtype == np.float32 else self.dtype.name)
        if weight is not None:
            layer.kernel.assign(np.asarray(weight, dtype=self.dtype).reshape(layer.kernel.shape))  # HW -> HWIO
        return layer

    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        # The book's tab initialises the hand-written layer with tf.random_normal_initializer (stddev 0.05).
        return tf.random_normal_initializer()(kernel_size).numpy()

    def parameters(self, module: Any) -> dict[str, Any]:
        # Keras names variables by path (module_3/weight): the dotted names are built here (_name_variables).
        if isinstance(module, BuiltinConv2d):
            return {"weight": module.kernel}
        named: dict[str, Any] = {}
        _name_variables(module, "own_weights", "", named, set())
        return named

    def value_and_grad(self, module: Any, X: Any, Y: Any, loss: Loss) -> tuple[float, dict[str, Any]]:
        """Eagerly: tracing a ``tf.function`` for each new layer costs more than the chapter's short trainings.

        ``tf.GradientTape.watch`` refuses Keras 3 variables (which is why the
        book's training code fails under Keras 3), so the tape watches the
        variables its code reads by itself and is asked for gradients with
        respect to the Keras variables, which works.
        """
        with tf.GradientTape() as tape:
            value = loss(module(X), Y)
        return float(value), tape.gradient(value, self.parameters(module))

    def sgd_update(self, module: Any, grads: Mapping[str, Any], lr: float) -> None:
        variables = self.parameters(module)
        for name, grad in grads.items():
            # Per step the eager op count is what costs: TF's own SGD kernel, var -= alpha * delta in one op,
            # on the tf.Variable under the Keras one (Keras' assign_sub(lr * grad) is a multiply, a read, a
            # subtract, a cast and an assign).
            tf.raw_ops.ResourceApplyGradientDescent(var=variables[name].value.handle, alpha=lr, delta=grad)

    @property
    def compile_break_even_steps(self) -> int | None:  # type: ignore[override]
        # LeNet, batch 128, 2 loaded cores. On oneDNN's NCHW kernels the eager step runs as fast as XLA's whole
        # step (27.5 against 27.8 ms, medians of 40 interleaved samples; compiling it took 1.3 s), so compiling
        # never repays itself. Where they are missing, the eager step runs its convolutions and pooling as
        # XLA-compiled ops: XLA compiled the step in 4.8 s, which then ran in 64 ms where the eager one took
        # 129 ms, even after 73 steps.
        if self._on_cpu and all(_nchw_kernels(op, self._dtype) for op in ("conv2d", "avg_pool2d", "max_pool2d")):
            return None
        return 200

    def compiled_train_step(self, module: Any, loss: Loss, lr: float) -> Step:
        """The tape, the gradient and ``ResourceApplyGradientDescent`` in one ``tf.function(jit_compile=True)``.

        XLA compiles the whole step, where the eager step runs each layer's
        own compiled op: one dispatch per step instead of dozens.
        """
        variables = list(self.parameters(module).values())
        handles = [variable.value.handle for variable in variables]
        rate = tf.constant(lr, self._dtype)

        def whole_step(X: Any, Y: Any) -> Any:
            with tf.GradientTape() as tape:
                value = loss(module(X), Y)
            for handle, grad in zip(handles, tape.gradient(value, variables), strict=True):
                tf.raw_ops.ResourceApplyGradientDescent(var=handle, alpha=rate, delta=grad)
            return value

        return self._xla(whole_step)

    def compiled_predict(self, module: Any) -> Callable[[Any], Any]:
        """The forward pass in one ``tf.function(jit_compile=True)``: evaluation at the compiled step's pace."""

        def forward(X: Any) -> Any:
            return module(X)

        return self._xla(forward)

    def _xla(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` compiled by XLA, called with this backend :meth:`traced`, so its ops run inline."""
        compiled = tf.function(function, jit_compile=True)  # one trace per batch shape: the static shapes ops read

        def call(*args: Any) -> Any:
            with self.tracing():
                return compiled(*args)

        return call

    def grad(self, f: Callable[..., Any], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        arrays = [np.asarray(x) for x in inputs]
        tensors = [tf.constant(a if a.dtype.kind == "f" else a.astype(np.float32)) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = f(*tensors)
        grads = tape.gradient(value, tensors)
        return float(value), [None if g is None else self.to_numpy(tf.convert_to_tensor(g)) for g in grads]

    def synchronize(self, y: Any) -> Any:
        # GPU ops return once queued; eager CPU ops have finished when they return, and
        # sync_devices would cost as much as a small op there.
        if not self._on_cpu:
            tf.test.experimental.sync_devices()
        return y
