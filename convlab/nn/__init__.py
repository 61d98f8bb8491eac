"""``cl.nn``: the layers of a small CNN, written once, made as real modules of the active framework.

``cl.nn.Conv2d(1, 6, 5, padding=2)`` on the torch backend is an
``nn.Module``, on TensorFlow a Keras ``Layer``, on JAX a Flax NNX
``Module``, on MXNet a Gluon ``Block``; each holds its parameters the way
its framework does, so the framework's own optimisers train it, and each is
called on NCHW tensors of that framework. What a layer computes is one
frozen definition here (:class:`Conv2dDef`, :class:`Pool2dDef`, ...),
in terms of the backend protocol's primitives; the adapters only register
parameters and submodules.

Initial values: with an int ``seed``, NumPy draws them (Xavier-uniform
weights, zero biases, as the book's PyTorch tab initialises LeNet), so every
backend starts from the same numbers. With ``seed=None`` the framework's
own layer of that kind draws them (``torch.nn.Conv2d``'s Kaiming-uniform,
Keras' Glorot-uniform, ...), as a user of that framework would get.

Examples
--------
>>> import convlab as cl
>>> net = cl.nn.Sequential(cl.nn.Conv2d(1, 2, 3, padding=1, seed=0), cl.nn.ReLU(), cl.nn.MaxPool2d(2))
>>> net(cl.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])).shape
(1, 2, 1, 1)
"""

from convlab.nn.blocks import Module
from convlab.nn.dropout import Dropout
from convlab.nn.layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    parameters,
)
from convlab.nn.modes import is_training, set_training, state
from convlab.nn.normalization import BatchNorm1d, BatchNorm2d

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "is_training",
    "parameters",
    "set_training",
    "state",
]
