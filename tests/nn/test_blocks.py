"""Blocks written once (``cl.nn.Module``), ``cl.concat``, ``cl.relu``, adaptive pooling and modes, on every backend.

References: float64 NumPy (a residual block's and an inception-style
block's forward pass recomputed from the parameters), PyTorch's windows of
adaptive pooling re-derived with loops, finite differences through
``cl.gradcheck``.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import conv2d_reference

import convlab as cl
from convlab.nn.losses import SquaredError

RNG = np.random.default_rng(21)
X = RNG.normal(size=(2, 3, 6, 6)).astype(np.float32)


class Residual(cl.nn.Module):
    """d2l §8.6's block, without batch norm (the normalisation tests cover it)."""

    def __init__(self, channels, use_1x1=False):
        self.conv1 = cl.nn.Conv2d(channels, 4, 3, padding=1, seed=1)
        self.conv2 = cl.nn.Conv2d(4, 4, 3, padding=1, seed=2)
        self.conv3 = cl.nn.Conv2d(channels, 4, 1, seed=3) if use_1x1 else None
        self.gain = 0.5

    def forward(self, X):
        Y = self.conv2(cl.relu(self.conv1(X)))
        if self.conv3 is not None:
            X = self.conv3(X)
        return cl.relu(Y * self.gain + X)


class TwoBranches(cl.nn.Module):
    """An inception-style block: two branches joined along the channels."""

    def __init__(self):
        self.branch1 = cl.nn.Conv2d(3, 2, 1, seed=4)
        self.branch2 = cl.nn.Sequential(cl.nn.Conv2d(3, 1, 3, padding=1, seed=5), cl.nn.ReLU())

    def forward(self, X):
        return cl.concat([self.branch1(X), self.branch2(X)], axis=1)


def conv(params, prefix, x, padding):
    return (
        conv2d_reference(x, params[f"{prefix}.weight"], (1, 1), (padding,) * 4, 1)
        + params[f"{prefix}.bias"][None, :, None, None]
    )


def test_a_residual_block_computes_its_forward_and_names_its_parameters(backend):
    block = Residual(3, use_1x1=True)
    assert isinstance(block, Residual) and not isinstance(block, TwoBranches)
    params = {name: cl.to_numpy(value).astype(np.float64) for name, value in cl.parameters(block).items()}
    assert sorted(params) == sorted(f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias"))
    x = X.astype(np.float64)
    Y = conv(params, "conv2", np.maximum(conv(params, "conv1", x, 1), 0), 1)
    expected = np.maximum(Y * 0.5 + conv(params, "conv3", x, 0), 0)
    np.testing.assert_allclose(cl.to_numpy(block(cl.tensor(X))), expected, rtol=1e-4, atol=1e-5)


def test_concatenating_blocks_train_through_every_branch(backend):
    net = cl.nn.Sequential(TwoBranches(), cl.nn.AdaptiveAvgPool2d(1), cl.nn.Flatten(), cl.nn.Linear(3, 2, seed=6))
    assert sorted(cl.parameters(net)) == [
        "0.branch1.bias", "0.branch1.weight", "0.branch2.0.bias", "0.branch2.0.weight", "3.bias", "3.weight",
    ]  # fmt: skip
    assert cl.layer_summary(net, (1, 3, 6, 6), verbose=False)[0] == ("TwoBranches", (1, 3, 6, 6))
    target = cl.tensor(RNG.normal(size=(2, 2)))
    _, grads = backend.value_and_grad(net, cl.tensor(X), target, SquaredError(backend))
    assert all(g is not None and np.any(cl.to_numpy(g) != 0) for g in grads.values())


def test_blocks_pass_gradcheck(backend):
    block = Residual(3, use_1x1=True)

    def f(x):
        return cl.get_backend().sum(cl.concat([block(x), x], axis=1) ** 2)

    result = cl.gradcheck(f, RNG.normal(size=(1, 3, 4, 4)))
    assert result.passed, result


def test_adaptive_average_pooling_uses_pytorchs_windows(backend):
    x = RNG.normal(size=(2, 3, 7, 5)).astype(np.float32)
    for out in [(1, 1), (3, 2), (7, 5), (2, 4)]:
        expected = np.zeros((2, 3, *out))
        for i in range(out[0]):
            for j in range(out[1]):
                rows = slice(i * 7 // out[0], -(-(i + 1) * 7 // out[0]))
                cols = slice(j * 5 // out[1], -(-(j + 1) * 5 // out[1]))
                expected[:, :, i, j] = x[:, :, rows, cols].astype(np.float64).mean(axis=(2, 3))
        np.testing.assert_allclose(
            cl.to_numpy(cl.nn.AdaptiveAvgPool2d(out)(cl.tensor(x))), expected, rtol=1e-5, atol=1e-6
        )


def test_set_training_reaches_the_layers_inside_blocks(backend):
    class Dropping(cl.nn.Module):
        def __init__(self):
            self.drop = cl.nn.Dropout(0.5, seed=0)

        def forward(self, X):
            return self.drop(X)

    net = cl.nn.Sequential(Dropping())
    ones = cl.tensor(np.ones((4, 4)))
    assert cl.nn.is_training(net)
    assert np.any(cl.to_numpy(net(ones)) == 0)
    cl.nn.set_training(net, False)
    np.testing.assert_array_equal(cl.to_numpy(net(ones)), np.ones((4, 4)))


def test_concat_and_blocks_refuse_bad_input_by_name():
    with pytest.raises(ValueError, match=r"every dimension but axis 1 must agree.*\(1, 2, 3, 3\).*\(1, 2, 4, 4\)"):
        cl.concat([np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 4, 4))], axis=1)
    with pytest.raises(ValueError, match=r"axis: expected an int in \[-2, 2\)"):
        cl.concat([np.zeros((1, 2))], axis=2)
    with pytest.raises(TypeError, match=r"tensors: expected a non-empty list or tuple"):
        cl.concat([], axis=0)

    class Bad(cl.nn.Module):
        def __init__(self):
            self.conv = cl.nn.Conv2d(1, 1, 1, seed=0)

        def forward(self, X):
            return (self.conv(X), X)

    with pytest.raises(TypeError, match=r"Bad\.forward: expected it to return a tensor of the numpy backend, got"):
        Bad()(np.zeros((1, 1, 2, 2), dtype=np.float32))

    class Listed(cl.nn.Module):
        def __init__(self):
            self.convs = [cl.nn.Conv2d(1, 1, 1, seed=0)]

        def forward(self, X):
            return X

    with pytest.raises(
        TypeError, match=r"Listed\.convs: a list of layers is not registered; hold them as cl\.nn\.Sequential"
    ):
        Listed()

    class NoForward(cl.nn.Module):
        pass

    with pytest.raises(TypeError, match=r"NoForward: a cl\.nn\.Module subclass must define forward"):
        NoForward()


def test_a_block_called_on_numpy_data_gets_a_tensor_of_its_backend(backend):
    class AddInput(cl.nn.Module):
        def __init__(self):
            self.conv = cl.nn.Conv2d(2, 2, 1, seed=0)

        def forward(self, X):
            assert isinstance(X, cl.get_backend().tensor_types)
            return self.conv(X) + X

    X = np.ones((1, 2, 3, 3), dtype=np.float32)
    assert tuple(AddInput()(X).shape) == (1, 2, 3, 3)
