"""gradcheck, and with it every backward rule of NumPy's autograd and every backend's gradients."""

from __future__ import annotations

import numpy as np
import pytest

import convlab as cl
from convlab.backends.numpy.adapter import NumpyBackend
from convlab.backends.spec import BackendSpec


def randn(*shape, seed=0):
    """Inputs fixed by the shape and ``seed``, whatever ran before: no generator is shared between tests."""
    return np.random.default_rng([12, seed, *shape]).standard_normal(shape)


def cases(b):
    """(name, f, inputs): one per primitive and configuration, each a scalar function of backend tensors.

    The inputs are the same at every call, so that two backends are compared on the same numbers.
    """
    rng = np.random.default_rng(12)

    def randn(*shape):
        return rng.standard_normal(shape)

    def no_ties(*shape):
        """Distinct values, spaced well beyond eps, so max pooling's argmax is stable under the nudges."""
        return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + 0.05

    def sq(y):
        return b.sum(y * y)  # a nonlinear reduction, so that every element's gradient differs

    return [
        ("conv2d", lambda x, w: sq(b.conv2d(x, w, (1, 1), (0, 0, 0, 0), 1)), [randn(2, 2, 5, 6), randn(3, 2, 2, 3)]),
        (
            "conv2d stride",
            lambda x, w: sq(b.conv2d(x, w, (2, 3), (0, 0, 0, 0), 1)),
            [randn(1, 1, 7, 8), randn(2, 1, 3, 2)],
        ),
        (
            "conv2d padding",
            lambda x, w: sq(b.conv2d(x, w, (1, 1), (1, 0, 2, 1), 1)),
            [randn(1, 2, 4, 4), randn(1, 2, 3, 3)],
        ),
        (
            "conv2d groups",
            lambda x, w: sq(b.conv2d(x, w, (2, 1), (1, 1, 0, 1), 2)),
            [randn(2, 4, 5, 5), randn(4, 2, 2, 2)],
        ),
        ("max pool", lambda x: sq(b.pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), "max")), [no_ties(1, 2, 4, 5)]),
        (
            "max pool overlap padding",
            lambda x: sq(b.pool2d(x, (3, 3), (2, 2), (1, 1, 1, 1), "max")),
            [no_ties(1, 1, 5, 5)],
        ),
        ("avg pool", lambda x: sq(b.pool2d(x, (2, 3), (1, 2), (1, 0, 0, 2), "avg")), [randn(2, 1, 4, 5)]),
        ("sigmoid", lambda x: sq(b.sigmoid(x)), [randn(3, 4)]),
        ("relu", lambda x: sq(b.relu(x)), [no_ties(3, 4) - 0.6]),
        ("log_softmax", lambda x: sq(b.log_softmax(x, 1)), [randn(3, 5)]),
        ("matmul", lambda a, c: sq(b.matmul(a, c)), [randn(3, 4), randn(4, 2)]),
        ("sum axis", lambda x: sq(b.sum(x, 0)), [randn(3, 4)]),
        ("mean", lambda x: sq(b.mean(x, 1)) + b.mean(x), [randn(3, 4)]),
        (
            "reshape, flip",
            lambda x: sq(b.flip(b.reshape(x, (4, 3)), (0, 1))[1:]),
            [randn(3, 4)],
        ),
        ("broadcast add, multiply", lambda x, y: sq(x * y + y), [randn(3, 4), randn(1, 4)]),
        ("slicing", lambda x: sq(x[1:, ::2] * 3.0), [randn(3, 5)]),
        ("corr2d", lambda x, k: sq(cl.corr2d(x, k, method="vectorized")), [randn(5, 6), randn(2, 3)]),
        ("strict conv2d", lambda x, k: sq(cl.conv2d(x, k, method="native")), [randn(4, 4), randn(2, 2)]),
    ]


CASE_NAMES = [name for name, _, _ in cases(NumpyBackend(BackendSpec("numpy", "m:C")))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_numpy_backward_rules_match_finite_differences(name):
    with cl.use_backend("numpy") as backend:
        _, f, inputs = next(case for case in cases(backend) if case[0] == name)
        result = cl.gradcheck(f, *inputs, eps=1e-6, atol=1e-7, rtol=1e-6)  # float64 throughout: tight
        assert result.passed and all(g is not None and g.dtype == np.float64 for g in result.analytic)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_numpy_gradients_match_pytorch_autograd(name):
    try:
        torch_backend = cl.core.registry.load_backend("torch")
    except cl.BackendNotInstalledError as exc:
        pytest.skip(f"torch backend not installed: {exc}")
    results = {}
    for backend in (cl.core.registry.load_backend("numpy"), torch_backend):
        with cl.use_backend(backend.name):
            _, f, inputs = next(case for case in cases(backend) if case[0] == name)
            results[backend.name] = backend.grad(f, *inputs)
    (v_np, g_np), (v_torch, g_torch) = results["numpy"], results["torch"]
    assert v_np == pytest.approx(v_torch, rel=1e-5)
    for mine, theirs in zip(g_np, g_torch, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)


def test_every_backend_passes_gradcheck_on_the_chapters_layer(backend):
    X = cl.data.edge_image()
    Y_native = cl.corr2d(X, cl.kernels.edge())  # a tensor of the backend: some refuse NumPy operands
    Y = cl.to_numpy(Y_native)

    def loss(K, bias):
        # gradcheck computes in float64: Y_native, a float32 tensor made before, goes through cl.tensor as
        # cl.corr2d's operands do (TensorFlow refuses to subtract float32 from float64).
        return backend.sum((cl.corr2d(X, K, method="vectorized") + cl.tensor(bias) - cl.tensor(Y_native)) ** 2)

    result = cl.gradcheck(loss, [[0.3, -0.2]], [0.1])
    A = np.stack([X[:, :-1].ravel(), X[:, 1:].ravel(), np.ones(42)], axis=1)  # the layer's design matrix
    exact = 2 * A.T @ (A @ [0.3, -0.2, 0.1] - Y.ravel())
    np.testing.assert_allclose(np.concatenate([np.ravel(g) for g in result.analytic]), exact, rtol=1e-4, atol=1e-4)


class WrongGradientBackend(NumpyBackend):
    """NumPy with one gradient element off: gradcheck must name it."""

    def grad(self, f, *inputs):
        value, grads = super().grad(f, *inputs)
        grads[1] = grads[1].copy()
        grads[1][0, 1] += 0.5
        return value, grads


def test_gradcheck_names_the_input_and_element_that_disagree():
    cl.register_backend(BackendSpec("wronggrad", f"{__name__}:WrongGradientBackend"))
    try:
        with cl.use_backend("wronggrad") as backend:
            loss = lambda a, b: backend.sum(backend.matmul(a, b) ** 2)  # noqa: E731
            with pytest.raises(cl.GradcheckError, match=r"input 1, element \(0, 1\)") as info:
                cl.gradcheck(loss, randn(2, 3), randn(3, 2, seed=1))
            assert not info.value.result.passed and [m.input for m in info.value.result.mismatches] == [1]
            result = cl.gradcheck(loss, randn(2, 3), randn(3, 2, seed=1), raise_exception=False)
            assert not result.passed
    finally:
        cl.unregister_backend("wronggrad")


def test_gradcheck_reports_a_missing_gradient():
    with cl.use_backend("numpy"):
        # The book's loop writes into np.zeros, which drops the graph: no gradient for the kernel.
        loss = lambda K, bias: cl.get_backend().sum((cl.corr2d(X, K, method="loop") + bias) ** 2)  # noqa: E731
        X = randn(3, 3)
        with pytest.raises(cl.GradcheckError, match="returned no gradient for input 0") as info:
            cl.gradcheck(loss, randn(2, 2, seed=1), [0.5])
        assert info.value.result.analytic[0] is None and info.value.result.analytic[1] is not None


def test_gradcheck_bad_arguments():
    with pytest.raises(ValueError, match="eps: expected a positive number"):
        cl.gradcheck(lambda x: x, [1.0], eps=-1)
    with pytest.raises(ValueError, match="atol: expected a non-negative number"):
        cl.gradcheck(lambda x: x, [1.0], atol=-1)
    with pytest.raises(TypeError, match="f: expected a function of 1 tensors"):
        cl.gradcheck("f", [1.0])
    with pytest.raises(ValueError, match="inputs: expected at least one array"):
        cl.gradcheck(lambda: 0)
    with pytest.raises(TypeError, match=r"inputs\[0\]: expected an array of real numbers"):
        cl.gradcheck(lambda x: x, ["a"])
