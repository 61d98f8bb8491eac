"""NumPy's reference code for ``convlab bench`` (see :mod:`convlab.backends.reference`).

The book has no NumPy tab, and NumPy has no layers: this module has no book
tab, no framework conv layer and no idiomatic LeNet, which the reports show as
not provided.
"""

from __future__ import annotations

import numpy as np

from convlab.backends.base import Backend, Pair

AUTOGRAD_OUTCOME = ("no gradient", "no gradient for weight")
"""The book's loop layer under :func:`convlab.autograd_exercise`: writing into ``np.zeros`` drops convlab's graph."""


def book_train_kernel(
    backend: Backend, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
) -> list[float]:
    """The plain loop one would write for the book's training, with the gradient by hand (the book has no NumPy tab)."""
    windows = np.lib.stride_tricks.sliding_window_view(X, kernel_size)
    weight = np.zeros(kernel_size, dtype=np.float32)
    losses = []
    for _ in range(num_epochs):
        diff = np.einsum("ijab,ab->ij", windows, weight) - Y
        losses.append(float((diff**2).sum()))
        weight -= lr * 2 * np.einsum("ijab,ij->ab", windows, diff)
    return losses
