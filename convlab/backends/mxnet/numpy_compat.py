"""MXNet on today's NumPy.

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
"""

from __future__ import annotations

import math
import types
import warnings
from typing import Any

import numpy as np

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
