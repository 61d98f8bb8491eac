"""The MXNet backend: MXNet's NumPy interface (``mxnet.np``, ``npx.set_np()``) and Gluon.

MXNet 1.9.1 is made importable on today's NumPy by
:mod:`convlab.backends.mxnet.numpy_compat`, which runs before ``import mxnet``.

Adapter choices
---------------
* Tensors are ``mxnet.numpy.ndarray`` (float32). Legacy ``mx.nd.NDArray``
  input is accepted as any other array, through NumPy (a copy).
* ``corr2d_loop`` is the book's MXNet tab, in-place item assignment into
  ``np.zeros``. MXNet refuses in-place operations while ``autograd.record()``
  records, so the loop layer cannot be differentiated:
  :func:`convlab.autograd_exercise` reports MXNet's error.
* ``corr2d_vectorized`` is the core's shift-and-add (no in-place operations,
  so it records); ``corr2d_native`` is ``npx.convolution`` (NCHW).
  ``method="auto"`` always picks ``"native"``: each MXNet operator costs tens
  of microseconds of dispatch and the shift-and-add issues ``3 k_h k_w`` of
  them. Measured (2 busy CPU cores, square inputs of side 8 to 2048, kernels
  1x2 to 5x5), native against shift-and-add: 0.3-1.7 ms against 0.5-38 ms up
  to side 128, 1.9-28 ms against 7.5-58 ms at 512, 35-116 ms against
  124-352 ms at 2048 with kernels up to 3x3.
* Batch and channel axes are added and removed with ``reshape_view``, a view
  that autograd records: ``mxnet.np``'s ``reshape`` copies, and ``Y[0, 0]``
  is several times slower still. With them ``train_kernel`` took 1.9x the
  time of the book's MXNet loop per iteration; now about 1.1-1.2x.
* ``Conv2D`` is a Gluon ``Block`` whose ``weight`` (``kernel_size``) and
  ``bias`` (``(1,)``) come from ``self.params.get``, as in the book; the
  built-in layer is ``nn.Conv2D(1, kernel_size, use_bias=False,
  in_channels=1)``. ``init="framework"`` keeps Gluon's default initialiser,
  ``Uniform(0.07)`` (the bias starts at zero), as the book's ``initialize()``.
* Gradients come from ``backward()`` after ``autograd.record()``; a parameter
  whose gradient ``backward()`` did not write (MXNet's "fresh gradient" flag,
  which ``gluon.Trainer`` checks too) is reported as ``None``.
  ``sgd_update`` is the book's ``param.data()[:] -= lr * grad`` without the
  ``[:]`` (the same in-place update, one copy fewer).
* MXNet's NumPy mode is per thread: ``npx.set_np()`` runs at import and again
  before a layer is built in a thread that has not turned it on.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from convlab.backends.base import Backend, Forward, Loss, weight_and_bias
from convlab.backends.mxnet.numpy_compat import add_numpy_names_for_mxnet

add_numpy_names_for_mxnet(np)
with warnings.catch_warnings():  # mxnet's own deprecated uses: distutils, and NEP 32 on NumPy 1.x
    warnings.filterwarnings("ignore", "distutils Version classes are deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "In accordance with NEP 32", DeprecationWarning)
    import mxnet as mx
    from mxnet import autograd, npx
    from mxnet import np as mnp
    from mxnet.gluon import nn
npx.set_np()


def _tensor(data: Any) -> Any:
    if isinstance(data, mnp.ndarray):
        return data.astype(np.float32, copy=False)
    return mnp.array(data, dtype=np.float32)  # without dtype, float64 input would stay float64


def _np_mode() -> None:
    # Gluon creates legacy NDArray parameters in a thread without NumPy mode.
    if not npx.is_np_array():
        npx.set_np()


def _native(X: Any, K: Any) -> Any:
    kh, kw = K.shape
    data, weight = X.reshape_view((1, 1, *X.shape)), K.reshape_view((1, 1, kh, kw))
    Y = npx.convolution(data=data, weight=weight, kernel=(kh, kw), num_filter=1, no_bias=True)
    return Y.reshape_view(Y.shape[2:])


class Conv2D(nn.Block):
    """The book's hand-written layer; its forward pass comes from the core."""

    def __init__(self, kernel_size: tuple[int, int], use_bias: bool, forward: Forward) -> None:
        super().__init__()
        self.weight = self.params.get("weight", shape=kernel_size)
        self.bias = self.params.get("bias", shape=(1,)) if use_bias else None
        self.forward_fn = forward

    def forward(self, X: Any) -> Any:
        return self.forward_fn(X, self.weight.data(), None if self.bias is None else self.bias.data())


class BuiltinConv(nn.Conv2D):
    """``nn.Conv2D(1, kernel_size, use_bias=False, in_channels=1)`` on 2-D inputs and outputs."""

    def __init__(self, kernel_size: tuple[int, int]) -> None:
        super().__init__(1, kernel_size, use_bias=False, in_channels=1)

    def forward(self, X: Any) -> Any:
        X = _tensor(X)
        Y = super().forward(X.reshape_view((1, 1, *X.shape)))
        return Y.reshape_view(Y.shape[2:])


class MXNetBackend(Backend):
    def version(self) -> str:
        return str(mx.__version__)

    def resolve_device(self, device: str | None) -> str:
        if device is None:
            return str(mx.context.current_context().device_type)
        kind, _, index = device.lower().partition(":")
        if kind not in ("cpu", "gpu") or not (index == "" or index.isdigit()):
            raise ValueError(f"device: expected 'cpu', 'gpu' or 'gpu:N', got {device!r}")
        if kind == "gpu" and int(index or 0) >= mx.context.num_gpus():
            raise ValueError(f"device: {device!r} was asked for, but MXNet sees {mx.context.num_gpus()} GPUs here")
        return device.lower()

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (mnp.ndarray,)

    def tensor(self, data: Any) -> Any:
        return _tensor(data)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.asnumpy()

    def corr2d_loop(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = mnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def corr2d_native(self, X: Any, K: Any) -> Any:
        return _native(X, K)

    def auto_method(self, x_shape: tuple[int, int], k_shape: tuple[int, int]) -> str:
        return "native"  # faster at every measured size (module docstring)

    def conv2d_layer(self, kernel_size, weight, bias, forward: Forward) -> Any:
        _np_mode()
        layer = Conv2D(kernel_size, bias is not None, forward)
        layer.initialize()  # Gluon's default: Uniform(0.07) for the weight, zeros for the bias
        if weight is not None:
            layer.weight.set_data(_tensor(weight))
        if bias is not None:
            layer.bias.set_data(_tensor(bias))
        return layer

    def builtin_layer(self, kernel_size, weight) -> Any:
        _np_mode()
        layer = BuiltinConv(kernel_size)
        layer.initialize()
        if weight is not None:
            layer.weight.set_data(_tensor(weight).reshape(layer.weight.shape))
        return layer

    def parameters(self, layer: Any) -> dict[str, np.ndarray]:
        # nn.Conv2D stores its weight as (out, in, h, w): report it as (h, w).
        return {name: p.data().asnumpy().reshape(p.shape[-2:]) for name, p in weight_and_bias(layer).items()}

    def value_and_grad(self, layer: Any, X: Any, Y: Any, loss: Loss):
        params = weight_and_bias(layer)
        with autograd.record():
            value = loss(layer(X), Y)
        value.backward()
        grads = {}
        for name, p in params.items():
            data = p.data()  # backward() flags the variable, not its gradient buffer
            grads[name] = p.grad().reshape_view(p.shape[-2:]) if data._fresh_grad else None
            data._fresh_grad = False
        return value.item(), grads

    def sgd_update(self, layer: Any, grads: dict[str, Any], lr: float) -> None:
        params = weight_and_bias(layer)
        for name, grad in grads.items():
            data = params[name].data()
            data -= lr * grad  # in place; broadcasting restores nn.Conv2D's (1, 1, h, w)
