"""Conversions between NumPy, Python data and each backend's tensors.

They sit below validation (:mod:`convlab.core.checks`) and the operations
(:mod:`convlab.ops`): every message names the argument, what was expected and
what was received.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, Tensor
from convlab.core.registry import get_backend, load_backend, owning_backend


@export
def to_numpy(x: Any) -> np.ndarray:
    """Any backend's tensor (or a list, or an array) as a NumPy array.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.to_numpy([[1, 2]])
    array([[1, 2]])
    """
    owner = owning_backend(x)
    if owner is not None:
        return load_backend(owner).to_numpy(x)
    return np.asarray(x)


def describe(x: Any) -> str:
    """A short description of a value for error messages."""
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"{type(x).__module__.partition('.')[0]}.{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def as_native(x: Any, name: str, backend: Backend | None = None) -> Tensor:
    """``x`` as a native tensor of ``backend`` (default: the active one), in the backend's dtype.

    Accepts native tensors of that backend, NumPy arrays, Python scalars and
    (nested) lists. A tensor of another framework is a ``TypeError``: mixing
    frameworks silently would copy data between devices behind the user's back.
    """
    backend = backend or get_backend()
    if isinstance(x, np.ndarray):  # every backend takes NumPy input; float32 needs no check
        # float64 data inside a float64 scope keeps its digits: it is not rounded through float32 first
        dtype = getattr(backend, "dtype", np.float32)
        return backend.tensor(x if x.dtype == np.float32 else as_real_array(x, name, dtype))
    if isinstance(x, backend.tensor_types):
        if not backend.is_real(x):
            raise TypeError(f"{name}: expected a tensor of real numbers (int or float dtype), got {describe(x)}")
        return backend.tensor(x)
    owner = owning_backend(x)
    if owner is not None and owner != backend.name:
        raise TypeError(
            f"{name}: expected a NumPy array, a list or a {backend.name} tensor (the active backend), "
            f"got a {owner} tensor ({describe(x)}); convert it with convlab.to_numpy({name}) "
            f"or select its backend with convlab.use_backend({owner!r})"
        )
    return backend.tensor(as_real_array(x, name, getattr(backend, "dtype", np.float32)))


def as_real_array(x: Any, name: str, dtype: Any = np.float32) -> np.ndarray:
    """``x`` as a NumPy array of ``dtype`` (float32 by default); non-numeric data is a ``TypeError``."""
    if owning_backend(x) is not None:  # a tensor of any backend: bring it to NumPy
        x = to_numpy(x)
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array of real numbers, got {describe(x)} ({exc})") from exc
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"{name}: expected an array of real numbers (int or float dtype), got dtype {array.dtype} "
            f"from {type(x).__name__}"
        )
    return array.astype(dtype, copy=False)
