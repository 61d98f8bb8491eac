"""LeNet's loss and gradients against an anchor that needs no framework: NumPy in float64, and finite differences.

The reference network below is written from the book's description with
SciPy's correlation (``tests/reference.py``) and plain NumPy, in float64; it
shares no code with convlab's layers or its autograd. NumPy's backend must
give its loss, and gradients that finite differences of it confirm, on a
small batch; so LeNet's training on NumPy has an independent anchor even
where PyTorch is not installed (every ``nox`` session).
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import lenet_loss_reference as reference_loss

import convlab as cl
from convlab.nn.losses import SoftmaxCrossEntropy

BATCH = 4


@pytest.fixture(scope="module")
def lenet_on_numpy():
    rng = np.random.default_rng(76)
    X = rng.random((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)
    with cl.use_backend("numpy") as backend:
        model = cl.models.lenet(seed=0)
        params = {name: np.asarray(value, dtype=np.float64) for name, value in cl.parameters(model).items()}
        Y = np.eye(10, dtype=np.float32)[y]
        loss, grads = backend.value_and_grad(model, X, Y, SoftmaxCrossEntropy(backend))
    return params, X.astype(np.float64), y, loss, {name: np.asarray(g, dtype=np.float64) for name, g in grads.items()}


def test_numpy_lenet_loss_equals_the_float64_reference(lenet_on_numpy):
    params, X, y, loss, _ = lenet_on_numpy
    assert loss == pytest.approx(reference_loss(params, X, y), rel=2e-6)


@pytest.mark.parametrize(
    "name", ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "9.bias", "11.weight", "11.bias"]
)
def test_numpy_lenet_gradients_match_finite_differences_of_the_reference(lenet_on_numpy, name):
    params, X, y, _, grads = lenet_on_numpy
    rng = np.random.default_rng([76, len(name), params[name].size])
    picked = [np.unravel_index(i, params[name].shape) for i in rng.choice(params[name].size, 6, replace=False)]
    eps = 1e-5
    for index in picked:
        nudged = {key: value.copy() for key, value in params.items()}
        nudged[name][index] += eps
        up = reference_loss(nudged, X, y)
        nudged[name][index] -= 2 * eps
        down = reference_loss(nudged, X, y)
        numeric = (up - down) / (2 * eps)
        # float32 gradients against float64 differences: agreement to float32's precision, scaled by the largest
        scale = np.abs(grads[name]).max()
        assert grads[name][index] == pytest.approx(numeric, rel=1e-3, abs=1e-4 * scale), (name, index)
