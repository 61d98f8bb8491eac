"""The NumPy backend: the reference every other backend is tested against.

NumPy has no autograd and no conv layer, so the layers here are the core's
:class:`~convlab.layers.ReferenceConv2D`, whose backward pass is written by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab.backends.base import Backend, Forward, Loss


class NumpyBackend(Backend):
    name = "numpy"

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
        # The core's shift-and-add, with in-place updates so that only the
        # output and one output-sized scratch buffer are ever allocated.
        h, w = K.shape
        out_h, out_w = X.shape[0] - h + 1, X.shape[1] - w + 1
        Y = np.multiply(X[:out_h, :out_w], K[0, 0])
        scratch = np.empty_like(Y)
        for a in range(h):
            for b in range(w):
                if a or b:
                    np.multiply(X[a : a + out_h, b : b + out_w], K[a, b], out=scratch)
                    Y += scratch
        return Y

    def corr2d_native(self, X: np.ndarray, K: np.ndarray) -> np.ndarray:
        windows = np.lib.stride_tricks.sliding_window_view(X, K.shape)
        return np.einsum("ijab,ab->ij", windows, K).astype(np.float32, copy=False)

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
