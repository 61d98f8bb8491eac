"""The MXNet backend's NumPy compatibility step (see :mod:`convlab.backends.mxnet`).

mxnet 1.9.1 reads NumPy names that today's NumPy no longer has; the adapter
adds exactly those before ``import mxnet``. These tests check that MXNet then
imports and computes correctly, and that NumPy's own names are left alone.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from reference import correlate

import convlab as cl
from convlab.backends.mxnet import numpy_compat as adapter
from convlab.nn.handwritten import HandWrittenConv2dDef
from convlab.nn.losses import SquaredError

if importlib.util.find_spec("mxnet") is None:
    pytest.skip("mxnet is not installed (pip install --no-deps mxnet==1.9.1)", allow_module_level=True)


@pytest.fixture(scope="module")
def backend():
    return cl.core.registry.load_backend("mxnet")


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


# -- MXNet imports and computes --------------------------------------------------


def test_mxnet_computes_the_first_figure(backend):
    X, K = cl.data.fig_correlation()
    for method in ("loop", "vectorized", "native"):
        with cl.use_backend("mxnet"):
            np.testing.assert_array_equal(cl.to_numpy(cl.corr2d(X, K, method=method)), [[19, 25], [37, 43]])


def test_npx_convolution_matches_scipy(backend):
    import mxnet

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)  # batch, channels, height, width
    W = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)  # out channels, in channels, kh, kw
    Y = mxnet.npx.convolution(
        data=mxnet.np.array(X), weight=mxnet.np.array(W), kernel=(3, 2), num_filter=4, no_bias=True
    ).asnumpy()
    expected = [[sum(correlate(X[n, c], W[o, c]) for c in range(3)) for o in range(4)] for n in range(2)]
    np.testing.assert_allclose(Y, np.array(expected), rtol=1e-4, atol=1e-4)


def test_stand_ins_work_through_mxnet(backend):
    import mxnet

    assert mxnet.numpy.NINF == -np.inf and np.isnan(mxnet.numpy.NAN)
    assert mxnet.numpy.bool is np.bool_
    np.testing.assert_array_equal(np.asarray(mxnet.numpy.in1d([[1, 2], [3, 4]], [2, 3])), [False, True, True, False])


def test_gradient_backward_does_not_write_is_none(backend):
    """A parameter outside the recorded graph gets ``None``, not a stale or zero buffer."""
    # The hand-written layer reads only "weight" and "bias": "unused" never enters the graph.
    initial = {"weight": np.ones((1, 2), np.float32), "unused": np.zeros(1, np.float32)}
    layer = backend.module(HandWrittenConv2dDef("vectorized"), initial)
    X, Y = backend.tensor(np.ones((2, 3), np.float32)), backend.tensor(np.zeros((2, 2), np.float32))
    for _ in range(2):  # the second call must not report the first call's gradient
        _, grads = backend.value_and_grad(layer, X, Y, SquaredError(backend))
        assert grads["unused"] is None
        np.testing.assert_allclose(cl.to_numpy(grads["weight"]), [[16, 16]])


def test_grad_keeps_float64_and_reports_inputs_the_value_ignores(backend):
    """MXNet raises when backward() meets a value outside any graph; grad reports no gradient instead."""
    value, grads = backend.grad(lambda x, unused: backend.sum(x * x), np.array([1.0, 2.0]), np.ones(2))
    assert value == 5.0 and grads[0].dtype == np.float64 and grads[1] is None
    np.testing.assert_array_equal(grads[0], [2.0, 4.0])
    assert backend.grad(lambda x: backend.sum(backend.tensor(np.ones(2))), np.ones(3)) == (2.0, [None])


def test_layers_work_in_a_thread_without_numpy_mode(backend):
    """MXNet's NumPy mode is per thread; Gluon would make legacy parameters without it."""
    results = []

    def train():
        X = cl.data.edge_image()
        with cl.use_backend("mxnet"):
            Y = cl.corr2d(X, cl.kernels.edge())
            results.append(cl.train_kernel(X, Y, num_epochs=4, verbose=False).losses)

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert [round(loss, 3) for loss in results[0][1::2]] == [4.915, 0.825]


def test_autograd_exercise_reports_mxnets_refusal(backend):
    with cl.use_backend("mxnet"):
        outcome = cl.autograd_exercise()
    assert outcome.outcome == "error"
    assert outcome.detail.startswith("MXNetError")
    assert "Inplace operations" in outcome.detail and "autograd" in outcome.detail


# -- NumPy is left alone -----------------------------------------------------------


def test_numpy_names_untouched_and_only_table_names_added():
    report = run_python(
        """
        import json, warnings
        import numpy

        def snapshot():
            values = {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name in dir(numpy):
                    try:
                        values[name] = getattr(numpy, name)
                    except AttributeError:
                        pass
            return values

        before = snapshot()
        import convlab
        from convlab.backends.mxnet.numpy_compat import MXNET_NUMPY_NAMES

        convlab.set_backend("mxnet")
        after = snapshot()
        import mxnet
        from mxnet.numpy.multiarray import _NUMPY_ARRAY_FUNCTION_DICT as table

        dispatched = ("all", "any", "round", "prod")
        print(json.dumps({
            "changed": sorted(n for n in before if n not in after or id(after[n]) != id(before[n])),
            "new": sorted(set(after) - set(before)),
            "table": list(MXNET_NUMPY_NAMES),
            "absent": sorted(set(MXNET_NUMPY_NAMES) - set(after)),
            "dispatch": {n: table[getattr(numpy, n)] is getattr(mxnet.numpy, n) for n in dispatched},
            "results": {n: isinstance(getattr(numpy, n)(mxnet.numpy.ones(3)), mxnet.numpy.ndarray) for n in dispatched},
        }))
        """
    )
    assert report["changed"] == []
    assert report["new"]  # mxnet 1.9.1 does not import on any NumPy >= 1.24 without some of them
    assert set(report["new"]) <= set(report["table"]) and report["absent"] == []
    # numpy.any etc. still dispatch to MXNet's own any, not to the sometrue registered after it
    assert report["dispatch"] == dict.fromkeys(("all", "any", "round", "prod"), True)
    assert report["results"] == dict.fromkeys(("all", "any", "round", "prod"), True)


def test_compat_step_is_idempotent(backend):
    assert adapter.add_numpy_names_for_mxnet(np) == []


def fake_numpy(missing: tuple[str, ...] = ()) -> types.ModuleType:
    """A NumPy stand-in with every name of the table (sentinels) except ``missing``."""
    fake = types.ModuleType("fake_numpy")
    fake.__dict__.update({k: v for k, v in vars(np).items() if k not in adapter.MXNET_NUMPY_NAMES})
    for name in adapter.MXNET_NUMPY_NAMES:
        if name not in missing:
            setattr(fake, name, object())
    return fake


def test_compat_step_adds_nothing_where_every_name_exists():
    fake = fake_numpy()
    before = dict(vars(fake))
    assert adapter.add_numpy_names_for_mxnet(fake) == []
    assert vars(fake) == before


def test_compat_step_adds_exactly_the_missing_names():
    missing = ("NAN", "bool", "sometrue", "in1d", "trapz", "msort", "mirr")
    fake = fake_numpy(missing)
    before = dict(vars(fake))
    assert sorted(adapter.add_numpy_names_for_mxnet(fake)) == sorted(missing)
    assert {k: v for k, v in vars(fake).items() if k not in missing} == before
    assert np.isnan(fake.NAN) and fake.bool is np.bool_
    assert fake.sometrue is not np.any and fake.sometrue([0, 1]) and fake.sometrue.__name__ == "sometrue"
    np.testing.assert_array_equal(fake.in1d([[1, 2], [3, 4]], [2, 3]), [False, True, True, False])
    np.testing.assert_array_equal(fake.msort([[3, 1], [1, 2]]), [[1, 1], [3, 2]])
    assert fake.trapz([1.0, 2.0, 3.0]) == 4.0
    assert adapter.add_numpy_names_for_mxnet(fake) == []


def test_placeholder_raises_a_clear_error():
    fake = fake_numpy(("mirr",))
    adapter.add_numpy_names_for_mxnet(fake)
    with pytest.raises(NotImplementedError, match=r"numpy\.mirr was removed in NumPy 1\.20.*numpy_financial\.mirr"):
        fake.mirr([-100, 50, 60], 0.1, 0.1)


def test_missing_mxnet_gives_the_install_hint_and_leaves_numpy_alone():
    report = run_python(
        """
        import json, sys
        import numpy
        sys.modules["mxnet"] = None  # what `import mxnet` sees where mxnet is not installed
        before = set(dir(numpy))
        import convlab
        try:
            convlab.set_backend("mxnet")
        except convlab.BackendNotInstalledError as exc:
            message = str(exc)
        print(json.dumps({"message": message, "new": sorted(set(dir(numpy)) - before)}))
        """
    )
    assert "pip install --no-deps mxnet==1.9.1" in report["message"]
    assert report["new"] == []
