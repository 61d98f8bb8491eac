"""The notebooks: committed clean, and run without error on every installed backend.

Each notebook is executed in a fresh Jupyter kernel (this interpreter's, via
nbclient) once per backend, with the backend injected into its one cell
tagged ``parameters`` (the papermill convention). The notebooks check their
own results with ``assert``; every one ends with a cell printing
``<name> notebook: all checks passed on <backend>``, which the test requires.
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from convlab.core.registry import backend_names, load_backend  # noqa: E402
from convlab.errors import BackendNotInstalledError  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PARAMETERS = 'BACKEND = "numpy"'
TIMEOUT = 600  # seconds per cell; a cold TensorFlow import on a busy machine takes a while


def read(path: pathlib.Path):
    return nbformat.read(path, as_version=4)


def parameters_index(nb) -> int:
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one cell tagged 'parameters', got cells {tagged}"
    return tagged[0]


@functools.cache
def _not_installed(name: str) -> str | None:
    try:
        load_backend(name)
    except BackendNotInstalledError as exc:
        return str(exc)
    return None


def stdout_of(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", []) if out.get("name") == "stdout")


# -- the committed files ---------------------------------------------------------------


def test_the_notebooks_are_there():
    assert {p.stem for p in NOTEBOOKS} >= {"conv-layer", "exercises", "backends"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = read(path)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_then_selects_the_backend(path):
    nb = read(path)
    index = parameters_index(nb)
    cell = nb.cells[index]
    assert cell.cell_type == "code"
    code = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert code[0] == PARAMETERS, f"{path.name}: the parameters cell must start with {PARAMETERS!r}, got {code}"
    # Further parameters (LeNet's MAX_BATCHES) are plain assignments of literals, which papermill can replace.
    for line in code[1:]:
        assert re.fullmatch(r"[A-Z_]+ = [\w.\"']+", line), f"{path.name}: not a parameter assignment: {line!r}"
    following = nb.cells[index + 1]
    assert following.cell_type == "code"
    assert "import convlab as cl" in following.source
    assert re.search(r"cl\.(set_backend|use_backend)\(BACKEND\)", following.source), following.source
    # Nothing else names a backend: changing BACKEND is all it takes to switch.
    others = "\n".join(c.source for i, c in enumerate(nb.cells) if c.cell_type == "code" and i != index)
    assert not re.search(r"""(set_backend|use_backend)\(\s*["']""", others), f"{path.name} hard-codes a backend"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_ends_with_its_marker(path):
    last = [cell for cell in read(path).cells if cell.cell_type == "code"][-1]
    assert "all checks passed on" in last.source


# -- running them -----------------------------------------------------------------------


def execute(path: pathlib.Path, backend: str, workdir: pathlib.Path):
    nb = read(path)
    cell = nb.cells[parameters_index(nb)]
    cell.source = cell.source.replace(PARAMETERS, f"BACKEND = {backend!r}", 1)
    # One more cell, in memory only: the kernel must run this interpreter (this venv).
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('kernel prefix:', sys.prefix)"))
    # The kernel imports convlab from this checkout (as the tests do), installed or not.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("MPLBACKEND", None)  # the kernel draws inline
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} on {backend} failed:\n{exc}", pytrace=False)
    return nb


@pytest.mark.parametrize("backend", backend_names())
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_clean(path, backend, tmp_path):
    reason = _not_installed(backend)
    if reason is not None:
        pytest.skip(f"{backend} backend not installed, so {path.name} is not run on it: {reason}")
    nb = execute(path, backend, tmp_path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]

    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    assert stdout_of(code[-1]).strip() == f"kernel prefix: {sys.prefix}"
    marker = f"{path.stem} notebook: all checks passed on {backend}"
    assert stdout_of(code[-2]).startswith(marker), stdout_of(code[-2])

    figures = sum("image/png" in out.get("data", {}) for cell in code for out in cell.outputs)
    expected = read(path).metadata["convlab"]["figures"]  # each notebook declares the plots it draws
    assert figures == expected, f"{path.name} drew {figures} figures, its metadata says {expected}"

    text = "\n".join(stdout_of(cell) for cell in code)
    if path.stem == "conv-layer":
        assert f"backend: {backend} " in text
        assert "[[19. 25.]\n [37. 43.]]" in text
        assert "epoch 10, loss 0.00" in text
    elif path.stem == "backends":
        assert f"{backend} *" in text  # the active backend is marked in the table
        assert "largest deviation from NumPy over all backends" in text
