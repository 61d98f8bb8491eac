"""The public registry: backend_info, register_backend, entry points, bound modules, load order, devices."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import convlab as cl
from conftest import run_python
from convlab import _api
from convlab.backends.spec import BackendSpec
from convlab.core.threads import THREAD_VARIABLES

ROOT = Path(__file__).resolve().parents[2]


def installed(name: str) -> bool:
    return next(row for row in cl.backend_info() if row.name == name).installed


# -- what the registry knows without importing a framework --------------------------------------


def test_backend_info_reads_metadata_only():
    rows = json.loads(
        run_python(
            """
            import json, sys
            import convlab as cl
            rows = [row.__dict__ for row in cl.backend_info()]
            names = {m for spec in cl.core.registry.specs().values() for m in spec.modules}
            frameworks = sorted(m for m in names if m in sys.modules)
            print(json.dumps({"rows": rows, "frameworks": frameworks}, default=list))
            """
        )
    )
    assert rows["frameworks"] == [], f"backend_info imported {rows['frameworks']}"
    by_name = {row["name"]: row for row in rows["rows"]}
    assert next(iter(by_name)) == "numpy"
    assert by_name["numpy"]["installed"] and by_name["numpy"]["version"] == np.__version__
    assert by_name["torch"]["aliases"] == ["pytorch"]
    assert by_name["tensorflow"]["install_hint"] == 'pip install "convlab[tensorflow]"'
    for row in rows["rows"]:
        assert row["installed"] == (row["version"] is not None), row


def test_backend_packages_hold_metadata_only():
    # Each built-in backend is a package whose __init__ defines BACKEND and imports no framework.
    packages = sorted(p.parent.name for p in (ROOT / "convlab" / "backends").glob("*/__init__.py"))
    assert packages == sorted(cl.backend_names())
    for name in packages:
        source = (ROOT / "convlab" / "backends" / name / "__init__.py").read_text()
        imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
        assert imports == ["from convlab.backends.spec import BackendSpec"], f"{name}: {imports}"


def test_no_global_framework_rebinding_in_adapters():
    for path in (ROOT / "convlab" / "backends").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*global\s", text, re.M), f"{path}: a `global` statement in an adapter"
        assert "functools.cache\ndef _layer_classes" not in text


def test_register_backend_refuses_clashing_names():
    with pytest.raises(ValueError, match=r"already belong to the backends \['torch'\]"):
        cl.register_backend(BackendSpec("mytorch", "x.y:Z", aliases=("pytorch",)))
    with pytest.raises(TypeError, match=r"spec: expected a convlab\.backends\.spec\.BackendSpec"):
        cl.register_backend({"name": "x"})
    with pytest.raises(ValueError, match=r"adapter: expected .package\.module:ClassName."):
        BackendSpec("mine", "no_colon")
    with pytest.raises(ValueError, match="was not added by register_backend"):
        cl.unregister_backend("torch")


def test_a_folder_named_like_a_framework_is_not_an_installed_framework(tmp_path, monkeypatch):
    # A student's notebook folder called jax/ (no __init__.py) is a namespace package to find_spec;
    # counting it as installed turned "pip install convlab[jax]" into "installed but importing it fails"
    (tmp_path / "folderframework").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = BackendSpec("foldered", "folderframework.adapter:Adapter", modules=("folderframework",))
    assert not spec.is_installed()
    cl.register_backend(spec)
    try:
        with pytest.raises(cl.BackendNotInstalledError, match=r"no module named 'folderframework'.*pip install"):
            cl.set_backend("foldered")
        (tmp_path / "folderframework" / "__init__.py").write_text("")
        assert spec.is_installed()  # a regular package is a framework, as far as finding it goes
    finally:
        cl.unregister_backend("foldered")


def test_entry_point_group_adds_a_backend(tmp_path):
    # A third-party distribution: its dist-info declares an entry point in the convlab.backends group.
    (tmp_path / "thirdparty_backend.py").write_text(
        textwrap.dedent(
            """
            from convlab.backends.numpy.adapter import NumpyBackend
            from convlab.backends.spec import BackendSpec

            class ThirdPartyBackend(NumpyBackend):
                pass

            BACKEND = BackendSpec("thirdparty", "thirdparty_backend:ThirdPartyBackend", aliases=("tp",))
            """
        )
    )
    info = tmp_path / "thirdparty_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[convlab.backends]\nthirdparty = thirdparty_backend:BACKEND\n")
    out = run_python(
        """
        import convlab as cl
        X, K = cl.data.fig_correlation()
        with cl.use_backend("tp") as backend:
            print(backend.name, cl.to_numpy(cl.corr2d(X, K)).tolist())
        import convlab.thirdparty as tp
        print(tp.get_backend().name)
        """,
        PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    )
    assert out.splitlines() == ["thirdparty [[19.0, 25.0], [37.0, 43.0]]", "thirdparty"]


# -- bound modules ---------------------------------------------------------------------------------


def test_import_convlab_dot_backend():
    out = run_python(
        """
        import convlab.numpy as cl
        from convlab import numpy as cl2
        import convlab
        print(cl is cl2, cl.get_backend().name, cl.__all__ == convlab.__all__)
        with convlab.use_backend("numpy"):
            pass
        try:
            import convlab.theano
        except ModuleNotFoundError as exc:
            print("refused", exc.name)
        """
    )
    assert out.splitlines() == ["True numpy True", "refused convlab.theano"]


def test_bound_module_pins_exactly_the_pinned_exports():
    bound = sys.modules.get("convlab.numpy") or __import__("convlab.numpy", fromlist=["_"])
    for name in cl.__all__:
        if name in _api.namespaces():  # a namespace of its own, pinned name by name below
            continue
        shared = getattr(bound, name) is getattr(cl, name)
        assert shared != _api.is_pinned(name), name
    for namespace in _api.namespaces():
        for name in _api.exported(namespace):
            shared = getattr(getattr(bound, namespace), name) is getattr(getattr(cl, namespace), name)
            assert shared != _api.is_pinned(f"{namespace}.{name}"), f"{namespace}.{name}"
    assert _api.is_pinned("nn.Conv2d") and not _api.is_pinned("parameters")
    assert _api.is_pinned("get_backend") and _api.is_pinned("corr2d") and not _api.is_pinned("set_backend")


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_bound_module_get_backend_names_its_backend():
    out = run_python(
        """
        import convlab as cl
        import convlab.torch as ct
        print(ct.get_backend().name, cl.get_backend().name, type(ct.corr2d([[1.0, 2.0]], [[1.0]])).__module__)
        """
    )
    assert out == "torch numpy torch"


# -- load order ------------------------------------------------------------------------------------

BOTH = installed("torch") and installed("tensorflow")


@pytest.mark.skipif(not BOTH, reason="needs torch and tensorflow")
def test_selecting_tensorflow_imports_torch_first():
    out = run_python(
        """
        import sys
        import convlab as cl
        cl.set_backend("tensorflow")
        print("torch" in sys.modules)
        cl.set_backend("torch")
        print(cl.to_numpy(cl.corr2d(*cl.data.fig_correlation())).tolist())
        """
    )
    assert out.splitlines() == ["True", "[[19.0, 25.0], [37.0, 43.0]]"]


@pytest.mark.skipif(not BOTH, reason="needs torch and tensorflow")
def test_torch_after_tensorflow_is_a_clear_error_not_a_crash():
    out = run_python(
        """
        import tensorflow
        import convlab as cl
        try:
            cl.set_backend("torch")
        except cl.BackendLoadOrderError as exc:
            print(type(exc).__name__, isinstance(exc, ImportError))
            print(exc)
        print(cl.available_backends())
        """
    )
    kind, message, available = out.splitlines()[-3:]
    assert kind == "BackendLoadOrderError True"
    assert "torch must be imported before tensorflow" in message and "already loaded" in message
    assert "torch" not in available and "tensorflow" in available


def test_load_order_rule_comes_from_the_specs():
    # The rule is metadata: a spec's import_first names what must come before its framework.
    rules = {spec.name: spec.import_first for spec in cl.core.registry.specs().values() if spec.import_first}
    assert rules.get("tensorflow") == ("torch",)


def test_load_order_rules_combine_both_directions():
    # Paddle's spec says that paddle precedes tensorflow; TensorFlow's spec says nothing about Paddle.
    specs = cl.core.registry.specs()
    assert specs["paddle"].import_before == ("tensorflow",)
    assert "paddle" not in specs["tensorflow"].import_first
    rules = cl.core.registry._order_rules()
    assert ("torch", "tensorflow") in rules and ("paddle", "tensorflow") in rules


def write_fake_frameworks(tmp_path: Path) -> dict[str, str]:
    """Two framework-free backends whose modules record the order they were imported in.

    ``early`` says its framework must come before ``late``'s (``import_before``), as Paddle says of TensorFlow.
    """
    for name in ("early_fw", "late_fw"):
        record = f"import builtins\nbuiltins.IMPORTED = [*getattr(builtins, 'IMPORTED', []), {name!r}]\n"
        (tmp_path / f"{name}.py").write_text(record)
        adapter = f"""
            import {name}
            from convlab.backends.numpy.adapter import NumpyBackend

            class Adapter(NumpyBackend):
                pass
            """
        (tmp_path / f"{name}_adapter.py").write_text(textwrap.dedent(adapter))
    specs = """
        import convlab as cl
        from convlab.backends.spec import BackendSpec

        early = BackendSpec("early", "early_fw_adapter:Adapter", modules=("early_fw",), import_before=("late_fw",))
        cl.register_backend(early)
        cl.register_backend(BackendSpec("late", "late_fw_adapter:Adapter", modules=("late_fw",)))
        """
    (tmp_path / "fake_specs.py").write_text(textwrap.dedent(specs))
    return {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_import_before_imports_the_earlier_framework_first(tmp_path):
    out = run_python(
        """
        import builtins
        import fake_specs, convlab as cl
        cl.set_backend("late")
        print(builtins.IMPORTED)
        cl.set_backend("early")
        print(cl.get_backend().name, cl.to_numpy(cl.corr2d(*cl.data.fig_correlation())).tolist())
        """,
        **write_fake_frameworks(tmp_path),
    )
    assert out.splitlines() == ["['early_fw', 'late_fw']", "early [[19.0, 25.0], [37.0, 43.0]]"]


def test_import_before_refuses_the_earlier_framework_once_the_later_is_loaded(tmp_path):
    out = run_python(
        """
        import sys
        import late_fw
        import fake_specs, convlab as cl
        try:
            cl.set_backend("early")
        except cl.BackendLoadOrderError as exc:
            print(exc)
        print(cl.core.registry.load_backend("late").name, "early_fw" in sys.modules)
        """,
        **write_fake_frameworks(tmp_path),
    )
    message, available = out.splitlines()
    assert message == (
        "backend 'early': early_fw must be imported before late_fw in one process (after it, it can crash the "
        "process), but late_fw is already loaded. Select 'early' (or import early_fw) before 'late', "
        "or use a new process."
    )
    assert available == "late False"


PADDLE_AND_TF = installed("paddle") and installed("tensorflow")


@pytest.mark.skipif(not PADDLE_AND_TF, reason="needs paddle and tensorflow")
def test_selecting_tensorflow_imports_paddle_first():
    # The other order kills the process (a segmentation fault in Paddle's native libraries).
    out = run_python(
        """
        import sys
        import convlab as cl
        cl.set_backend("tensorflow")
        print("paddle" in sys.modules)
        cl.set_backend("paddle")
        print(cl.to_numpy(cl.corr2d(*cl.data.fig_correlation())).tolist())
        """
    )
    assert out.splitlines() == ["True", "[[19.0, 25.0], [37.0, 43.0]]"]


@pytest.mark.skipif(not PADDLE_AND_TF, reason="needs paddle and tensorflow")
def test_paddle_after_tensorflow_is_a_clear_error_not_a_crash():
    out = run_python(
        """
        import tensorflow
        import convlab as cl
        try:
            cl.set_backend("pd")
        except cl.BackendLoadOrderError as exc:
            print(type(exc).__name__)
            print(exc)
        print(cl.available_backends())
        """
    )
    kind, message, available = out.splitlines()[-3:]
    assert kind == "BackendLoadOrderError"
    assert "backend 'paddle': paddle must be imported before tensorflow" in message and "already loaded" in message
    assert "'paddle'" not in available and "'tensorflow'" in available


# -- thread settings ------------------------------------------------------------------------------


TORCH_BESIDE_ONE_THAT_SETS_THREADS = installed("torch") and (installed("mxnet") or installed("paddle"))


@pytest.mark.skipif(not TORCH_BESIDE_ONE_THAT_SETS_THREADS, reason="needs torch, and mxnet or paddle")
def test_loading_a_backend_leaves_the_others_their_threads():
    # MXNet's import sets OpenMP's thread count to half the CPUs on the importing thread, and the runtime is
    # shared: PyTorch then computed on one of two cores. Paddle's sets OMP_NUM_THREADS=1 for every child process.
    code = """
        import json, os
        import convlab as cl
        from convlab.core.registry import load_backend
        load_backend("torch")
        import torch
        alone = torch.get_num_threads()
        for name in ("mxnet", "paddle"):
            if name in cl.available_backends():
                load_backend(name)
        print(json.dumps([alone, torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")]))
        """
    out = run_python(code, clear=THREAD_VARIABLES)
    alone, beside_the_others, variable = json.loads(out.splitlines()[-1])
    assert (beside_the_others, variable) == (alone, None)
    assert alone == len(os.sched_getaffinity(0))  # PyTorch's own default: one thread per CPU it may run on


# -- devices ---------------------------------------------------------------------------------------


def test_device_is_part_of_the_choice():
    with cl.use_backend("numpy", device="cpu") as backend:
        assert backend.device == "cpu" and cl.get_backend() is backend
    with pytest.raises(ValueError, match="device: the numpy backend computes on 'cpu' only, got 'cuda'"):
        cl.set_backend("numpy", device="cuda")


def test_every_installed_backend_reports_a_default_device(backend):
    assert isinstance(backend.device, str) and backend.device
    with pytest.raises(ValueError, match="device:"):
        cl.core.registry.load_backend(backend.name, device="no-such-device")


BROKEN = """
from convlab.backends.spec import BackendSpec

BACKEND = BackendSpec("brokenfw", "brokenfw_adapter:Adapter", modules=("json",))  # json: found, so "installed"
"""
BROKEN_ADAPTER = 'raise ImportError("libbrokenfw.so: cannot open shared object file")  # as a damaged wheel does\n'


def test_an_installed_framework_that_fails_to_import_is_not_called_missing(tmp_path, monkeypatch):
    (tmp_path / "brokenfw_spec.py").write_text(BROKEN)
    (tmp_path / "brokenfw_adapter.py").write_text(BROKEN_ADAPTER)
    monkeypatch.syspath_prepend(str(tmp_path))
    from brokenfw_spec import BACKEND

    cl.register_backend(BACKEND)
    try:
        with pytest.raises(cl.BackendImportError, match=r"json is installed but importing it fails \(libbrokenfw"):
            cl.core.registry.load_backend("brokenfw")
    finally:
        cl.unregister_backend("brokenfw")


def test_a_broken_framework_fails_the_suite_instead_of_skipping(tmp_path):
    (tmp_path / "brokenfw_spec.py").write_text(BROKEN)
    (tmp_path / "brokenfw_adapter.py").write_text(BROKEN_ADAPTER)
    env = {**os.environ, "CONVLAB_TEST_EXTRA_BACKEND": "brokenfw_spec:BACKEND", "PYTHONPATH": str(tmp_path)}
    pytest_args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-k", "brokenfw", "core/test_conformance.py"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=ROOT / "tests",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1]
    # The backend fixture fails in set-up, so pytest counts errors: anything but a quiet skip.
    assert run.returncode == 1 and " error" in summary and "skipped" not in summary, summary
    assert "brokenfw backend is installed but does not load" in run.stdout
