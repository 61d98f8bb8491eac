"""The TensorFlow backend's convolution and pooling kernels: oneDNN's NCHW ones eagerly, else XLA-compiled ones.

convlab's layouts are NCHW and OIHW; TensorFlow's own CPU kernels take NHWC
alone. So there are two paths, and the adapter picks one per call
(``TensorFlowBackend._nchw_kernels``):

* oneDNN's kernels (on by default on x86 Linux) take NCHW on the CPU too, in
  float32, gradients included, with two exceptions: the input's gradient
  refuses explicit padding, and max pooling's gradient takes NCHW only in a
  graph beside its forward (:func:`_max_pool_backward`). :func:`_conv2d_native`
  and :func:`_pool2d_native` run them eagerly, without transposing the
  images, which makes them the faster path: LeNet's 1->6 5x5 convolution,
  forward and backward, took 11.3 ms on them against 32.4 on the other path
  (Keras' NHWC layer 12.9; medians of 21 interleaved samples, 2 loaded
  cores). Which ops a build has is probed once per op and dtype
  (:func:`_nchw_kernels`).
* The transposing path serves the rest: a build or a run without oneDNN
  (``TF_ENABLE_ONEDNN_OPTS=0``), float64, a GPU, and the compiled step,
  whose XLA function takes any layout. :func:`_conv2d_nchw` and
  :func:`_pool2d_nchw` transpose to NHWC (or pool each channel alone) for
  TensorFlow's kernels. Eagerly the transposes cost up to 1.2x Keras'
  ``Conv2D`` and one-channel pooling about 3x Keras' NHWC pooling, so on the
  CPU each op runs compiled by XLA, which folds the transposes away, from its
  first call (:func:`_compiled`): XLA's kernels and the eager ones round
  differently, and two identical calls must give the same bits.

The book's shift-and-add (``method="vectorized"``) is XLA-compiled too
(:func:`_shift_and_add_graph`). Each compiled function serves one op,
settings and input shapes, in caches of :data:`COMPILED_CACHE_SIZE`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from convlab.backends.base import Padding, Pair
from convlab.backends.tensorflow.framework import tf

COMPILED_CACHE_SIZE = 256
"""How many compiled functions (one per operation, settings and shapes) each cache keeps.

A notebook that explores many shapes would otherwise keep every compilation; the least recently used
one is dropped, and compiled again (~50 ms) if its shapes come back.
"""


# -- oneDNN's NCHW kernels, eagerly on the CPU --------------------------------------------------------------------


NCHW_OPS = ("conv2d", "grouped_conv2d", "avg_pool2d", "max_pool2d")
"""The operations :func:`_nchw_kernels` probes, each alone: a build may have some in NCHW and not others."""


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


def _nhwc(x: Any) -> Any:
    return tf.transpose(x, (0, 2, 3, 1))


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
    # oneDNN's NCHW convolution of one input channel misplaces the rows of an output one column wide when the
    # stride across is larger than the stride down (TensorFlow 2.21: 98 of 4,050 shapes tried, all of that
    # kind). One column reads the first window whatever the stride across: there stride 1 is asked for, and
    # the first column kept.
    one_column = stride[1] > 1 and width + left + right - k_w < stride[1]
    if one_column:
        stride = (stride[0], 1)
    if not any(padding):
        pads = "VALID"
    elif (top, bottom) == _same_padding(h, k_h, stride[0]) and (left, right) == _same_padding(width, k_w, stride[1]):
        pads = "SAME"  # LeNet's first layer, every 3x3 with padding 1: no padded copy of the images
    else:
        x, pads = tf.pad(x, [*_NCHW_PADDING, [top, bottom], [left, right]]), "VALID"
    y = tf.nn.conv2d(x, w, stride, pads, data_format="NCHW")
    if one_column:
        y = y[..., :1]
    return y if bias is None else tf.nn.bias_add(y, bias, data_format="NCHW")


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


# -- the transposing path, compiled by XLA on the CPU -------------------------------------------------------------


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(op: Callable[..., Any], config: tuple[Any, ...], signature: tuple[tf.TensorSpec, ...]) -> Any:
    # One tf.function per op, settings and input shapes, traced and compiled once (forward and backward).
    return tf.function(lambda *tensors: op(config, *tensors), input_signature=signature, jit_compile=True)


def _not_a_retracing_warning(record: logging.LogRecord) -> bool:
    # One tf.function per kernel shape is by design, but TF counts their traces
    # together and warns of "retracing" from the sixth kernel shape on.
    return "triggered tf.function retracing" not in record.getMessage()


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


def _spatial(padding: Padding) -> list[list[int]]:
    """``(top, bottom, left, right)`` as TensorFlow's explicit NHWC padding."""
    top, bottom, left, right = padding
    return [[0, 0], [top, bottom], [left, right], [0, 0]]


# -- the book's shift-and-add, compiled by XLA --------------------------------------------------------------------


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


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _shift_and_add_graph(x_shape: Pair, k_shape: Pair, dtype: tf.DType) -> Any:
    # XLA fuses the k_h * k_w scaled slices into one pass over the output (no output-sized temporaries,
    # still differentiable), as jax.jit does. One function per shapes, so the cache bounds the compilations.
    signature = [tf.TensorSpec(x_shape, dtype), tf.TensorSpec(k_shape, dtype)]
    return tf.function(_shift_and_add, input_signature=signature, jit_compile=True)
