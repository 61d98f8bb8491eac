"""``cl.nn.BatchNorm2d`` / ``BatchNorm1d`` on every backend, against a float64 NumPy derivation and PyTorch's own layer.

The reference follows the book's formula (d2l §8.5, as corrected by d2l-en PR
#2213) and PyTorch's documented conventions: the batch's biased variance
normalises, the running variance moves towards the unbiased one.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import convlab as cl
from convlab.nn.losses import SquaredError

RNG = np.random.default_rng(8)
X4 = RNG.normal(2.0, 3.0, size=(4, 3, 5, 6)).astype(np.float32)
X2 = RNG.normal(-1.0, 2.0, size=(6, 5)).astype(np.float32)


def batch_norm_reference(batches, gamma, beta, eps=1e-5, momentum=0.1, spatial=True):
    """Outputs of each training step and the running statistics after them, in float64."""
    axes = (0, 2, 3) if spatial else (0,)
    shape = (1, -1, 1, 1) if spatial else (1, -1)
    running_mean, running_var = np.zeros(len(gamma)), np.ones(len(gamma))
    outputs = []
    for X in batches:
        X = X.astype(np.float64)
        mean, var = X.mean(axis=axes), X.var(axis=axes)
        count = X.size // X.shape[1]
        outputs.append(
            gamma.reshape(shape) * (X - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) + beta.reshape(shape)
        )
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var * count / (count - 1)
    return outputs, running_mean, running_var


def eval_reference(X, gamma, beta, running_mean, running_var, eps=1e-5, spatial=True):
    shape = (1, -1, 1, 1) if spatial else (1, -1)
    X = X.astype(np.float64)
    return gamma.reshape(shape) * (X - running_mean.reshape(shape)) / np.sqrt(
        running_var.reshape(shape) + eps
    ) + beta.reshape(shape)


@pytest.mark.parametrize("spatial", [True, False], ids=["2d", "1d"])
def test_training_steps_and_running_statistics_match_the_float64_derivation(backend, spatial):
    X = X4 if spatial else X2
    bn = cl.nn.BatchNorm2d(X.shape[1], momentum=0.2) if spatial else cl.nn.BatchNorm1d(X.shape[1], momentum=0.2)
    batches = [X, X * 0.5 + 1.0, X[::-1] - 2.0]
    gamma, beta = np.ones(X.shape[1]), np.zeros(X.shape[1])
    outputs, running_mean, running_var = batch_norm_reference(batches, gamma, beta, momentum=0.2, spatial=spatial)
    for batch, expected in zip(batches, outputs, strict=True):
        np.testing.assert_allclose(
            cl.to_numpy(bn(cl.tensor(np.ascontiguousarray(batch)))), expected, rtol=1e-4, atol=1e-4
        )
    state = {name: cl.to_numpy(value) for name, value in cl.state(bn).items()}
    assert sorted(state) == ["running_mean", "running_var"]
    np.testing.assert_allclose(state["running_mean"], running_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["running_var"], running_var, rtol=1e-5, atol=1e-6)
    cl.nn.set_training(bn, False)
    assert not cl.nn.is_training(bn)
    np.testing.assert_allclose(
        cl.to_numpy(bn(cl.tensor(X))), eval_reference(X, gamma, beta, running_mean, running_var, spatial=spatial),
        rtol=1e-4, atol=1e-4,
    )  # fmt: skip
    after = {name: cl.to_numpy(value) for name, value in cl.state(bn).items()}
    np.testing.assert_array_equal(after["running_mean"], state["running_mean"])  # evaluation leaves them


def test_statistics_are_state_not_parameters(backend):
    bn = cl.nn.BatchNorm2d(3)
    assert sorted(cl.parameters(bn)) == ["bias", "weight"]
    assert sorted(cl.state(bn)) == ["running_mean", "running_var"]
    net = cl.nn.Sequential(cl.nn.Conv2d(3, 3, 1, seed=0), bn)
    assert sorted(cl.state(net)) == ["1.running_mean", "1.running_var"]
    _, grads = backend.value_and_grad(net, cl.tensor(X4), cl.tensor(np.zeros((4, 3, 5, 6))), SquaredError(backend))
    assert sorted(grads) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    mean = cl.to_numpy(cl.state(net)["1.running_mean"])
    assert np.all(mean != 0)  # the step moved them, outside the gradient
    before = {name: cl.to_numpy(value).copy() for name, value in cl.state(net).items()}
    backend.sgd_update(net, grads, 0.1)
    for name, value in cl.state(net).items():
        np.testing.assert_array_equal(cl.to_numpy(value), before[name])  # the update step does not touch them


def test_gradients_through_batch_norm_pass_gradcheck(backend):
    bn = cl.nn.BatchNorm2d(3)
    weights = RNG.normal(size=(2, 3, 3, 2))

    def f(x):
        return cl.get_backend().sum((bn(x) ** 2) * cl.tensor(weights))

    result = cl.gradcheck(f, RNG.normal(size=(2, 3, 3, 2)))
    assert result.passed, result


def batch_norm_gradients_reference(X, gamma, beta, upstream, eps=1e-5):
    """``d sum(upstream * Y) / d (X, gamma, beta)`` in float64, from the chain rule through the batch's statistics."""
    axes = (0, 2, 3) if X.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if X.ndim == 4 else (1, -1)
    X, upstream = X.astype(np.float64), upstream.astype(np.float64)
    inverse_std = 1 / np.sqrt(X.var(axis=axes, keepdims=True) + eps)
    normalised = (X - X.mean(axis=axes, keepdims=True)) * inverse_std
    d_normalised = upstream * gamma.reshape(shape)
    d_X = inverse_std * (
        d_normalised
        - d_normalised.mean(axis=axes, keepdims=True)
        - normalised * (d_normalised * normalised).mean(axis=axes, keepdims=True)
    )
    return d_X, (upstream * normalised).sum(axis=axes), upstream.sum(axis=axes)


@pytest.mark.parametrize("shape", [(8, 3, 6, 5), (32, 16, 9, 9), (12, 7)], ids=["small", "many", "1d"])
def test_float32_batch_norm_and_its_gradients_match_the_float64_derivation(backend, shape):
    # In float32, where a framework's fused kernel computes (the float64 gradcheck above runs the composed one).
    rng = np.random.default_rng(sum(shape))
    X = rng.normal(2.0, 3.0, size=shape).astype(np.float32)
    gamma, beta = rng.normal(1.0, 0.5, size=shape[1]), rng.normal(size=shape[1])
    upstream = rng.normal(size=shape)
    axes = (0, 2, 3) if len(shape) == 4 else (0,)
    Y, mean, variance = backend.batch_norm(
        cl.tensor(X), cl.tensor(gamma.astype(np.float32)), cl.tensor(beta.astype(np.float32)), 1e-5
    )
    (expected,), _, _ = batch_norm_reference([X], gamma, beta, spatial=len(shape) == 4)
    np.testing.assert_allclose(cl.to_numpy(Y), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cl.to_numpy(mean), X.astype(np.float64).mean(axis=axes), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cl.to_numpy(variance), X.astype(np.float64).var(axis=axes), rtol=1e-5)

    def total(x, weight, bias):
        active = cl.get_backend()
        return active.sum(active.batch_norm(x, weight, bias, 1e-5)[0] * active.tensor(upstream))

    _, grads = backend.grad(total, X, gamma.astype(np.float32), beta.astype(np.float32))
    expected = batch_norm_gradients_reference(X, gamma, beta, upstream)
    for got, want, name in zip(grads, expected, ("X", "gamma", "beta"), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max(), err_msg=name)


def test_a_batch_of_one_in_training_mode_is_refused_by_name(backend):
    with pytest.raises(ValueError, match=r"BatchNorm1d: in training mode each channel needs more than one value"):
        cl.nn.BatchNorm1d(3)(cl.tensor(np.ones((1, 3))))
    bn = cl.nn.set_training(cl.nn.BatchNorm1d(3), False)
    np.testing.assert_allclose(
        cl.to_numpy(bn(cl.tensor(np.ones((1, 3))))), np.ones((1, 3)) / np.sqrt(1 + 1e-5), rtol=1e-6
    )


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match=r"momentum: expected a number in \[0, 1\], got 1.5"):
        cl.nn.BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"eps: expected a positive number, got 0"):
        cl.nn.BatchNorm2d(3, eps=0)
    with pytest.raises(
        ValueError, match=r"BatchNorm2d: expected an input of shape \(N, C, H, W\) with C = num_features = 3"
    ):
        cl.nn.BatchNorm2d(3)(np.ones((2, 4, 2, 2), dtype=np.float32))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_running_statistics_equal_pytorchs_own_layer_after_n_steps(backend):
    import torch

    ours, theirs = cl.nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    for step in range(5):
        X = (X4 * (step + 1) + step).astype(np.float32)
        np.testing.assert_allclose(
            cl.to_numpy(ours(cl.tensor(X))), theirs(torch.from_numpy(X)).detach().numpy(), rtol=1e-4, atol=1e-4
        )
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(cl.to_numpy(cl.state(ours)[name]), getattr(theirs, name).numpy(), rtol=1e-5)
