"""The chapters' models, defined once with :mod:`convlab.nn`: LeNet (§7.6) here, §8's in :mod:`convlab.nn.modern`."""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab._api import export
from convlab.core.checks import check_positive, check_seed
from convlab.nn import layers as nn
from convlab.nn.modern import alexnet, bn_lenet, densenet, googlenet, nin, resnet18, vgg

__all__ = ["alexnet", "bn_lenet", "densenet", "googlenet", "lenet", "nin", "resnet18", "vgg"]


def _layer_seeds(seed: int | None, count: int) -> list[int | None]:
    """One independent seed per weighted layer from ``seed`` (``None`` keeps every framework's initialiser)."""
    seed = check_seed(seed)
    if seed is None:
        return [None] * count
    return [int(state) for state in np.random.SeedSequence(seed).generate_state(count)]


@export(pinned=True, namespace="models")
def lenet(num_classes: int = 10, seed: int | None = None, *, activation: str = "sigmoid", pooling: str = "avg") -> Any:
    """LeNet-5 as d2l §7.6 builds it: sigmoid activations, average pooling, one ``cl.nn.Sequential``.

    Conv 6@5x5 (padding 2), sigmoid, avg-pool 2/2; conv 16@5x5, sigmoid,
    avg-pool 2/2; flatten, 120, sigmoid, 84, sigmoid, ``num_classes``. It
    takes ``(N, 1, 28, 28)`` images and returns logits.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer.
    seed : int, optional
        Xavier-uniform weights and zero biases drawn by NumPy (one seed per
        layer, from ``numpy.random.SeedSequence(seed)``), so every backend
        starts from the same numbers, as the book's PyTorch tab initialises
        LeNet. ``None`` keeps each framework's own initialisers.
    activation : {"sigmoid", "relu"}
        The activation after every layer but the last; ``"relu"`` is the
        modern variant of the section's first exercise.
    pooling : {"avg", "max"}
        The 2x2 pooling after each convolution.

    Examples
    --------
    >>> import convlab as cl
    >>> net = cl.models.lenet(seed=0)
    >>> [name for name, shape in cl.layer_summary(net, verbose=False)][:3]
    ['Conv2d', 'Sigmoid', 'AvgPool2d']
    """
    classes = int(check_positive(num_classes, "num_classes", integer=True))
    activations = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
    pools = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
    if activation not in activations:
        raise ValueError(f"activation: expected one of {sorted(activations)}, got {activation!r}")
    if pooling not in pools:
        raise ValueError(f"pooling: expected one of {sorted(pools)}, got {pooling!r}")
    Activation, Pool = activations[activation], pools[pooling]
    seeds = _layer_seeds(seed, 5)
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2, seed=seeds[0]),
        Activation(),
        Pool(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5, seed=seeds[1]),
        Activation(),
        Pool(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120, seed=seeds[2]),
        Activation(),
        nn.Linear(120, 84, seed=seeds[3]),
        Activation(),
        nn.Linear(84, classes, seed=seeds[4]),
    )
