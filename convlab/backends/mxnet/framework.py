"""MXNet as this backend imports it: made importable on today's NumPy, quiet, in NumPy mode.

The adapter, the compiled step's tracing, and the reference code all take
MXNet's names (``mx``, ``mnp``, ``npx``, ``nn``, ``gluon``, ``init``,
``autograd``) from here, so that MXNet is imported one way, after
:func:`~convlab.backends.mxnet.numpy_compat.add_numpy_names_for_mxnet`,
whichever of them a process imports first.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from convlab.backends.mxnet.numpy_compat import add_numpy_names_for_mxnet

# The rest of the backend imports MXNet's modules from here.
__all__ = ["autograd", "gluon", "init", "mnp", "mx", "nn", "npx"]

# CONVLAB_VERBOSE=1 (any value but "" or "0") shows the warnings hidden here, which are MXNet's, not the user's.
_VERBOSE = os.environ.get("CONVLAB_VERBOSE", "") not in ("", "0")

add_numpy_names_for_mxnet(np)  # before import mxnet: makes MXNet 1.9.1 importable on today's NumPy
with warnings.catch_warnings():
    if not _VERBOSE:  # mxnet's own deprecated uses: distutils, and NEP 32 on NumPy 1.x
        warnings.filterwarnings("ignore", "distutils Version classes are deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "In accordance with NEP 32", DeprecationWarning)
    import mxnet as mx
    from mxnet import autograd, gluon, init, npx
    from mxnet import np as mnp
    from mxnet.gluon import nn
npx.set_np()


def _np_mode() -> None:
    # MXNet's NumPy mode is per thread: set at import, and again before a layer is built in a thread that has not
    # turned it on, where Gluon would create legacy NDArray parameters.
    if not npx.is_np_array():
        npx.set_np()
