"""Hand-designed kernels (the chapter's edge detector and exercise 4), as float32 NumPy arrays.

All kernels are meant for :func:`convlab.corr2d`, which does not flip them.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["edge", "finite_difference", "integral", "laplacian", "min_kernel_size", "second_derivative"]


def _check_int(value: object, name: str, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def edge() -> np.ndarray:
    """The chapter's 1x2 vertical-edge detector ``[[1, -1]]``.

    Examples
    --------
    >>> edge()
    array([[ 1., -1.]], dtype=float32)
    """
    return np.array([[1.0, -1.0]], dtype=np.float32)


def finite_difference(d: int) -> np.ndarray:
    """The 1 x (d+1) forward difference of degree ``d`` along the width.

    ``K[0, k] = (-1)**(d - k) * binom(d, k)``, so ``corr2d(X, K)[i, j]`` is
    the ``d``-th forward difference of row ``i`` at ``j``, the discrete
    ``d``-th derivative (grid step 1). Degree 0 is the identity ``[[1]]``.

    Examples
    --------
    >>> finite_difference(1)
    array([[-1.,  1.]], dtype=float32)
    >>> finite_difference(3)
    array([[-1.,  3., -3.,  1.]], dtype=float32)
    """
    d = _check_int(d, "d", 0)
    return np.array([[(-1) ** (d - k) * math.comb(d, k) for k in range(d + 1)]], dtype=np.float32)


def min_kernel_size(d: int) -> int:
    """The fewest taps a kernel needs to produce a derivative of degree ``d``: ``d + 1``.

    A kernel with ``m`` taps annihilates every polynomial it cannot tell
    apart from zero; with ``m <= d`` taps it cannot separate ``x**d`` from a
    combination of lower powers (the ``m x (d+1)`` Vandermonde system has a
    null space), so it cannot return the ``d``-th derivative. ``d + 1`` taps
    suffice: :func:`finite_difference`.

    Examples
    --------
    >>> min_kernel_size(2)
    3
    """
    return _check_int(d, "d", 0) + 1


def second_derivative() -> np.ndarray:
    """The 1x3 second-difference kernel ``[[1, -2, 1]]`` (second derivative along the width).

    Examples
    --------
    >>> second_derivative()
    array([[ 1., -2.,  1.]], dtype=float32)
    """
    return finite_difference(2)


def laplacian() -> np.ndarray:
    """The 3x3 five-point Laplacian: second derivatives along height and width, summed.

    Examples
    --------
    >>> laplacian()
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]], dtype=float32)
    """
    K = np.zeros((3, 3), dtype=np.float32)
    K[1, :] += second_derivative()[0]
    K[:, 1] += second_derivative()[0]
    return K


def integral(n: int = 3) -> np.ndarray:
    """An ``n x n`` box of ones: each output is the sum (discrete integral) of its ``n x n`` window.

    Examples
    --------
    >>> integral(2)
    array([[1., 1.],
           [1., 1.]], dtype=float32)
    """
    return np.ones((_check_int(n, "n", 1),) * 2, dtype=np.float32)
