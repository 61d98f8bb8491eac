"""Argument checks shared by the public functions.

Every message names the argument, what was expected and what was received.
"""

from __future__ import annotations

import numbers
from typing import Any


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
