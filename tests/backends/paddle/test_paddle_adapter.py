"""What only the Paddle backend has to get right: its quiet import, its devices, and where Paddle's defaults differ.

The shared suites (conformance, primitives, gradients, ``cl.nn``) run on
Paddle through the registry; these tests pin the places where the adapter
works around Paddle's own behaviour, each against an independent reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from reference import pool2d_reference

import convlab as cl
from conftest import load_or_skip
from convlab import nn
from convlab.nn.losses import SoftmaxCrossEntropy, SquaredError


@pytest.fixture
def paddle_backend():
    """The Paddle backend, active for the test (skipped where Paddle is not installed)."""
    load_or_skip("paddle")
    with cl.use_backend("paddle") as backend:
        yield backend


def installed(name: str) -> bool:
    return next(row for row in cl.backend_info() if row.name == name).installed


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=False,
    )


@pytest.mark.parametrize("first", [None, "tensorflow"])
def test_selecting_paddle_prints_nothing(first):
    if not installed("paddle") or (first and not installed(first)):
        pytest.skip(f"needs paddle{' and ' + first if first else ''}")
    # With TensorFlow selected first, the registry imports Paddle ahead of it, just as quietly. The warnings
    # filter is scoped to Paddle's import (TensorFlow's own import changes the filters, so not compared there).
    select_first = f"cl.set_backend({first!r})" if first else ""
    filters_kept = "True" if first else "warnings.filters == before"
    result = run_python(
        f"""
        import warnings
        import convlab as cl
        before = list(warnings.filters)
        {select_first}
        cl.set_backend("paddle")
        print({filters_kept}, cl.to_numpy(cl.corr2d(*cl.data.fig_correlation())).tolist())
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "True [[19.0, 25.0], [37.0, 43.0]]\n"
    assert "ccache" not in result.stderr and "Warning" not in result.stderr, result.stderr[-3000:]


def test_selecting_paddle_leaves_the_root_logger_so_later_frameworks_stay_quiet():
    if not installed("paddle"):
        pytest.skip("needs paddle")
    others = [name for name in ("jax", "mxnet") if installed(name)]
    result = run_python(
        f"""
        import logging
        import convlab as cl
        root = logging.getLogger()
        before = (root.level, list(root.handlers))
        cl.set_backend("paddle")
        print((root.level, list(root.handlers)) == before)
        for name in {others!r}:  # each logs INFO lines at import (JAX's TPU probe, MXNet's NumPy semantics)
            cl.set_backend(name)
            cl.nn.Dropout(0.5, seed=0)(cl.tensor([[1.0, 2.0]]))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "True\n"
    assert "INFO" not in result.stderr, result.stderr[-3000:]


def test_devices_are_paddles_names(paddle_backend):
    import paddle

    assert paddle_backend.device == paddle.device.get_device()
    assert cl.core.registry.load_backend("paddle", device="cpu").device == "cpu"
    with pytest.raises(ValueError, match=r"device: expected a Paddle device name such as 'cpu', 'gpu' or 'gpu:0', got"):
        cl.core.registry.load_backend("paddle", device="tpu")
    with pytest.raises(ValueError, match=r"device: expected a Paddle device name such as 'cpu' or 'gpu:0', got 0"):
        cl.core.registry.load_backend("paddle", device=0)
    if not paddle.is_compiled_with_cuda():
        with pytest.raises(ValueError, match=r"device: 'gpu:0' was asked for, but this Paddle build has no CUDA"):
            cl.core.registry.load_backend("paddle", device="gpu:0")


def test_unseeded_layers_draw_exactly_what_paddles_own_layers_draw(paddle_backend):
    import paddle

    paddle.seed(11)
    conv = paddle_backend.framework_initial("conv2d", {"weight": (4, 3, 2, 5), "bias": (4,)})
    linear = paddle_backend.framework_initial("linear", {"weight": (3, 7)})
    paddle.seed(11)
    paddle_conv, paddle_linear = paddle.nn.Conv2D(3, 4, (2, 5)), paddle.nn.Linear(7, 3, bias_attr=False)
    np.testing.assert_array_equal(conv["weight"], paddle_conv.weight.numpy())  # OIHW, as the core's
    np.testing.assert_array_equal(conv["bias"], paddle_conv.bias.numpy())
    assert sorted(linear) == ["weight"] and linear["weight"].shape == (3, 7)
    np.testing.assert_array_equal(linear["weight"], paddle_linear.weight.numpy().T)  # Paddle's (in, out) as (out, in)
    x = np.random.default_rng(0).standard_normal((2, 7)).astype(np.float32)
    layer = nn.Linear(7, 3, bias=False, seed=1)
    weight = cl.to_numpy(cl.parameters(layer)["weight"])
    np.testing.assert_allclose(cl.to_numpy(layer(x)), x @ weight.T, rtol=1e-5, atol=1e-6)


def test_paddles_own_optimizer_trains_a_cl_nn_network(paddle_backend):
    import paddle

    net = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 1, seed=1))
    assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]
    x = paddle_backend.tensor(np.random.default_rng(2).standard_normal((4, 1, 5, 5)))
    target = paddle_backend.tensor(np.ones((4, 1)))
    loss = SquaredError(paddle_backend)
    before = {name: cl.to_numpy(value) for name, value in cl.parameters(net).items()}
    _, grads = paddle_backend.value_and_grad(net, x, target, loss)
    optimizer = paddle.optimizer.SGD(learning_rate=0.01, parameters=net.parameters())
    optimizer.step()
    for name, value in cl.parameters(net).items():
        np.testing.assert_allclose(cl.to_numpy(value), before[name] - 0.01 * cl.to_numpy(grads[name]), rtol=1e-5)


def test_gradients_stay_valid_after_the_next_step(paddle_backend):
    # Paddle releases a gradient in place: every tensor sharing it would read empty after the next clear.
    layer = nn.Linear(3, 2, seed=0)
    x, y = paddle_backend.tensor(np.ones((1, 3))), paddle_backend.tensor(np.zeros((1, 2)))
    loss = SquaredError(paddle_backend)
    _, first = paddle_backend.value_and_grad(layer, x, y, loss)
    kept = {name: cl.to_numpy(grad).copy() for name, grad in first.items()}
    paddle_backend.sgd_update(layer, first, 0.1)
    _, second = paddle_backend.value_and_grad(layer, x, y, loss)
    for name in kept:
        np.testing.assert_array_equal(cl.to_numpy(first[name]), kept[name])
        assert not np.allclose(cl.to_numpy(second[name]), kept[name])


@pytest.mark.parametrize(
    "mode, window, stride, padding",
    [
        ("max", (1, 1), (1, 1), (0, 0, 0, 1)),  # a column of windows that see padding only
        ("max", (2, 2), (2, 2), (2, 0, 3, 1)),
        ("avg", (2, 1), (1, 1), (0, 1, 0, 0)),  # padding on the bottom only
        ("avg", (3, 2), (1, 2), (2, 1, 0, 3)),
    ],
)
def test_pooling_where_paddles_own_padding_differs(paddle_backend, mode, window, stride, padding):
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    got = cl.to_numpy(paddle_backend.pool2d(paddle_backend.tensor(x), window, stride, padding, mode))
    np.testing.assert_allclose(got, pool2d_reference(x, window, stride, padding, mode), rtol=1e-5, atol=1e-6)


@dataclass(frozen=True)
class _CountedLoss:
    """A core loss that records the batch shape of each call; it compares as the loss it wraps."""

    loss: Any
    shapes: list = field(default_factory=list, compare=False)

    def __call__(self, Y_hat, Y):
        self.shapes.append(tuple(Y.shape))
        return self.loss(Y_hat, Y)


def test_the_compiled_step_runs_a_program_traced_once_per_batch_shape(paddle_backend):
    """No silent fallback to eager: the step's Python (here, the loss) runs while Paddle traces, not at each step.

    Each step's update is the one the eager gradients give, computed here in NumPy.
    """
    net = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 10, seed=1))
    twin = nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 10, seed=1))
    loss = _CountedLoss(SoftmaxCrossEntropy(paddle_backend))
    step = paddle_backend.compiled_train_step(net, loss, 0.1)
    rng = np.random.default_rng(4)
    for n in (8, 8, 5, 5, 8):
        X = paddle_backend.tensor(rng.standard_normal((n, 1, 5, 5)))
        Y = paddle_backend.one_hot(paddle_backend.labels(rng.integers(0, 10, n)), 10)
        value, grads = paddle_backend.value_and_grad(twin, X, Y, SoftmaxCrossEntropy(paddle_backend))
        expected = {name: cl.to_numpy(p) - 0.1 * cl.to_numpy(grads[name]) for name, p in cl.parameters(twin).items()}
        np.testing.assert_allclose(float(step(X, Y)), value, rtol=1e-5)
        for name, p in cl.parameters(net).items():
            np.testing.assert_allclose(cl.to_numpy(p), expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
        paddle_backend.sgd_update(twin, grads, 0.1)
    assert loss.shapes == [(8, 10), (5, 10)]
