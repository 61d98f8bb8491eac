"""The bench's §8 baselines: each framework's idiomatic copy of a network takes convlab's steps from its weights."""

from __future__ import annotations

import numpy as np
import pytest

import convlab as cl
from convlab.backends.reference import reference_function
from convlab.nn.losses import SoftmaxCrossEntropy

DETERMINISTIC = ["bn_lenet", "googlenet", "resnet18", "densenet"]
"""The networks without dropout: in training mode a step depends only on the weights and the batch."""
WITH_DROPOUT = ["alexnet", "vgg", "nin"]
"""The networks whose idiomatic copies drop units with the framework's own generator, unlike convlab's seeded layers."""
STEPS = 3
LR = 0.01
"""Small steps: where float32 rounding flips a ReLU near zero (ResNet's and DenseNet's do on Paddle), the losses part
by about the step size; at lr 0.1 that is 1e-4 by the third step, at 0.01 ten times less."""


def idiomatic_step(backend, model, X, y, lr):
    function = reference_function(backend, "idiomatic_modern_step")
    if function is None:
        pytest.skip(f"{backend.name}'s reference module provides no idiomatic §8 networks to compare")
    net = getattr(cl.models, model)(seed=0)
    weights = {name: cl.to_numpy(value).copy() for name, value in cl.parameters(net).items()}
    step = function(model, weights, lr, X, y)
    if step is None:
        pytest.skip(f"{backend.name}'s reference module has no idiomatic {model}")
    return net, step


def batch(size=8):
    rng = np.random.default_rng(5)
    return rng.random((size, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, size)


@pytest.mark.parametrize("model", DETERMINISTIC)
def test_an_idiomatic_network_takes_convlabs_steps(backend, model):
    X, y = batch()
    net, step = idiomatic_step(backend, model, X, y, LR)
    loss = SoftmaxCrossEntropy(backend)
    images, one_hot = backend.tensor(X), backend.tensor(np.eye(10, dtype=np.float32)[y])
    ours = []
    for _ in range(STEPS):
        value, grads = backend.value_and_grad(net, images, one_hot, loss)
        backend.sgd_update(net, grads, LR)
        ours.append(float(value))
    theirs = [step() for _ in range(STEPS)]
    assert ours[0] - ours[-1] > 5e-3  # the steps change the network, so equal losses check the updates too
    np.testing.assert_allclose(theirs, ours, rtol=1e-4)


@pytest.mark.parametrize("model", WITH_DROPOUT)
def test_an_idiomatic_network_with_dropout_learns_a_batch(backend, model):
    X, y = batch()
    _, step = idiomatic_step(backend, model, X, y, 0.05)
    losses = [step() for _ in range(12)]
    assert all(isinstance(value, float) and np.isfinite(value) for value in losses)
    # at Xavier's initial weights the loss starts near log(10); steps on one batch fit it (dropout adds noise)
    assert losses[0] == pytest.approx(np.log(10), rel=0.1)
    assert np.mean(losses[-3:]) < losses[0], losses
