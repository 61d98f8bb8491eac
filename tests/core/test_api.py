"""The backend mechanism, bad input, the chapter's data and kernels, the command line."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest
from reference import correlate

import convlab as cl
from convlab.backends.numpy.adapter import NumpyBackend
from convlab.backends.spec import BackendSpec
from convlab.core import registry as _registry

FRAMEWORKS = tuple(sorted({module for spec in _registry.specs().values() for module in spec.modules}))
"""Every framework module a backend's spec names."""


def run_python(code: str, **env: str) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, check=True
    )
    return result.stdout.strip()


# -- backend selection -----------------------------------------------------------


def test_import_loads_no_framework():
    loaded = run_python(
        "import sys, convlab as cl; cl.corr2d([[1.0, 2.0]], [[1.0]]); "
        f"print(','.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    assert loaded == ""


def test_default_is_numpy_and_env_var_selects():
    assert run_python("import convlab as cl; print(cl.get_backend().name)", CONVLAB_BACKEND="") == "numpy"
    other = next((n for n in cl.available_backends() if n != "numpy"), None)
    if other is None:
        pytest.skip("no framework installed: no backend but numpy to select")
    assert run_python("import convlab as cl; print(cl.get_backend().name)", CONVLAB_BACKEND=other.upper()) == other


def test_unknown_env_var_is_an_error():
    with pytest.raises(subprocess.CalledProcessError) as info:
        run_python("import convlab as cl; cl.get_backend()", CONVLAB_BACKEND="theano")
    assert "$CONVLAB_BACKEND: backend: unknown backend 'theano'" in info.value.stderr


class GhostBackend(NumpyBackend):
    """NumPy under another name: a second backend that needs no framework."""


@pytest.fixture
def ghost():
    cl.register_backend(BackendSpec("ghost", f"{__name__}:GhostBackend", extra="ghost"))
    yield
    cl.unregister_backend("ghost")
    sys.modules.pop("convlab.ghost", None)


def test_set_and_use_backend_restore(ghost, monkeypatch):
    monkeypatch.setattr(_registry, "_default_choice", None)
    cl.set_backend("ghost")
    assert cl.get_backend().name == "ghost"
    with cl.use_backend("numpy") as backend:
        assert backend.name == "numpy" and cl.get_backend() is backend
        with pytest.raises(RuntimeError), cl.use_backend("ghost"):
            assert cl.get_backend().name == "ghost"
            raise RuntimeError("the block fails")
        assert cl.get_backend().name == "numpy"
    assert cl.get_backend().name == "ghost"
    assert isinstance(cl.corr2d([[1.0, 2.0]], [[1.0]]), np.ndarray)


def test_use_backend_is_per_thread():
    seen = []
    with cl.use_backend("numpy"):
        thread = threading.Thread(target=lambda: seen.append(_registry._scoped_choice.get()))
        thread.start()
        thread.join()
    assert seen == [None]


@pytest.mark.parametrize("alias, name", [("pytorch", "torch"), ("tf", "tensorflow"), ("mx", "mxnet"), ("JAX", "jax")])
def test_aliases(alias, name):
    assert _registry.canonical_name(alias) == name


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'theano'.*numpy.*torch \(alias pytorch\)"):
        cl.set_backend("theano")
    with pytest.raises(TypeError, match="backend: expected a backend name"):
        cl.set_backend(3)


def test_every_framework_of_the_book_has_an_adapter():
    # The book's four frameworks and NumPy; further backends (test_registry: one package each) may join.
    assert {"numpy", "torch", "tensorflow", "jax", "mxnet"} <= set(cl.backend_names())


def test_missing_framework_gives_install_hint():
    cl.register_backend(
        BackendSpec(
            "ghost", "convlab_no_such_framework.adapter:Ghost", modules=("convlab_no_such_framework",), extra="ghost"
        )
    )
    try:
        with pytest.raises(
            cl.BackendNotInstalledError, match=r'backend .ghost. is not installed.*pip install "convlab\[ghost\]"'
        ):
            cl.set_backend("ghost")
        assert "ghost" not in cl.available_backends()
        row = next(row for row in cl.backend_info() if row.name == "ghost")
        assert (row.installed, row.version, row.install_hint) == (False, None, 'pip install "convlab[ghost]"')
    finally:
        cl.unregister_backend("ghost")


def test_available_backends_includes_numpy():
    names = cl.available_backends()
    assert names[0] == "numpy" and set(names) <= set(cl.backend_names())


def test_bound_module():
    from convlab import numpy as np_cl

    X, K = np_cl.data.fig_correlation()
    np.testing.assert_array_equal(np_cl.corr2d(X, K), [[19, 25], [37, 43]])
    assert np_cl.backend == "numpy" and "numpy" in sys.modules["convlab.numpy"].__doc__
    assert all(hasattr(np_cl, name) for name in cl.__all__)


def test_bound_module_pins_its_backend(ghost):
    from convlab import ghost as ghost_cl

    with cl.use_backend("numpy"):
        layer = ghost_cl.Conv2D(kernel_size=(1, 2), init="zeros")
        result = ghost_cl.train_kernel(cl.data.edge_image(), cl.corr2d(cl.data.edge_image(), [[1, -1]]), verbose=False)
        assert cl.get_backend().name == "numpy"
    assert result.backend == "ghost" and layer.backend.name == "ghost"


def test_foreign_tensor_is_rejected():
    torch = pytest.importorskip("torch", reason="torch is not installed: no foreign tensor to pass")
    with cl.use_backend("numpy"), pytest.raises(TypeError, match=r"X: .*got a torch tensor.*convlab.to_numpy\(X\)"):
        cl.corr2d(torch.ones(3, 3), np.ones((2, 2)))
    with cl.use_backend("numpy"), pytest.raises(TypeError, match=r"K: .*got a torch tensor"):
        cl.corr2d_matrix(torch.ones(1, 2), (3, 3))
    np.testing.assert_array_equal(cl.to_numpy(torch.ones(2)), [1, 1])


def test_native_tensors_of_complex_or_bool_dtype_are_rejected():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    with cl.use_backend("torch"):
        with pytest.raises(TypeError, match=r"X: expected a tensor of real numbers .*complex64"):
            cl.corr2d(torch.ones(3, 3, dtype=torch.complex64), [[1.0]])
        with pytest.raises(TypeError, match=r"K: expected a tensor of real numbers .*bool"):
            cl.corr2d(torch.ones(3, 3), torch.ones(1, 1, dtype=torch.bool))


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "X, K, error, message",
    [
        (np.ones(3), np.ones((1, 1)), ValueError, r"X: expected a 2-D array .* got 1-D"),
        (np.ones((3, 3, 1)), np.ones((1, 1)), ValueError, r"X: expected a 2-D array .* got 3-D"),
        (np.ones((3, 3)), np.ones((4, 1)), ValueError, r"K: expected a kernel no larger than the input X \(3, 3\)"),
        (np.ones((0, 3)), np.ones((1, 1)), ValueError, r"X: expected a non-empty 2-D array, got shape \(0, 3\)"),
        ([["a", "b"]], np.ones((1, 1)), TypeError, r"X: expected an array of real numbers .* got dtype <U1"),
        (np.ones((2, 2)), np.ones((1, 1), complex), TypeError, r"K: expected an array of real numbers .*complex128"),
        ([[1, 2], [3]], np.ones((1, 1)), TypeError, r"X: expected an array of real numbers"),
    ],
)
def test_corr2d_bad_input(X, K, error, message):
    with pytest.raises(error, match=message):
        cl.corr2d(X, K)


def test_unknown_method():
    with pytest.raises(ValueError, match=r"method: expected one of 'auto', 'loop', 'vectorized', 'native', got 'fft'"):
        cl.corr2d(np.ones((2, 2)), np.ones((1, 1)), method="fft")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"lr": 0}, ValueError, "lr: expected a positive number, got 0"),
        ({"lr": -1e-2}, ValueError, "lr: expected a positive number"),
        ({"lr": float("nan")}, ValueError, "lr: expected a positive number, got nan"),
        ({"num_epochs": 0}, ValueError, "num_epochs: expected a positive int, got 0"),
        ({"num_epochs": 2.5}, TypeError, "num_epochs: expected a positive int, got 2.5"),
        ({"init": "xavier"}, ValueError, "init: expected one of 'normal', 'zeros', 'framework', got 'xavier'"),
        ({"layer": "dense"}, ValueError, "layer: expected one of 'builtin', 'custom', got 'dense'"),
        ({"kernel_size": (0, 2)}, ValueError, r"kernel_size: expected positive sizes, got \(0, 2\)"),
        ({"kernel_size": (1, 2, 3)}, TypeError, r"kernel_size: expected a pair of positive ints"),
        ({"kernel_size": (2, 2)}, ValueError, r"Y: expected shape \(5, 7\)"),
        ({"kernel_size": (7, 2)}, ValueError, r"kernel_size: expected a kernel no larger than the input X \(6, 8\)"),
    ],
)
def test_train_kernel_bad_input(kwargs, error, message):
    X = cl.data.edge_image()
    with pytest.raises(error, match=message):
        cl.train_kernel(X, cl.corr2d(X, cl.kernels.edge()), verbose=False, **kwargs)


def test_max_stable_lr_bad_input():
    with pytest.raises(ValueError, match=r"kernel_size: expected a kernel no larger than the input X \(1, 2\)"):
        cl.max_stable_lr([[1.0, 2.0]], (3, 3))
    with pytest.raises(ValueError, match=r"X: expected a 2-D array .* got 1-D"):
        cl.max_stable_lr([1.0, 2.0], (1, 1))


def test_divergence_from_the_data_does_not_blame_lr():
    X = cl.data.edge_image()
    X[0, 0] = np.nan
    with pytest.raises(cl.DivergenceError, match=r"lr=0\.001 is below the largest stable learning rate") as info:
        cl.train_kernel(X, np.zeros((6, 7)), lr=1e-3, verbose=False)
    assert info.value.lr == 1e-3


def test_conv2d_layer_bad_input():
    with pytest.raises(ValueError, match="kernel_size: expected positive sizes, got -1"):
        cl.Conv2D(kernel_size=-1)
    with pytest.raises(ValueError, match="init: expected one of"):
        cl.Conv2D(kernel_size=2, init="uniform")


# -- data, kernels, exercises ----------------------------------------------------


def test_diagonal_image_and_exercise_1():
    X = cl.data.diagonal_image(6)
    K = cl.kernels.edge()
    assert X.shape == (6, 6) and X[5, 0] == 1 and X[0, 5] == 0
    Y = cl.to_numpy(cl.corr2d(X, K))
    np.testing.assert_array_equal(Y, correlate(X, K))
    assert set(np.unique(Y)) == {0.0, 1.0}  # one step per row, just right of the diagonal
    # Transposed, the image is dark below the diagonal: the edge flips sign and moves one column left.
    Y_t = cl.to_numpy(cl.corr2d(X.T, K))
    np.testing.assert_array_equal(Y_t, correlate(X.T, K))
    assert set(np.unique(Y_t)) == {-1.0, 0.0} and Y_t[1, 0] == -1
    np.testing.assert_array_equal(cl.to_numpy(cl.corr2d(X, K.T)), correlate(X, K.T))
    with pytest.raises(ValueError, match="n: expected a positive int, got 0"):
        cl.data.diagonal_image(0)


@pytest.mark.parametrize("d", range(6))
def test_finite_difference_differentiates_polynomials(d):
    x = np.arange(12, dtype=np.float64)
    for degree in range(d + 1):
        row = (x**degree)[None, :]
        expected = math.factorial(d) if degree == d else 0.0  # d-th difference of x^degree
        np.testing.assert_allclose(correlate(row, cl.kernels.finite_difference(d)), expected, atol=1e-6)
    assert cl.kernels.min_kernel_size(d) == d + 1


@pytest.mark.parametrize("d", range(1, 6))
def test_fewer_taps_cannot_take_the_derivative(d):
    # A kernel k with fewer taps than min_kernel_size(d) maps x^j to sum_t k_t (x+t)^j; giving d! for x^d
    # and 0 for lower powers is a linear system in k with d+1 equations and too few unknowns: no solution.
    taps = cl.kernels.min_kernel_size(d) - 1
    V = np.array([[t**j for t in range(taps)] for j in range(d + 1)], dtype=np.float64)  # moments
    target = np.zeros(d + 1)
    target[d] = math.factorial(d)
    k, *_ = np.linalg.lstsq(V, target, rcond=None)
    assert np.linalg.norm(V @ k - target) > 1e-3


def test_second_derivative_and_laplacian():
    x = np.arange(8, dtype=np.float64)
    np.testing.assert_allclose(correlate((x**2)[None], cl.kernels.second_derivative()), 2)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    np.testing.assert_allclose(correlate(xx**2 + yy**2, cl.kernels.laplacian()), 4)
    np.testing.assert_allclose(correlate(3 * xx - yy + 1, cl.kernels.laplacian()), 0, atol=1e-9)


def test_integral_kernel_sums_windows():
    X = np.random.default_rng(0).standard_normal((6, 7))
    Y = cl.to_numpy(cl.corr2d(X, cl.kernels.integral(3)))
    assert Y[2, 4] == pytest.approx(X[2:5, 4:7].sum(), rel=1e-5)
    with pytest.raises(ValueError, match="n: expected an int >= 1, got 0"):
        cl.kernels.integral(0)


def test_receptive_field():
    assert cl.receptive_field([(2, 2), (2, 2)]) == (3, 3)
    assert cl.receptive_field([3, (1, 2), (5, 1)]) == (7, 4)
    with pytest.raises(TypeError, match=r"kernel_sizes\[1\]: expected a pair of positive ints"):
        cl.receptive_field([(2, 2), "ab"])


def test_corr2d_matrix_shape_and_bad_input():
    W = cl.to_numpy(cl.corr2d_matrix(np.arange(4).reshape(2, 2), (3, 4)))
    assert W.shape == (2 * 3, 3 * 4)
    assert cl.to_numpy(cl.corr2d_matrix([[1.0]], 2)).shape == (4, 4)  # an int is a square shape
    with pytest.raises(TypeError, match=r"X_shape: expected a pair of positive ints \(height, width\), got 'ab'"):
        cl.corr2d_matrix([[1.0]], "ab")
    with pytest.raises(ValueError, match=r"K: expected a kernel no larger than the input X \(1, 1\)"):
        cl.corr2d_matrix([[1, 2]], (1, 1))


# -- command line ----------------------------------------------------------------


def test_demo_prints_the_books_numbers():
    out = subprocess.run(
        [sys.executable, "-m", "convlab", "demo", "--backend", "numpy"], capture_output=True, text=True, check=True
    ).stdout
    assert "[[19. 25.]\n [37. 43.]]" in out
    assert out.count("[ 0.  1.  0.  0.  0. -1.  0.]") == 6
    assert "[0. 0. 0. 0. 0.]" in out
    assert "epoch 2, loss 4.915" in out and "epoch 10, loss 0.004" in out
    assert "[[ 0.9885 -0.9885]]" in out


def test_demo_unknown_backend_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "convlab", "demo", "--backend", "theano"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "unknown backend 'theano'" in result.stderr


def test_info_lists_every_backend():
    out = subprocess.run([sys.executable, "-m", "convlab", "info"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["backend", "installed", "version", "device", "install", "with"]
    assert {line.split()[0] for line in lines[1:]} == set(cl.backend_names())
    assert lines[1].startswith("numpy") and f" {np.__version__} " in lines[1]


def test_demo_writes_the_chapters_figures(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: convlab[plot]")
    subprocess.run(
        [sys.executable, "-m", "convlab", "demo", "--plot", str(tmp_path)], capture_output=True, text=True, check=True
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    chapter = ["correlation.png", "edge-map.png", "learned-kernel.png", "loss-curve.png"]  # 7.2
    teaching = ["multi-channel.png", "padding.gif", "stride.gif"]  # 7.3 and 7.4
    assert names == sorted([*chapter, *teaching])
    magic = {".png": b"\x89PNG\r\n\x1a\n", ".gif": b"GIF89a"}
    assert all((tmp_path / n).read_bytes()[: len(magic[n[-4:]])] == magic[n[-4:]] for n in names)
