"""``cl.nn.Dropout`` on every backend: seeded masks equal NumPy's on every step; inverted scaling; identity in eval."""

from __future__ import annotations

import numpy as np
import pytest

import convlab as cl
from convlab.nn.dropout import seeded_keep_mask


def numpy_mask(seed, p, shape, step):
    """An independent derivation: NumPy's generator seeded with (seed, step), keep where U >= p, scale 1/(1-p)."""
    uniform = np.random.default_rng([seed, step]).random(shape)
    return np.where(uniform >= p, 1.0 / (1.0 - p), 0.0)


def test_seeded_masks_are_numpys_on_every_step_and_every_backend(backend):
    drop = cl.nn.Dropout(0.3, seed=11)
    X = np.arange(1.0, 25.0, dtype=np.float32).reshape(2, 3, 4)
    for step in range(3):
        np.testing.assert_allclose(cl.to_numpy(drop(cl.tensor(X))), X * numpy_mask(11, 0.3, X.shape, step), rtol=1e-6)
    assert float(cl.to_numpy(cl.state(drop)["step"])) == 3


def test_the_seeded_mask_function_is_the_documented_one():
    np.testing.assert_allclose(seeded_keep_mask(5, 0.5, (3, 7), np.float32(4)) * 2.0, numpy_mask(5, 0.5, (3, 7), 4))


def test_evaluation_mode_is_the_identity_and_keeps_the_step(backend):
    drop = cl.nn.set_training(cl.nn.Dropout(0.9, seed=0), False)
    X = np.ones((4, 5), dtype=np.float32)
    np.testing.assert_array_equal(cl.to_numpy(drop(cl.tensor(X))), X)
    assert float(cl.to_numpy(cl.state(drop)["step"])) == 0


def test_unseeded_dropout_uses_the_framework_generator_with_the_right_rate_and_scale(backend):
    drop = cl.nn.Dropout(0.25)
    Y = cl.to_numpy(drop(cl.tensor(np.ones((200, 200), dtype=np.float32))))
    np.testing.assert_allclose(np.unique(Y), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((Y == 0).mean() - 0.25) < 0.01  # 40,000 draws: the rate's standard error is 0.002


def test_the_gradient_is_the_mask(backend):
    net = cl.nn.Sequential(cl.nn.Linear(6, 6, bias=False, seed=0), cl.nn.Dropout(0.5, seed=3))
    X = cl.tensor(np.eye(6))

    def loss(Y_hat, Y):
        return backend.sum(Y_hat * Y)

    _, grads = backend.value_and_grad(net, X, cl.tensor(np.ones((6, 6))), loss)
    mask = numpy_mask(3, 0.5, (6, 6), 0)
    # d/dW sum(mask * (X W^T)) with X = I is mask^T
    np.testing.assert_allclose(cl.to_numpy(grads["0.weight"]), mask.T, rtol=1e-6)


@pytest.mark.parametrize("p", [-0.1, 1.0, 2])
def test_p_outside_zero_one_is_refused_by_name(p):
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\)"):
        cl.nn.Dropout(p)


def test_a_bad_seed_is_refused_by_name():
    with pytest.raises(TypeError, match=r"seed: expected an int or None, got 1.5"):
        cl.nn.Dropout(0.5, seed=1.5)


def test_two_unseeded_layers_drop_different_units(backend):
    first, second = cl.nn.Dropout(0.5), cl.nn.Dropout(0.5)
    ones = cl.tensor(np.ones((20, 20), dtype=np.float32))
    assert not np.array_equal(cl.to_numpy(first(ones)), cl.to_numpy(second(ones)))  # equal by chance: 2**-400
