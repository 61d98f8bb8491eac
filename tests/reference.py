"""Independent references the suites compare against (SciPy and plain float64 NumPy)."""

from __future__ import annotations

import numpy as np
from scipy import signal

BOOK_LOSSES = {2: 4.915, 4: 0.825, 6: 0.138, 8: 0.023, 10: 0.004}
"""Loss at iterations 2, 4, ..., 10 of the book's training run from a zero kernel."""
BOOK_KERNEL = np.array([[0.9885, -0.9885]])


def correlate(X, K) -> np.ndarray:
    return signal.correlate2d(np.asarray(X, np.float64), np.asarray(K, np.float64), mode="valid")


def convolve(X, K) -> np.ndarray:
    return signal.convolve2d(np.asarray(X, np.float64), np.asarray(K, np.float64), mode="valid")


def summed_squared_error(X, Y, weight, bias=0.0) -> float:
    return float(((correlate(X, weight) + bias - np.asarray(Y, np.float64)) ** 2).sum())


def finite_difference_gradient(X, Y, weight, bias, eps=1e-4):
    """Central differences of the summed squared error, in float64."""
    weight = np.asarray(weight, np.float64)
    grad_w = np.zeros_like(weight)
    for index in np.ndindex(weight.shape):
        step = np.zeros_like(weight)
        step[index] = eps
        grad_w[index] = (
            summed_squared_error(X, Y, weight + step, bias) - summed_squared_error(X, Y, weight - step, bias)
        ) / (2 * eps)
    grad_b = (summed_squared_error(X, Y, weight, bias + eps) - summed_squared_error(X, Y, weight, bias - eps)) / (
        2 * eps
    )
    return grad_w, grad_b
