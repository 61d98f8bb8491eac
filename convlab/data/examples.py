"""The chapter's example inputs: float32 NumPy arrays, which every backend accepts."""

from __future__ import annotations

import numpy as np

from convlab.core.checks import check_positive


def fig_correlation() -> tuple[np.ndarray, np.ndarray]:
    """``(X, K)`` of the chapter's first figure: a 3x3 input and a 2x2 kernel.

    Examples
    --------
    >>> X, K = fig_correlation()
    >>> X
    array([[0., 1., 2.],
           [3., 4., 5.],
           [6., 7., 8.]], dtype=float32)
    >>> K
    array([[0., 1.],
           [2., 3.]], dtype=float32)
    """
    X = np.arange(9, dtype=np.float32).reshape(3, 3)
    K = np.arange(4, dtype=np.float32).reshape(2, 2)
    return X, K


def edge_image() -> np.ndarray:
    """The 6x8 image of the edge-detection section: ones, with columns 2 to 5 zero.

    Examples
    --------
    >>> edge_image()[0]
    array([1., 1., 0., 0., 0., 0., 1., 1.], dtype=float32)
    """
    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    return X


def diagonal_image(n: int = 8) -> np.ndarray:
    """An ``n x n`` image with a diagonal edge: ones on and below the diagonal, zeros above.

    Examples
    --------
    >>> diagonal_image(3)
    array([[1., 0., 0.],
           [1., 1., 0.],
           [1., 1., 1.]], dtype=float32)
    """
    n = check_positive(n, "n", integer=True)
    return np.tril(np.ones((n, n), dtype=np.float32))
