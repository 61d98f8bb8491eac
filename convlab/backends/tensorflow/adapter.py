"""The TensorFlow backend: TensorFlow 2, eager, with Keras 3 layers; NCHW convolutions and pooling on oneDNN's kernels.

Each choice is explained beside the code it concerns; the book's TensorFlow
tabs and Keras' idiomatic code are in :mod:`convlab.backends.tensorflow.reference`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerCall, LayerDef, Loss, Padding, Pair, Step

# Selecting this backend should print nothing the user did not ask for. CONVLAB_VERBOSE=1 (any value but "" or
# "0") turns off all of the hiding below, to see what TensorFlow has to say.
_VERBOSE = os.environ.get("CONVLAB_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def _stderr_held() -> Iterator[None]:
    """Hold what is written to file descriptor 2 meanwhile; replay it only if the block raises.

    TensorFlow's native libraries log while they load, before absl's logging is
    initialised and so before TF_CPP_MIN_LOG_LEVEL applies: on a CPU, that
    oneDNN is on and that no CUDA driver was found, once per library. Only the
    descriptor catches these, and a failed import still shows all of it.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to hold (a daemon)
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as held:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed and sys.stderr is not None:
                held.seek(0)
                sys.stderr.write(held.read().decode(errors="replace"))
                sys.stderr.flush()


if not _VERBOSE:
    # Read once, when the C++ runtime loads; 3 also hides ERROR lines such as "failed call to cuInit" on a
    # machine without a GPU, where TensorFlow then simply runs on the CPU. A user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with contextlib.nullcontext() if _VERBOSE else _stderr_held():
    import keras
    import tensorflow as tf

# tf.keras is Keras 3 since TF 2.16; its layers are what this backend's modules are.
if keras.backend.backend() != "tensorflow":
    raise ImportError(f"Keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow")


class Module(keras.layers.Layer):
    """A layer defined by the core, on Keras weights: one ``add_weight`` per parameter and state, sublayers in order.

    ``layer.trainable_weights`` is then what a Keras optimizer updates; the
    state (batch norm's running statistics, dropout's step) is non-trainable
    weights, as Keras' ``BatchNormalization`` keeps its moving statistics, so
    no optimizer sees it. Modules nest the Keras way: the children are a tuple
    attribute, ``layers``, whose elements Keras' tracker registers as
    sublayers, so ``trainable_weights`` of a ``cl.nn.Sequential`` lists every
    nested weight, once, and ``keras.optimizers.SGD`` trains it. A call hands
    the definition the Keras variables themselves, the sublayers, called
    through Keras' ``__call__`` as ``keras.Sequential`` calls its layers, and
    the layer's mode: ``training``, or Keras' own ``training`` argument where
    a call gives one (``layer(x, training=False)``), as Keras' layers take it.

    Parameters
    ----------
    definition : LayerDef
        What the layer computes.
    backend : TensorFlowBackend
        The backend the layer computes with, whichever is active when it is called.
    initial : mapping of str to numpy.ndarray
        Each parameter's name and initial value; each becomes an attribute (``layer.weight``).
    children : tuple of Module
        Sublayers, kept in order as :attr:`layers`; Keras tracks each, so their
        weights are among this layer's ``trainable_weights``. Each is found by
        its name too (``block.conv1``; ``getattr(net, "0")``).
    state : mapping of str to numpy.ndarray, optional
        Each state tensor's name and initial value; each becomes a
        non-trainable weight and an attribute (``bn.running_mean``).
    """

    def __init__(
        self,
        definition: LayerDef,
        backend: TensorFlowBackend,
        initial: Mapping[str, np.ndarray],
        children: tuple[keras.layers.Layer, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        # A float64 backend's layers are float64 Keras layers: their weights and the inputs Keras converts.
        super().__init__(dtype=None if backend.dtype == np.float32 else backend.dtype.name)
        self.definition = definition
        self.backend = backend
        state = state or {}
        for name, value in initial.items():
            weight = self.add_weight(name=name, shape=value.shape, initializer=keras.initializers.Constant(value))
            setattr(self, name, weight)
        for name, value in state.items():
            variable = self.add_weight(
                name=name, shape=value.shape, initializer=keras.initializers.Constant(value), trainable=False
            )
            setattr(self, name, variable)
        # The Keras variables themselves, made once: TF ops read them where the forward pass uses
        # them, as Keras' own layers pass self.kernel, so a call builds no mapping of tensors.
        self.own_weights = {name: getattr(self, name) for name in initial}
        self.own_state = {name: getattr(self, name) for name in state}
        self.named_layers = dict(zip(definition.child_names(len(children)), children, strict=True))
        self.layers = tuple(children)  # a tuple attribute: Keras tracks each element as a sublayer, once
        # Keras' Layer has no mode of its own (its call takes a `training` argument): this attribute is
        # convlab's, which Backend.set_training sets over the sublayers.
        self.training = True
        self.built = True  # weights made here, not in build()

    def __getattr__(self, name: str) -> Any:
        # Only once Keras' own attributes have missed: a block's attribute named as one of Keras' (name,
        # output, trainable) cannot replace it, as setting the sublayer as an attribute would.
        named_layers = self.__dict__.get("named_layers", {})
        if name in named_layers:
            return named_layers[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def input_dtype(self) -> str:
        # Keras casts a float input to this before call(). Inside a use_backend block of this framework and
        # device in another dtype, convlab's core computes the layer in the block's dtype (convlab.nn.layers):
        # the input keeps that dtype, so a float64 block's input is not rounded to float32 on the way in.
        block = self.backend.innermost_block()
        if block is not None and block.name == self.backend.name and block.device == self.backend.device:
            return block.dtype.name
        return super().input_dtype

    def call(self, X: Any, training: bool | None = None) -> Any:
        # Keras' own argument wins where given (`layer(x, training=False)`, or from an enclosing call, which
        # Keras hands down to the sublayers); otherwise the mode set_training chose.
        call = LayerCall(self.training if training is None else bool(training), self.own_state)
        Y = self.definition.forward(self.backend, self.own_weights, X, self.layers, call)
        for name, value in call.updates.items():
            # assign has no gradient: the state moves outside the tape, as BatchNormalization's moving statistics
            # do. The cast: a float64 block (convlab.nn.layers.in_active_precision) computes float64 values for
            # a float32 layer's state.
            variable = self.own_state[name]
            variable.assign(tf.cast(value, variable.dtype))
        return Y


class BuiltinConv2d(keras.layers.Conv2D):
    """Keras' own ``Conv2D`` (one channel in and out, no bias) on 2-D inputs and outputs; its kernel is HWIO."""

    def __init__(self, kernel_size: Pair, dtype: str | None = None) -> None:
        super().__init__(1, kernel_size, use_bias=False, dtype=dtype)  # default init: glorot_uniform
        self.build((None, None, None, 1))
        self.input_spec = keras.InputSpec(ndim=2)  # one image, without its batch and channel axes

    def call(self, X: Any) -> Any:
        # NHWC with N = C = 1. expand_dims/squeeze, as indexing and reshape (whose shape
        # argument becomes a tensor) cost several times more per call in eager mode.
        return tf.squeeze(super().call(tf.expand_dims(tf.expand_dims(X, 0), -1)), (0, 3))


def _shift_and_add(X: Any, K: Any) -> Any:
    # The base class's shift-and-add, with the output size read at run time
    # (tf.shape), so that one function serves every image size. Eager TensorFlow
    # pays a dispatch per op, and this is 4 k_h k_w of them: it runs compiled.
    h, w = K.shape
    out_h, out_w = tf.shape(X)[0] - h + 1, tf.shape(X)[1] - w + 1
    Y = X[:out_h, :out_w] * K[0, 0]
    for a in range(h):
        for b in range(w):
            if a or b:
                Y = Y + X[a : a + out_h, b : b + out_w] * K[a, b]
    return Y


COMPILED_CACHE_SIZE = 256
"""How many compiled functions (one per operation, settings and shapes) each cache keeps.

A notebook that explores many shapes would otherwise keep every compilation; the least recently used
one is dropped, and compiled again (~50 ms) if its shapes come back.
"""


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _shift_and_add_graph(x_shape: Pair, k_shape: Pair, dtype: tf.DType) -> Any:
    # XLA fuses the k_h * k_w scaled slices into one pass over the output (no output-sized temporaries,
    # still differentiable), as jax.jit does. One function per shapes, so the cache bounds the compilations.
    signature = [tf.TensorSpec(x_shape, dtype), tf.TensorSpec(k_shape, dtype)]
    return tf.function(_shift_and_add, input_signature=signature, jit_compile=True)


def _conv2d_nchw(config: tuple[Pair, Padding], x: Any, w: Any, bias: Any = None) -> Any:
    """NCHW/OIHW convolution through TensorFlow's NHWC/HWIO one: where the CPU kernels take no NCHW.

    TensorFlow's own CPU kernels take NHWC alone; oneDNN's take NCHW too
    (:func:`_nchw_kernels`), and :func:`_conv2d_native` then needs no
    transpose of the images. This path serves the rest: a build or a run
    without oneDNN (``TF_ENABLE_ONEDNN_OPTS=0``), float64 (oneDNN's kernels
    are float32), a GPU, and the compiled step, where XLA folds the transposes
    into the convolution. The explicit padding takes (top, bottom) and (left,
    right) pairs, asymmetric ones included, so no separate pad is needed.
    """
    stride, padding = config
    x, w = tf.transpose(x, (0, 2, 3, 1)), tf.transpose(w, (2, 3, 1, 0))  # NCHW -> NHWC, OIHW -> HWIO
    pads = _spatial(padding) if any(padding) else "VALID"  # "VALID" keeps fast paths (1x1: one matmul)
    y = tf.nn.conv2d(x, w, stride, pads)
    if bias is not None:  # in NHWC, where the channel is the contiguous axis BiasAdd runs along
        y = tf.nn.bias_add(y, bias)
    return tf.transpose(y, (0, 3, 1, 2))


def _pool2d_nchw(config: tuple[Pair, Pair, Padding, str], x: Any) -> Any:
    """Max or average pooling of NCHW images, each channel alone: where the CPU kernels take no NCHW.

    The reshape that makes each channel an NHWC image of one channel is free
    in NCHW. Eagerly TensorFlow pools one channel slowly (about 3x Keras' NHWC
    pooling on LeNet's first maps), so this runs compiled by XLA
    (:meth:`TensorFlowBackend._run_compiled`) where oneDNN's NCHW kernels
    (:func:`_pool2d_native`) are not to be had. TensorFlow's pools pad only as
    ``"SAME"`` (average pooling then divides by the real pixels alone), and
    explicit padding in max pooling is an extension that XLA refuses: so both
    pad first and pool ``"VALID"``.
    """
    window, stride, padding, mode = config
    n, c, h, w = x.shape
    x = tf.reshape(x, (n * c, h, w, 1))  # each channel alone: NCHW is already (N C) HW1
    if any(padding):  # -inf never wins a max; zeros count in an average's whole window
        x = tf.pad(x, _spatial(padding), constant_values=-np.inf if mode == "max" else 0.0)
    pool = tf.nn.max_pool2d if mode == "max" else tf.nn.avg_pool2d
    y = pool(x, window, stride, "VALID")
    if mode == "max" and any(padding):
        # TF's MaxPool starts its running max at the lowest float, not -inf, so a window of
        # padding alone would come out as -3.4e38 (float32): give it the -inf it covers.
        y = tf.where(tf.equal(y, y.dtype.min), tf.constant(-np.inf, y.dtype), y)
    return tf.reshape(y, (n, c, y.shape[1], y.shape[2]))


_NCHW_PADDING = [[0, 0], [0, 0]]
"""No padding of the batch and channel axes, ahead of an NCHW tensor's spatial pairs."""


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """The (before, after) padding of TensorFlow's ``"SAME"`` along one axis: the extra pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv2d_native(stride: Pair, padding: Padding, x: Any, w: Any, bias: Any = None) -> Any:
    """NCHW/OIHW convolution on oneDNN's NCHW kernels, eagerly: only the small kernel is transposed (to HWIO).

    TensorFlow infers the groups from the kernel's input channels, and lays
    the output channels out group after group, as convlab does. oneDNN's
    gradient for the input takes no explicit padding in NCHW: a padding that
    is ``"SAME"``'s is asked for as such, any other is padded first.
    """
    w = tf.transpose(w, (2, 3, 1, 0))  # OIHW -> HWIO, the filter layout of every data format
    top, bottom, left, right = padding
    (h, width), (k_h, k_w) = x.shape[2:], w.shape[:2]
    if not any(padding):
        pads = "VALID"
    elif (top, bottom) == _same_padding(h, k_h, stride[0]) and (left, right) == _same_padding(width, k_w, stride[1]):
        pads = "SAME"  # LeNet's first layer, every 3x3 with padding 1: no padded copy of the images
    else:
        x, pads = tf.pad(x, [*_NCHW_PADDING, [top, bottom], [left, right]]), "VALID"
    y = tf.nn.conv2d(x, w, stride, pads, data_format="NCHW")
    return y if bias is None else tf.nn.bias_add(y, bias, data_format="NCHW")


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _max_pool_backward(shape: tuple[int, ...], dtype: tf.DType, window: Pair, stride: Pair) -> Any:
    # The gradient of an NCHW max pooling, forward and backward in one graph: oneDNN's NCHW MaxPoolGrad reads the
    # argmax its forward saves, and TensorFlow pairs the two kernels only in a graph (eagerly, and in a graph
    # without the forward, MaxPoolGrad is TensorFlow's own, NHWC only). The forward runs twice: much cheaper than
    # the four transposes of an NHWC round trip, or XLA's pooling.
    def backward(x: Any, dy: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.max_pool2d(x, window, stride, "VALID", data_format="NCHW")
        return tape.gradient(y, x, output_gradients=dy)

    signature = [tf.TensorSpec(shape, dtype), tf.TensorSpec(None, dtype)]
    return tf.function(backward, input_signature=signature)


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _max_pool_native(window: Pair, stride: Pair) -> Callable[[Any], Any]:
    """``x -> max_pool2d(x)`` on NCHW ``x`` with oneDNN's kernels, its gradient from :func:`_max_pool_backward`."""

    @tf.custom_gradient
    def max_pool(x: Any) -> Any:
        y = tf.nn.max_pool2d(x, window, stride, "VALID", data_format="NCHW")

        def gradient(dy: Any) -> Any:
            return _max_pool_backward(tuple(x.shape), x.dtype, window, stride)(x, dy)

        return y, gradient

    return max_pool


def _pool2d_native(window: Pair, stride: Pair, padding: Padding, mode: str, x: Any) -> Any:
    """Max or average pooling of NCHW images on oneDNN's kernels, eagerly; padded first as in :func:`_pool2d_nchw`."""
    top, bottom, left, right = padding
    if any(padding):  # -inf never wins a max; zeros count in an average's whole window
        pads = [*_NCHW_PADDING, [top, bottom], [left, right]]
        x = tf.pad(x, pads, constant_values=-np.inf if mode == "max" else 0.0)
    if mode == "avg":
        return tf.nn.avg_pool2d(x, window, stride, "VALID", data_format="NCHW")
    y = _max_pool_native(window, stride)(x)
    if any(padding):  # as in _pool2d_nchw: a window of padding alone is -inf, not the lowest float
        y = tf.where(tf.equal(y, y.dtype.min), tf.constant(-np.inf, y.dtype), y)
    return y


NCHW_OPS = ("conv2d", "grouped_conv2d", "avg_pool2d", "max_pool2d")
"""The operations :func:`_nchw_kernels` probes, each alone: a build may have some in NCHW and not others."""


def _nhwc(x: Any) -> Any:
    return tf.transpose(x, (0, 2, 3, 1))


@functools.cache
def _nchw_kernels(op: str, dtype: tf.DType) -> bool:
    """Whether the CPU computes ``op`` on NCHW ``dtype`` tensors, its gradient included, as it does in NHWC.

    TensorFlow's own CPU kernels refuse NCHW; oneDNN's (on by default on
    x86 Linux; ``TF_ENABLE_ONEDNN_OPTS=0`` turns them off) take it, in
    float32 alone, and for max pooling's gradient only within a graph. So
    each op is tried once per process and dtype, on a few numbers, eagerly
    (lifted out of any graph being traced), and its values and gradients
    compared with the NHWC kernels'; an error or a mismatch says no.
    """
    if op not in NCHW_OPS:
        raise ValueError(f"op: expected one of {NCHW_OPS}, got {op!r}")
    rng = np.random.default_rng(0)
    channels, groups = (4, 2) if op == "grouped_conv2d" else (2, 1)
    x_value = rng.standard_normal((2, channels, 5, 5))
    w_value = rng.standard_normal((3 * groups, channels // groups, 2, 2))

    def native_and_reference(x: Any, w: Any) -> tuple[Any, Any]:
        # both NCHW; the reference on NHWC kernels alone
        if op == "avg_pool2d":
            return _pool2d_native((2, 2), (2, 2), (0, 0, 0, 0), "avg", x), _pool2d_nchw(
                ((2, 2), (2, 2), (0, 0, 0, 0), "avg"), x
            )
        if op == "max_pool2d":
            config = ((2, 2), (1, 2), (1, 0, 0, 1), "max")  # strides and padding that differ by axis
            return _pool2d_native(*config, x), _pool2d_nchw(config, x)
        # one NHWC convolution per group: a group's kernels are a slice of the output channels
        nhwc_groups = zip(tf.split(_nhwc(x), groups, axis=3), tf.split(w, groups, axis=0), strict=True)
        nhwc = [tf.nn.conv2d(x_g, tf.transpose(w_g, (2, 3, 1, 0)), (2, 1), "SAME") for x_g, w_g in nhwc_groups]
        return _conv2d_native((2, 1), (0, 1, 0, 1), x, w), tf.transpose(tf.concat(nhwc, axis=3), (0, 3, 1, 2))

    with tf.init_scope(), tf.device("/CPU:0"):
        x, w = tf.constant(x_value, dtype), tf.constant(w_value, dtype)
        try:
            with tf.GradientTape(persistent=True) as tape:
                tape.watch([x, w])
                y, y_reference = native_and_reference(x, w)
                weights = tf.constant(rng.standard_normal(y_reference.shape), dtype)  # distinct output gradients
                total, total_reference = tf.reduce_sum(y * weights), tf.reduce_sum(y_reference * weights)
            gradients = tape.gradient(total, [x, w], unconnected_gradients="zero")
            gradients_reference = tape.gradient(total_reference, [x, w], unconnected_gradients="zero")
            pairs = [(y, y_reference), *zip(gradients, gradients_reference, strict=True)]
            return all(np.allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4) for a, b in pairs)
        except tf.errors.OpError:
            return False


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(op: Callable[..., Any], config: tuple[Any, ...], signature: tuple[tf.TensorSpec, ...]) -> Any:
    # One tf.function per op, settings and input shapes, traced and compiled once (forward and backward).
    return tf.function(lambda *tensors: op(config, *tensors), input_signature=signature, jit_compile=True)


def _not_a_retracing_warning(record: logging.LogRecord) -> bool:
    # One tf.function per kernel shape is by design, but TF counts their traces
    # together and warns of "retracing" from the sixth kernel shape on.
    return "triggered tf.function retracing" not in record.getMessage()


def _spatial(padding: Padding) -> list[list[int]]:
    """``(top, bottom, left, right)`` as TensorFlow's explicit NHWC padding."""
    top, bottom, left, right = padding
    return [[0, 0], [top, bottom], [left, right], [0, 0]]


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
