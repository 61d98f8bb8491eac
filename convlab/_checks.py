"""Argument checks shared by the public functions.

Every message names the argument, what was expected and what was received.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convlab._registry import get_backend, owning_backend
from convlab.backends.base import Backend, Tensor


def describe(x: Any) -> str:
    """A short description of a value for error messages."""
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"{type(x).__module__.partition('.')[0]}.{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def as_native(x: Any, name: str, backend: Backend | None = None) -> Tensor:
    """``x`` as a float32 native tensor of ``backend`` (default: the active one).

    Accepts native tensors of that backend, NumPy arrays, Python scalars and
    (nested) lists. A tensor of another framework is a ``TypeError``: mixing
    frameworks silently would copy data between devices behind the user's back.
    """
    backend = backend or get_backend()
    if isinstance(x, np.ndarray):  # every backend takes NumPy input; float32 needs no check
        return backend.tensor(x if x.dtype == np.float32 else as_real_array(x, name))
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
    return backend.tensor(as_real_array(x, name))


def as_real_array(x: Any, name: str) -> np.ndarray:
    """``x`` as a float32 NumPy array; non-numeric data is a ``TypeError``."""
    if owning_backend(x) is not None:
        from convlab.ops import to_numpy  # a tensor of any backend: bring it to NumPy

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
    return array.astype(np.float32, copy=False)


def check_matrix(shape: tuple[int, ...], name: str) -> None:
    """``shape`` must be 2-D and non-empty."""
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D array (height, width), got {len(shape)}-D with shape {shape}")
    if 0 in shape:
        raise ValueError(f"{name}: expected a non-empty 2-D array, got shape {shape}")


def check_fits(x_shape: tuple[int, ...], k_shape: tuple[int, ...], name: str = "K") -> None:
    """The kernel (argument ``name``) must fit inside the input (valid mode)."""
    if k_shape[0] > x_shape[0] or k_shape[1] > x_shape[1]:
        raise ValueError(
            f"{name}: expected a kernel no larger than the input X {x_shape} in either axis, got {tuple(k_shape)}"
        )


def check_kernel_size(kernel_size: Any, name: str = "kernel_size") -> tuple[int, int]:
    """A pair of positive ints (an int ``n`` means ``(n, n)``)."""
    size = (kernel_size, kernel_size) if isinstance(kernel_size, numbers.Integral) else kernel_size
    try:
        pair = tuple(size)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in pair):
        raise TypeError(f"{name}: expected a pair of positive ints (height, width), got {kernel_size!r}")
    if min(pair) < 1:
        raise ValueError(f"{name}: expected positive sizes, got {kernel_size!r}")
    return int(pair[0]), int(pair[1])


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_positive(value: Any, name: str, *, integer: bool = False) -> Any:
    """A positive real number (or int)."""
    kind = numbers.Integral if integer else numbers.Real
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a positive {'int' if integer else 'number'}, got {value!r}")
    if not value > 0:
        raise ValueError(f"{name}: expected a positive {'int' if integer else 'number'}, got {value!r}")
    return value
