"""The chapter's data: its example inputs, and Fashion-MNIST for LeNet.

The example inputs are float32 NumPy arrays, which every backend accepts;
:class:`FashionMNIST` yields minibatches of the active backend's tensors.
"""

from convlab.data.examples import diagonal_image, edge_image, fig_correlation
from convlab.data.fashion_mnist import FashionMNIST

__all__ = ["FashionMNIST", "diagonal_image", "edge_image", "fig_correlation"]
