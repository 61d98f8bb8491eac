"""The NumPy backend: the reference every other backend is tested against.

NumPy has no autograd and no conv layer, so the layers here are the core's
:class:`~convlab.layers.ReferenceConv2D`, whose backward pass is written by hand.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from convlab.backends.base import Backend, Forward, Loss

_BLOCK = 1 << 16
"""Elements per row block of the shift-and-add: 256 KiB of float32, so the block stays in L2."""
_PARALLEL_MIN = 1 << 19
"""Output elements per thread below which splitting the work costs more than it saves."""


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="convlab-numpy")


class NumpyBackend(Backend):
    has_autograd = False

    def version(self) -> str:
        return np.__version__

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (np.ndarray,)

    def tensor(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype=np.float32)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def corr2d_loop(self, X: np.ndarray, K: np.ndarray) -> np.ndarray:
        h, w = K.shape
        Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=np.float32)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def corr2d_vectorized(self, X: np.ndarray, K: np.ndarray) -> np.ndarray:
        # The core's shift-and-add, fused, cache-blocked and split over the cores.
        # On the flattened input, kernel element (a, b) is the contiguous slice at
        # offset a * W + b: ``Y.flat[p] += K[a, b] * X.flat[p + a * W + b]`` where Y
        # has full rows of width W (its last k_w - 1 columns are junk, and the result
        # is the view without them). One einsum adds all k_h * k_w scaled slices;
        # order="F" makes it loop over pixels innermost, as a SIMD multiply-add (one
        # pass per kernel element, no temporaries; the default order runs a
        # k_h * k_w-term dot per pixel, ~30x slower). Rows go in blocks of ~_BLOCK
        # elements, so each block stays in L2 through all its passes. Large images
        # are split into one band of rows per core: einsum releases the GIL.
        h, w = K.shape
        W = X.shape[1]
        out_h, out_w = X.shape[0] - h + 1, W - w + 1
        flat = np.ascontiguousarray(X, dtype=np.float32).ravel()
        K = np.asarray(K, dtype=np.float32)
        full = np.empty(out_h * W, np.float32)
        rows = max(1, min(out_h, _BLOCK // W))

        def band(first: int, stop: int) -> None:
            for r in range(first, stop, rows):
                n = min(rows, stop - r)
                m = n * W - (w - 1 if r + n == out_h else 0)  # the last row's junk would read past X
                shifted = np.lib.stride_tricks.as_strided(
                    flat[r * W :], (h, w, m), (W * flat.itemsize, flat.itemsize, flat.itemsize), writeable=False
                )
                np.einsum("ab,abp->p", K, shifted, out=full[r * W : r * W + m], order="F")

        bands = min(os.cpu_count() or 1, max(1, out_h * W // _PARALLEL_MIN), out_h)
        edges = [out_h * i // bands for i in range(bands + 1)]
        others = [_pool().submit(band, edges[i], edges[i + 1]) for i in range(1, bands)]
        band(edges[0], edges[1])
        for other in others:
            other.result()
        return full.reshape(out_h, W)[:, :out_w]

    def corr2d_native(self, X: np.ndarray, K: np.ndarray) -> np.ndarray:
        # NumPy has no convolution: one einsum over the window view, a k_h * k_w-term
        # dot product per output pixel. The view is made by the ndarray constructor:
        # as_strided and sliding_window_view cost ~5 us a call, more than the
        # einsum on the chapter's images.
        h, w = K.shape
        X = np.ascontiguousarray(X)
        windows = np.ndarray((X.shape[0] - h + 1, X.shape[1] - w + 1, h, w), X.dtype, X, 0, X.strides * 2)
        return np.einsum("ijab,ab->ij", windows, K)

    def auto_method(self, x_shape: tuple[int, int], k_shape: tuple[int, int]) -> str:
        # The native einsum costs ~4 us plus ~3 ns per output pixel and kernel
        # element; the shift-and-add ~17 us a call (views, blocks, the thread
        # check), then far less per pixel. Microseconds, vectorized/native:
        # 16x16 3x3 17/8, 24x24 5x5 19/20, 32x32 3x3 19/23, 64x64 2x2 21/55.
        out = (x_shape[0] - k_shape[0] + 1) * (x_shape[1] - k_shape[1] + 1)
        return "native" if out * k_shape[0] * k_shape[1] <= 6000 else "vectorized"

    def conv2d_layer(self, kernel_size, weight, bias, forward: Forward) -> Any:
        from convlab.layers import ReferenceConv2D

        if weight is None:  # like the book's PyTorch tab: uniform on [0, 1)
            weight = np.random.default_rng().random(kernel_size, dtype=np.float32)
        return ReferenceConv2D(weight, bias, forward)

    def builtin_layer(self, kernel_size, weight) -> Any:
        from convlab.layers import make_forward

        return self.conv2d_layer(kernel_size, weight, None, make_forward("native", self))

    def parameters(self, layer: Any) -> dict[str, np.ndarray]:
        return {name: value.copy() for name, value in layer.parameters().items()}

    def value_and_grad(self, layer: Any, X: np.ndarray, Y: np.ndarray, loss: Loss):
        Y_hat = layer(X)
        return float(loss(Y_hat, Y)), layer.backward(X, loss.grad(Y_hat, Y))

    def sgd_update(self, layer: Any, grads: dict[str, np.ndarray], lr: float) -> None:
        params = layer.parameters()
        for name, grad in grads.items():
            params[name] -= lr * grad
