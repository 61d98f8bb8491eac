"""float32 by default, float64 for a block, and a gradcheck that computes in float64 on every backend."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import signal

import convlab as cl
from convlab.backends.numpy.adapter import NumpyBackend
from convlab.backends.spec import BackendSpec
from convlab.core.registry import load_backend


def distinct(*shape, seed=0, offset=0.0):
    """Values 0.1 apart, none within 0.05 of ``offset``: max pooling's and ReLU's choices hold under the nudges."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1 + 0.05 - offset


def float64_of(backend):
    """The dtype gradcheck computes in on ``backend``."""
    return "float64" if "float64" in backend.dtypes else "float32"


# -- gradcheck: no false alarm with default arguments -------------------------------------------------


def test_the_issues_examples_pass_gradcheck_with_defaults(backend):
    rng = np.random.default_rng(1)
    K = cl.tensor(rng.standard_normal((2, 3)))  # float32, made before the check
    result = cl.gradcheck(lambda x: backend.sum(cl.corr2d(x, K) ** 2), rng.standard_normal((5, 6)))
    assert result.passed and result.precision == float64_of(backend)
    conv, pool = cl.nn.Conv2d(2, 3, 3, padding=1, seed=3), cl.nn.MaxPool2d(2)
    result = cl.gradcheck(lambda x: backend.sum(pool(conv(x)) ** 2), rng.standard_normal((1, 2, 4, 4)))
    assert result.passed and result.precision == float64_of(backend)
    assert cl.to_numpy(cl.parameters(conv)["weight"]).dtype == np.float32  # the layer itself is left as it was


LAYERS = {
    "Conv2d": (lambda: cl.nn.Conv2d(2, 2, 3, padding=(1, 0), stride=(1, 2), seed=4), distinct(1, 2, 4, 5)),
    "MaxPool2d": (lambda: cl.nn.MaxPool2d(2, padding=1, stride=1), distinct(1, 2, 3, 4)),
    "AvgPool2d": (lambda: cl.nn.AvgPool2d((2, 3), padding=(1, 0)), distinct(2, 1, 4, 5)),
    "Linear": (lambda: cl.nn.Linear(5, 3, seed=5), distinct(2, 5, offset=0.4)),
    "Sigmoid": (lambda: cl.nn.Sigmoid(), distinct(2, 5, offset=0.8)),
    "ReLU": (lambda: cl.nn.ReLU(), distinct(2, 5, offset=0.6)),
    "Flatten": (lambda: cl.nn.Flatten(), distinct(2, 2, 2, 2)),
    "Sequential": (
        lambda: cl.nn.Sequential(
            cl.nn.Conv2d(1, 2, 2, seed=6),
            cl.nn.Sigmoid(),
            cl.nn.AvgPool2d(2),
            cl.nn.Flatten(),
            cl.nn.Linear(8, 3, seed=7),
        ),
        distinct(2, 1, 5, 5, offset=1.2),
    ),
    "Conv2D": (lambda: cl.Conv2D((2, 3), seed=8), distinct(4, 5, offset=1.0)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_passes_gradcheck_with_defaults(backend, name):
    make, X = LAYERS[name]
    layer = make()  # in float32, outside the check's float64 block
    result = cl.gradcheck(lambda x: backend.sum(layer(x) ** 2), X)
    assert result.passed, result.mismatches
    assert result.precision == float64_of(backend)


# -- gradcheck: a wrong gradient is caught ------------------------------------------------------------------


def test_a_gradient_one_percent_off_is_caught(backend, monkeypatch):
    checked = load_backend(backend.name, None, float64_of(backend))  # the instance gradcheck computes with
    exact = checked.grad

    def one_percent_off(f, *inputs):
        value, grads = exact(f, *inputs)
        grads[0] = np.array(grads[0], copy=True)
        grads[0][1, 2] *= 1.01
        return value, grads

    monkeypatch.setattr(checked, "grad", one_percent_off)
    rng = np.random.default_rng(2)
    K = cl.tensor(rng.standard_normal((2, 2)))
    f = lambda x: backend.sum(cl.corr2d(x, K) ** 2)  # noqa: E731
    with pytest.raises(cl.GradcheckError, match=r"input 0, element \(1, 2\)") as info:
        cl.gradcheck(f, rng.standard_normal((4, 5)))
    assert [(m.input, m.index) for m in info.value.result.mismatches] == [(0, (1, 2))]


# -- float64 results against a float64 oracle -------------------------------------------------------------


def test_float64_agrees_with_scipy_to_1e_10(backend):
    rng = np.random.default_rng(3)
    X, K = rng.standard_normal((9, 11)), rng.standard_normal((3, 2))
    with cl.use_backend(backend.name, dtype=float64_of(backend)) as wide:
        if wide.dtype != np.float64:
            pytest.skip(f"{backend.name} cannot compute in float64")
        for method in cl.core.ops.METHODS:
            if method == "loop":
                continue  # the book's loop fills a float32 buffer, as the book's tabs do
            Y = cl.to_numpy(cl.corr2d(X, K, method))
            assert Y.dtype == np.float64
            np.testing.assert_allclose(Y, signal.correlate2d(X, K, mode="valid"), rtol=0, atol=1e-10, err_msg=method)
        avg = cl.to_numpy(cl.pool2d(X, (2, 3), "avg"))
        np.testing.assert_allclose(avg, signal.correlate2d(X, np.full((2, 3), 1 / 6), mode="valid"), rtol=0, atol=1e-10)
        windows = np.lib.stride_tricks.sliding_window_view(X, (2, 3))
        np.testing.assert_array_equal(cl.to_numpy(cl.pool2d(X, (2, 3), "max")), windows.max(axis=(2, 3)))
    conv = cl.nn.Conv2d(1, 1, (3, 2), bias=False, seed=9)  # float32 parameters, computing in the block's float64
    weight = cl.to_numpy(cl.parameters(conv)["weight"]).astype(np.float64)[0, 0]
    with cl.use_backend(backend.name, dtype="float64"):
        Y = cl.to_numpy(conv(X[None, None]))[0, 0]
    np.testing.assert_allclose(Y, signal.correlate2d(X, weight, mode="valid"), rtol=0, atol=1e-10)


# -- the dtype's scope --------------------------------------------------------------------------------------


def test_the_dtype_is_scoped_to_the_block_and_the_context(backend):
    wanted = float64_of(backend)
    assert cl.to_numpy(cl.tensor([1.0])).dtype == np.float32
    seen = []
    with cl.use_backend(backend.name, dtype=wanted) as wide:
        assert wide.dtype == np.dtype(wanted) and cl.get_backend() is wide
        inside = cl.tensor([[1.0, 2.0]])
        assert isinstance(inside, backend.tensor_types) and cl.to_numpy(inside).dtype == np.dtype(wanted)
        layer = cl.nn.Linear(2, 1, seed=0)  # made in the block: its parameters are the block's dtype
        assert cl.to_numpy(cl.parameters(layer)["weight"]).dtype == np.dtype(wanted)
        thread = threading.Thread(target=lambda: seen.append(cl.get_backend().dtype))
        thread.start()
        thread.join()
        with cl.use_backend(backend.name):  # a float32 block inside: float32 there
            assert cl.to_numpy(cl.tensor([1.0])).dtype == np.float32
        assert cl.to_numpy(cl.tensor([1.0])).dtype == np.dtype(wanted)
    assert seen == [np.float32]  # another thread never saw the block
    assert cl.get_backend() is backend and cl.to_numpy(cl.tensor([1.0])).dtype == np.float32
    with pytest.raises(RuntimeError, match="boom"), cl.use_backend(backend.name, dtype=wanted):
        raise RuntimeError("boom")
    assert cl.get_backend() is backend and cl.to_numpy(cl.tensor([1.0])).dtype == np.float32


def test_float32_layers_are_unchanged_outside_a_float64_block(backend):
    layer = cl.nn.Linear(3, 2, seed=1)
    X = distinct(2, 3).astype(np.float32)  # NumPy's layers pass float64 arrays on, for its autograd
    before = cl.to_numpy(layer(X))
    with cl.use_backend(backend.name, dtype=float64_of(backend)):
        wide = cl.to_numpy(layer(X))
    after = cl.to_numpy(layer(X))
    assert before.dtype == after.dtype == np.float32 and wide.dtype == np.dtype(float64_of(backend))
    np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(wide, before, rtol=1e-6, atol=1e-6)


def test_bad_dtypes_are_named():
    for bad in ("float16", "int64", 32, True, "double precision"):
        with pytest.raises(ValueError, match="dtype: expected one of 'float32', 'float64'"):
            with cl.use_backend("numpy", dtype=bad):
                pass
        with pytest.raises(ValueError, match="dtype: expected one of 'float32', 'float64'"):
            cl.set_backend("numpy", dtype=bad)
    with cl.use_backend("numpy", dtype=np.float64) as wide:
        assert wide is load_backend("numpy", None, "float64")


def test_set_backend_takes_a_dtype(monkeypatch):
    monkeypatch.setattr(cl.core.registry, "_default_choice", None)
    cl.set_backend("numpy", dtype="float64")
    assert cl.get_backend().dtype == np.float64 and cl.tensor([1]).dtype == np.float64
    cl.set_backend("numpy")
    assert cl.get_backend().dtype == np.float32 and cl.tensor([1]).dtype == np.float32


class Float32OnlyBackend(NumpyBackend):
    """NumPy that says it cannot compute in float64, as a backend that knows nothing of dtypes says."""

    dtypes = ("float32",)


def test_a_backend_without_float64_refuses_it_and_gradcheck_falls_back_to_float32():
    cl.register_backend(BackendSpec("narrow", f"{__name__}:Float32OnlyBackend"))
    try:
        with pytest.raises(
            ValueError, match="dtype: the narrow backend cannot compute in float64; it computes in float32"
        ):
            with cl.use_backend("narrow", dtype="float64"):
                pass
        with cl.use_backend("narrow") as narrow:
            result = cl.gradcheck(lambda x: narrow.sum(narrow.sigmoid(x) ** 2), distinct(2, 3, offset=0.3))
        assert result.passed and result.precision == "float32"
    finally:
        cl.unregister_backend("narrow")


# -- JAX: x64 only inside the block ----------------------------------------------------------------------


def jax_or_skip():
    try:
        load_backend("jax")
    except cl.BackendNotInstalledError as exc:
        pytest.skip(f"jax backend not installed: {exc}")


def test_jax_x64_does_not_leak_out_of_a_float64_block():
    jax_or_skip()
    import jax.numpy as jnp

    assert jnp.ones(3).dtype == jnp.float32
    with cl.use_backend("jax", dtype="float64"):
        assert jnp.ones(3).dtype == jnp.float64
        assert cl.tensor([1.0]).dtype == jnp.float64
    assert jnp.ones(3).dtype == jnp.float32
    with cl.use_backend("jax"):
        cl.gradcheck(lambda x: cl.get_backend().sum(x**3), [1.0, 2.0])
        assert cl.tensor([1.0]).dtype == jnp.float32
    assert jnp.ones(3).dtype == jnp.float32


def test_jax_float64_needs_a_block():
    jax_or_skip()
    with pytest.raises(ValueError, match=r"use `with convlab.use_backend\('jax', dtype='float64'\):`"):
        cl.set_backend("jax", dtype="float64")
    assert cl.get_backend().dtype == np.float32
