"""MXNet's compiled step: the core's forward pass traced into one ``mx.sym`` graph, run as a hybridized block runs.

``tests/train/test_steps.py`` compares compiled LeNet steps with eager ones
on every backend; these tests cover what only the tracing meets: state
written back (dropout's step counter), host-drawn dropout masks fed at every
run, a graph per mode, and the forward passes that cannot be traced. The
reference is always the adapter's eager step on an identical model.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import convlab as cl
from convlab.backends.base import CompileUnavailableError
from convlab.nn.losses import SoftmaxCrossEntropy, SquaredError

if importlib.util.find_spec("mxnet") is None:
    pytest.skip("mxnet is not installed (pip install --no-deps mxnet==1.9.1)", allow_module_level=True)


@pytest.fixture
def backend():
    with cl.use_backend("mxnet") as active:
        yield active


def _batch(backend, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, 28, 28), dtype=np.float32)
    return backend.tensor(X), backend.one_hot(backend.labels(rng.integers(0, 10, n)), 10)


def _train(backend, make, compiled, batches, loss=SoftmaxCrossEntropy):
    net = make()
    step = (backend.compiled_train_step if compiled else backend.train_step)(net, loss(backend), 0.1)
    losses = [float(step(X, Y)) for X, Y in batches]
    arrays = {**cl.parameters(net), **cl.state(net)}
    return losses, {name: cl.to_numpy(value) for name, value in arrays.items()}


def test_seeded_dropout_masks_and_its_step_counter_follow_the_eager_steps(backend):
    """Mini AlexNet: NumPy draws each mask from the layer's step, read before every run of the graph."""
    batches = [_batch(backend, 8, seed) for seed in range(3)]
    eager, eager_arrays = _train(backend, lambda: cl.models.alexnet(seed=0), False, batches)
    compiled, compiled_arrays = _train(backend, lambda: cl.models.alexnet(seed=0), True, batches)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    assert eager_arrays.keys() == compiled_arrays.keys()
    for name, value in eager_arrays.items():
        np.testing.assert_allclose(compiled_arrays[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
    steps = [name for name in eager_arrays if name.endswith("step")]
    assert steps and all(compiled_arrays[name] == 3 for name in steps)


def test_unseeded_dropout_draws_a_new_mask_at_every_run(backend):
    net = cl.nn.Sequential(cl.nn.Flatten(), cl.nn.Dropout(0.5), cl.nn.Linear(64, 1, seed=0))
    step = backend.compiled_train_step(net, SquaredError(backend), 0.0)  # lr 0: only the mask changes the loss
    X, Y = backend.tensor(np.ones((1, 64), np.float32)), backend.tensor(np.zeros((1, 1), np.float32))
    losses = {float(step(X, Y)) for _ in range(4)}
    assert len(losses) == 4


def test_a_layer_switched_to_evaluation_mode_gets_its_own_graph(backend):
    """BN-LeNet with its batch norm in evaluation mode normalises by the running statistics, as eagerly."""
    batches = [_batch(backend, 16, seed) for seed in range(2)]

    def run(compiled):
        net = cl.models.bn_lenet(seed=0)
        step = (backend.compiled_train_step if compiled else backend.train_step)(net, SoftmaxCrossEntropy(backend), 0.1)
        losses = [float(step(*batches[0]))]
        cl.nn.set_training(backend.submodules(net)[1], False)
        losses += [float(step(*batches[1]))]
        return losses, {name: cl.to_numpy(value) for name, value in cl.state(net).items()}

    (eager, eager_state), (compiled, compiled_state) = run(False), run(True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    for name, value in eager_state.items():
        np.testing.assert_allclose(compiled_state[name], value, rtol=1e-5, atol=1e-7, err_msg=name)


def test_a_forward_pass_that_reads_a_value_cannot_compile(backend):
    class Clipped(cl.nn.Module):
        def __init__(self):
            self.linear = cl.nn.Linear(4, 2, seed=0)

        def forward(self, X):
            return self.linear(X) if float(cl.to_numpy(X).max()) < 1 else X

    step = backend.compiled_train_step(Clipped(), SquaredError(backend), 0.1)
    X, Y = backend.tensor(np.zeros((2, 4), np.float32)), backend.tensor(np.zeros((2, 2), np.float32))
    with pytest.raises(CompileUnavailableError, match="reads a tensor's value"):
        step(X, Y)


def test_a_state_written_twice_in_one_step_cannot_compile(backend):
    """Eagerly the second call of a batch norm reads the running statistics the first wrote; a graph would not."""
    bn = cl.nn.BatchNorm1d(3)
    step = backend.compiled_train_step(cl.nn.Sequential(bn, bn), SquaredError(backend), 0.1)
    X, Y = backend.tensor(np.arange(6.0).reshape(2, 3)), backend.tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(CompileUnavailableError, match=r"updates its state .* twice"):
        step(X, Y)
