"""The notebooks: committed clean, and run without error on every installed backend.

Each notebook is executed in a Jupyter kernel (this interpreter's, via nbclient)
once per backend, with the backend injected into its one cell tagged
``parameters`` (the papermill convention). The notebooks check their own results
with ``assert``; every one ends with a cell printing
``<name> notebook: all checks passed on <backend>``, which the test requires.

Starting a kernel and importing a framework costs more than many notebooks' own
cells (on a quiet machine 1 s with NumPy, 3 to 5 s with PyTorch, JAX, MXNet or
Paddle, 10 to 12 s with TensorFlow), so a backend's notebooks share one kernel,
started when first needed, which loads that backend's framework and no other. Before each notebook the kernel's
namespace is emptied (``%reset -f``) and its directory changed, so a notebook
still sees only what it defines; a notebook that fails takes its kernel down
with it. A notebook that loads every backend (``backends``) gets a new kernel
each time, since which frameworks load depends on those loaded before (after
TensorFlow, PyTorch and Paddle are left out).
"""

from __future__ import annotations

import contextlib
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
    # The one that compares every backend is the one that gets a kernel to itself.
    assert [p.stem for p in NOTEBOOKS if loads_every_backend(read(p))] == ["backends"]


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


def kernel_env() -> dict[str, str]:
    """The environment a notebook's kernel starts in."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    # The kernel imports convlab from this checkout (as the tests do), installed or not.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("MPLBACKEND", None)  # the kernel draws inline
    return env


def loads_every_backend(nb) -> bool:
    """Whether a notebook loads every installed backend (``cl.available_backends()``).

    Others load their own and at most NumPy's, which imports no framework.
    """
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    return "available_backends(" in source


class Kernel:
    """A running kernel of this interpreter, and the client that talks to it."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        # A client that owns its kernel manager starts the kernel on entry and shuts it down on exit.
        self._owner = nbclient.NotebookClient(nbformat.v4.new_notebook(), kernel_name="python3", timeout=TIMEOUT)
        self._stack.enter_context(self._owner.setup_kernel(env=kernel_env()))
        self.manager, self.client = self._owner.km, self._owner.kc

    def shutdown(self) -> None:
        self._stack.close()


class Kernels:
    """One kernel per backend, started by its first notebook and kept for the others."""

    def __init__(self) -> None:
        self._kernels: dict[str, Kernel] = {}

    @contextlib.contextmanager
    def of(self, backend: str, *, shared: bool = True):
        """``backend``'s shared kernel (or, if not ``shared``, a new one, shut down after use).

        A kernel whose test failed is shut down, so whatever its notebook left half
        done there cannot reach the next notebook.
        """
        kernel = self._kernels.pop(backend, None) if shared else None
        kernel = kernel or Kernel()
        try:
            yield kernel
        except BaseException:
            kernel.shutdown()
            raise
        if shared:
            self._kernels[backend] = kernel
        else:
            kernel.shutdown()

    def shutdown(self) -> None:
        while self._kernels:
            self._kernels.popitem()[1].shutdown()


@pytest.fixture(scope="module")
def kernels():
    kernels = Kernels()
    yield kernels
    kernels.shutdown()


def execute(path: pathlib.Path, backend: str, workdir: pathlib.Path, kernel: Kernel):
    nb = read(path)
    cell = nb.cells[parameters_index(nb)]
    cell.source = cell.source.replace(PARAMETERS, f"BACKEND = {backend!r}", 1)
    # Two more cells, in memory only. First, the kernel as a fresh one would be: nothing defined,
    # in the notebook's own directory. (Modules imported before stay loaded, as on a kernel rerun.)
    fresh = f"%reset -f\n__import__('os').chdir({str(workdir)!r})"
    nb.cells.insert(0, nbformat.v4.new_code_cell(fresh))
    # Last, the kernel must run this interpreter (this venv).
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('kernel prefix:', sys.prefix)"))
    client = nbclient.NotebookClient(nb, km=kernel.manager, timeout=TIMEOUT)
    client.kc = kernel.client
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} on {backend} failed:\n{exc}", pytrace=False)
    return nb


@pytest.mark.parametrize("backend", backend_names())
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_clean(path, backend, tmp_path, kernels):
    reason = _not_installed(backend)
    if reason is not None:
        pytest.skip(f"{backend} backend not installed, so {path.name} is not run on it: {reason}")
    with kernels.of(backend, shared=not loads_every_backend(read(path))) as kernel:
        nb = execute(path, backend, tmp_path, kernel)
        check(nb, path, backend)


def check(nb, path: pathlib.Path, backend: str) -> None:
    """The checks on a run the notebook cannot make itself: its outputs, as a reader sees them."""
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
