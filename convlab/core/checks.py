"""Argument checks shared by the public functions.

Every message names the argument, what was expected and what was received.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any


def check_matrix(shape: tuple[int, ...], name: str) -> None:
    """``shape`` must be 2-D and non-empty."""
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D array (height, width), got {len(shape)}-D with shape {shape}")
    if 0 in shape:
        raise ValueError(f"{name}: expected a non-empty 2-D array, got shape {shape}")


def check_fits(x_shape: tuple[int, ...], k_shape: tuple[int, ...], name: str = "K", padded: bool = False) -> None:
    """The kernel (argument ``name``) must fit inside the input (``padded``: the input with its padding)."""
    if k_shape[0] > x_shape[0] or k_shape[1] > x_shape[1]:
        what = "the padded input" if padded else "the input X"
        raise ValueError(
            f"{name}: expected a kernel no larger than {what} {tuple(x_shape)} in either axis, got {tuple(k_shape)}"
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


def check_fraction(value: Any, name: str, *, what: str = "a number", below_one: bool = False) -> float:
    """A real number in ``[0, 1]`` (``below_one``: ``[0, 1)``), as a float; the message calls it ``what``."""
    interval = "[0, 1)" if below_one else "[0, 1]"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name}: expected {what} in {interval}, got {value!r}")
    if not (0.0 <= value < 1.0 if below_one else 0.0 <= value <= 1.0):
        raise ValueError(f"{name}: expected {what} in {interval}, got {value!r}")
    return float(value)


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """An int seed (NumPy's and Python's ints alike) as an int, or ``None``; ``TypeError`` naming ``name`` else."""
    if seed is None:
        return None
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"{name}: expected an int or None, got {seed!r}")
    return int(seed)


def check_count(value: Any, name: str) -> int:
    """``value`` as a positive int (a count of channels, features, examples); ``ValueError`` naming ``name``."""
    return int(check_positive(value, name, integer=True))


def check_chw(input_shape: Any) -> tuple[int, int, int]:
    """``input_shape`` as ``(channels, height, width)``, three positive ints; ``ValueError`` otherwise."""
    try:
        items = tuple(input_shape)
    except TypeError:
        items = ()
    if len(items) != 3 or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in items):
        raise ValueError(f"input_shape: expected (channels, height, width), three positive ints, got {input_shape!r}")
    return int(items[0]), int(items[1]), int(items[2])


def _ints(value: Any, name: str, lengths: tuple[int, ...], what: str, minimum: int) -> tuple[int, ...]:
    items = (value,) if isinstance(value, numbers.Integral) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) not in lengths or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in items):
        raise TypeError(f"{name}: expected {what}, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{name}: expected {'non-negative' if minimum == 0 else 'positive'} sizes, got {value!r}")
    return tuple(int(n) for n in items)


def check_padding(padding: Any, name: str = "padding") -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` from an int, ``(p_h, p_w)`` (both sides) or four non-negative ints."""
    what = "an int, (p_h, p_w) or (top, bottom, left, right) of non-negative ints"
    items = _ints(padding, name, (1, 2, 4), what, 0)
    if len(items) == 1:
        return items * 4
    if len(items) == 2:
        return items[0], items[0], items[1], items[1]
    return items  # type: ignore[return-value]


def check_stride(stride: Any, name: str = "stride") -> tuple[int, int]:
    """``(s_h, s_w)`` from a positive int or a pair of them."""
    items = _ints(stride, name, (1, 2), "a positive int or a pair (s_h, s_w) of them", 1)
    return (items[0], items[0]) if len(items) == 1 else (items[0], items[1])


def check_image(shape: tuple[int, ...], name: str) -> None:
    """``shape`` must be a non-empty 2-D ``(h, w)``, 3-D ``(c, h, w)`` or 4-D ``(n, c, h, w)`` array."""
    if len(shape) not in (2, 3, 4) or 0 in shape:
        raise ValueError(
            f"{name}: expected a non-empty 2-D (height, width), 3-D (channels, height, width) "
            f"or 4-D (batch, channels, height, width) array, got shape {shape}"
        )


def check_mirror_padding(hw: tuple[int, int], padding: tuple[int, int, int, int], mode: str) -> None:
    """``mode="reflect"`` mirrors the rows and columns next to the border (not the border itself).

    So it can add at most ``height - 1`` rows and ``width - 1`` columns on each
    side; numpy.pad would silently reflect its own reflection beyond that.
    """
    if mode != "reflect":
        return
    (h, w), (top, bottom, left, right) = hw, padding
    if max(top, bottom) > h - 1 or max(left, right) > w - 1:
        raise ValueError(
            f"padding: mode='reflect' adds at most height - 1 = {h - 1} rows and width - 1 = {w - 1} columns "
            f"on a side of an input of height {h} and width {w}, got (top, bottom, left, right) = {padding}"
        )


def check_output_file(path: str | os.PathLike[str] | None, option: str) -> None:
    """A file a command will write: its folder must exist and it may not be a folder (checked before any work)."""
    if path is None or str(path) == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option}: expected a file to write, but {path} is a folder")
    if not target.resolve().parent.is_dir():
        raise ValueError(f"{option}: the folder of {path} does not exist")


def check_output_folder(path: str | os.PathLike[str] | None, option: str) -> None:
    """A folder a command will write into: it may not exist yet, but it may not be a file."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f"{option}: expected a folder to write the files into, but {path} is a file")
