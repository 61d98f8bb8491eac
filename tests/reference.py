"""Independent references the suites compare against (SciPy and plain float64 NumPy)."""

from __future__ import annotations

import numpy as np
from scipy import signal
from scipy.special import expit, log_softmax

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


def conv2d_reference(x, w, stride, padding, groups):
    """Grouped, strided, padded cross-correlation from scipy.signal.correlate, channel by channel."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    N = x.shape[0]
    C_out, C_group, _, _ = w.shape
    per_group = C_out // groups
    out = []
    for n in range(N):
        maps = []
        for o in range(C_out):
            g = o // per_group
            full = sum(
                signal.correlate(xp[n, g * C_group + c], w[o, c], mode="valid", method="direct") for c in range(C_group)
            )
            maps.append(full[:: stride[0], :: stride[1]])
        out.append(maps)
    return np.array(out)


def pool2d_reference(x, window, stride, padding, mode):
    """Pooling with plain Python loops over every output pixel."""
    x = np.asarray(x, np.float64)
    top, bottom, left, right = padding
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    N, C, Hp, Wp = xp.shape
    kH, kW = window
    H_out, W_out = (Hp - kH) // stride[0] + 1, (Wp - kW) // stride[1] + 1
    out = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    patch = xp[n, c, i * stride[0] : i * stride[0] + kH, j * stride[1] : j * stride[1] + kW]
                    out[n, c, i, j] = patch.max() if mode == "max" else patch.sum() / (kH * kW)
    return out


def lenet_loss_reference(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    """The mean cross-entropy of d2l's sigmoid LeNet (average pooling), in float64."""
    h = expit(conv2d_reference(X, params["0.weight"], (1, 1), (2, 2, 2, 2), 1) + params["0.bias"][:, None, None])
    h = pool2d_reference(h, (2, 2), (2, 2), (0, 0, 0, 0), "avg")
    h = expit(conv2d_reference(h, params["3.weight"], (1, 1), (0, 0, 0, 0), 1) + params["3.bias"][:, None, None])
    h = pool2d_reference(h, (2, 2), (2, 2), (0, 0, 0, 0), "avg").reshape(len(X), -1)
    h = expit(h @ params["7.weight"].T + params["7.bias"])
    h = expit(h @ params["9.weight"].T + params["9.bias"])
    logits = h @ params["11.weight"].T + params["11.bias"]
    return float(-log_softmax(logits, axis=1)[np.arange(len(y)), y].mean())
