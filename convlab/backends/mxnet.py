"""The MXNet backend: MXNet's NumPy interface (``mxnet.np``, ``npx.set_np()``) and Gluon.

MXNet on today's NumPy
----------------------
Apache MXNet is retired; its last release, 1.9.1, declares ``numpy<2`` and
fails to import on NumPy 1.24 and later, because it reads NumPy attributes
that NumPy has since removed. :func:`add_numpy_names_for_mxnet` runs just
before ``import mxnet`` and adds to the ``numpy`` module those of the 20 names
below that the installed NumPy lacks; it never touches an attribute NumPy has,
so it adds nothing where a name still exists (and nothing when called again).

* ``PZERO NZERO PINF NINF Inf NAN NaN`` (constants removed in NumPy 2.0;
  ``mxnet/numpy/utils.py`` re-exports them, Gluon's estimator uses ``np.Inf``):
  their values.
* ``bool`` (absent on NumPy 1.24-1.26, back in 2.0; ``mxnet/numpy/utils.py``):
  ``numpy.bool_``.
* ``alltrue sometrue product round_ trapz in1d msort`` (removed in NumPy 2.0
  to 2.4; ``mxnet/numpy/fallback.py`` re-exports them and
  ``mxnet/numpy_dispatch_protocol.py`` dispatches on ``sometrue``, ``round_``
  and ``product``): functions forwarding to ``all``, ``any``, ``prod``,
  ``round``, ``trapezoid``, ``isin(...).ravel()`` and ``sort(a, axis=0)``.
* ``mirr npv pmt ppmt pv rate`` (removed in NumPy 1.20, now in the separate
  ``numpy-financial``; NumPy 1.x still answers with a function that raises,
  NumPy 2 with nothing; MXNet only re-exports them): functions that raise
  ``NotImplementedError`` saying so.

The stand-ins are new functions, not aliases such as ``sometrue = numpy.any``:
MXNet keys its ``__array_function__`` dispatch table by ``getattr(numpy, name)``,
so an alias would make ``numpy.any(mxnet_array)`` dispatch to MXNet's
``sometrue`` (likewise ``numpy.round`` to ``round_`` and ``numpy.prod`` to
``product``) instead of MXNet's own ``any``, ``round`` and ``prod``.

Install mxnet beside NumPy 2 without its pins, ``pip install --no-deps
mxnet==1.9.1`` (it needs ``requests`` at import; on Python 3.12+ also
``setuptools``, which provides the ``distutils`` it imports).

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

import functools
import importlib.util
import math
import types
import warnings
from typing import Any

import numpy as np

from convlab.backends.base import Backend, Forward, Loss, weight_and_bias

mx: Any = None  # imported by MXNetBackend.import_framework: `import convlab` must not load mxnet
mnp: Any = None
npx: Any = None
autograd: Any = None
nn: Any = None

_FINANCIAL = ("mirr", "npv", "pmt", "ppmt", "pv", "rate")


def _stand_ins(numpy: Any) -> dict[str, Any]:
    """What each NumPy name mxnet 1.9.1 reads means; ``None``: nothing in NumPy replaces it."""
    return {
        "PZERO": 0.0,
        "NZERO": -0.0,
        "PINF": math.inf,
        "NINF": -math.inf,
        "Inf": math.inf,
        "NAN": math.nan,
        "NaN": math.nan,
        "bool": numpy.bool_,
        # Looked up at call time: numpy.trapezoid only exists where trapz is gone.
        "alltrue": lambda *args, **kwargs: numpy.all(*args, **kwargs),
        "sometrue": lambda *args, **kwargs: numpy.any(*args, **kwargs),
        "product": lambda *args, **kwargs: numpy.prod(*args, **kwargs),
        "round_": lambda *args, **kwargs: numpy.round(*args, **kwargs),
        "trapz": lambda *args, **kwargs: numpy.trapezoid(*args, **kwargs),
        "in1d": lambda ar1, ar2, *args, **kwargs: numpy.isin(ar1, ar2, *args, **kwargs).ravel(),
        "msort": lambda a: numpy.sort(a, axis=0),
        **dict.fromkeys(_FINANCIAL),
    }


MXNET_NUMPY_NAMES = tuple(_stand_ins(np))
"""The NumPy attributes mxnet 1.9.1 reads that some NumPy >= 1.24 lacks."""


def _removed(name: str) -> Any:
    def removed(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"numpy.{name} was removed in NumPy 1.20 (it lives on as numpy_financial.{name}: "
            f"pip install numpy-financial); convlab defines this placeholder only so that mxnet 1.9.1 imports"
        )

    return removed


def add_numpy_names_for_mxnet(numpy: Any = np) -> list[str]:
    """Give ``numpy`` the names of :data:`MXNET_NUMPY_NAMES` it lacks; existing attributes are left alone.

    Returns the names added (none on a second call).
    """
    added = []
    for name, stand_in in _stand_ins(numpy).items():
        with warnings.catch_warnings():  # older NumPy warns when deprecated names are read
            warnings.simplefilter("ignore")
            if hasattr(numpy, name):
                continue
        if stand_in is None:
            stand_in = _removed(name)
        if isinstance(stand_in, types.FunctionType):
            stand_in.__name__ = stand_in.__qualname__ = name
            stand_in.__doc__ = f"convlab's stand-in for numpy.{name}, which this NumPy lacks and mxnet 1.9.1 reads."
        setattr(numpy, name, stand_in)
        added.append(name)
    return added


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


@functools.cache
def _layer_classes() -> tuple[type, type]:
    """``(Conv2D, BuiltinConv)``, built on first use: they subclass Gluon types."""

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

    return Conv2D, BuiltinConv


class MXNetBackend(Backend):
    name = "mxnet"
    aliases = ("mx",)
    modules = ("mxnet",)
    extra = "mxnet"
    install_hint = (
        'pip install --no-deps mxnet==1.9.1 beside NumPy 2 (pip install "convlab[mxnet]" makes an MXNet-only '
        "environment on NumPy 1.26)"
    )

    def import_framework(self) -> None:
        global mx, mnp, npx, autograd, nn
        if importlib.util.find_spec("mxnet") is None:  # before touching NumPy
            raise ImportError("No module named 'mxnet'")
        add_numpy_names_for_mxnet(np)
        with warnings.catch_warnings():  # mxnet's own deprecated uses: distutils, and NEP 32 on NumPy 1.x
            warnings.filterwarnings("ignore", "distutils Version classes are deprecated", DeprecationWarning)
            warnings.filterwarnings("ignore", "In accordance with NEP 32", DeprecationWarning)
            import mxnet as mx
            from mxnet import autograd, npx
            from mxnet import np as mnp
            from mxnet.gluon import nn
        npx.set_np()

    def version(self) -> str:
        return str(mx.__version__)

    def device(self) -> str:
        return str(mx.context.current_context().device_type)

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
        Conv2D, _ = _layer_classes()
        layer = Conv2D(kernel_size, bias is not None, forward)
        layer.initialize()  # Gluon's default: Uniform(0.07) for the weight, zeros for the bias
        if weight is not None:
            layer.weight.set_data(_tensor(weight))
        if bias is not None:
            layer.bias.set_data(_tensor(bias))
        return layer

    def builtin_layer(self, kernel_size, weight) -> Any:
        _np_mode()
        _, BuiltinConv = _layer_classes()
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
