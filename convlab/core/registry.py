"""Finding, selecting and loading backends.

Backends are found, never listed by hand: every subpackage of
:mod:`convlab.backends` whose ``__init__`` defines ``BACKEND`` (a
:class:`~convlab.backends.spec.BackendSpec`), every entry point of the
``convlab.backends`` group, and every spec given to :func:`register_backend`.
A spec is metadata only; the adapter module, which imports its framework at
its top, is imported the first time the backend is selected.

The active backend is the innermost :func:`use_backend` block of the current
context if any, otherwise the process default set by :func:`set_backend`,
otherwise ``$CONVLAB_BACKEND``, otherwise ``"numpy"``. Each carries a device
(``None``: the framework's default) and a float dtype (``"float32"``, the
book's, unless ``"float64"`` is asked for).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import os
import pkgutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from convlab import backends as _backends_pkg
from convlab._api import export
from convlab.backends.base import DTYPES, Backend
from convlab.backends.spec import BackendSpec, module_installed
from convlab.core.threads import thread_settings_kept
from convlab.errors import BackendImportError, BackendLoadOrderError, BackendNotInstalledError

ENV_VAR = "CONVLAB_BACKEND"
DEFAULT = "numpy"
ENTRY_POINT_GROUP = "convlab.backends"

_Choice = tuple[str, "str | None", str]
"""``(backend name, device or None, dtype)``."""

_default_choice: _Choice | None = None
_scoped_choice: contextvars.ContextVar[_Choice | None] = contextvars.ContextVar("convlab_backend", default=None)
_loaded: dict[_Choice, Backend] = {}
_registered: dict[str, BackendSpec] = {}
_loading = threading.RLock()


def _builtin_specs() -> Iterator[BackendSpec]:
    for info in pkgutil.iter_modules(_backends_pkg.__path__):
        if info.ispkg:
            spec = getattr(importlib.import_module(f"{_backends_pkg.__name__}.{info.name}"), "BACKEND", None)
            if isinstance(spec, BackendSpec):
                yield spec


def _entry_point_specs() -> Iterator[BackendSpec]:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        spec = point.load()
        spec = spec() if callable(spec) and not isinstance(spec, BackendSpec) else spec
        if not isinstance(spec, BackendSpec):
            raise TypeError(
                f"entry point {point.name!r} of group {ENTRY_POINT_GROUP!r}: expected a convlab BackendSpec "
                f"(or a function returning one), got {type(spec).__name__}"
            )
        yield spec


@functools.cache
def _discovered() -> dict[str, BackendSpec]:
    return {spec.name: spec for spec in (*_builtin_specs(), *_entry_point_specs())}


def specs() -> dict[str, BackendSpec]:
    """Every known backend's spec by name, the default (NumPy) first, then alphabetical."""
    found = {**_discovered(), **_registered}
    return dict(sorted(found.items(), key=lambda item: (item[0] != DEFAULT, item[0])))


@export
def register_backend(spec: BackendSpec) -> BackendSpec:
    """Add a backend to the registry (what a third-party package does, or use the entry-point group).

    Parameters
    ----------
    spec : BackendSpec
        The backend's metadata. Its name and aliases must not clash with
        those of another backend.

    Returns
    -------
    BackendSpec
        ``spec``, so that a module can write ``BACKEND = register_backend(BackendSpec(...))``.

    Examples
    --------
    >>> import convlab as cl
    >>> from convlab.backends.spec import BackendSpec
    >>> spec = cl.register_backend(BackendSpec("mine", "my_package.adapter:MyBackend"))
    >>> "mine" in cl.backend_names()
    True
    >>> cl.unregister_backend("mine")
    """
    if not isinstance(spec, BackendSpec):
        raise TypeError(f"spec: expected a convlab.backends.spec.BackendSpec, got {type(spec).__name__}")
    taken = {alias: other.name for other in specs().values() if other.name != spec.name for alias in other.aliases}
    taken.update({other: other for other in specs() if other != spec.name})
    clashes = [name for name in (spec.name, *spec.aliases) if name in taken]
    if clashes:
        raise ValueError(f"spec: the names {clashes} already belong to the backends {[taken[n] for n in clashes]}")
    _registered[spec.name] = spec
    _forget(spec.name)
    return spec


@export
def unregister_backend(name: str) -> None:
    """Remove a backend added by :func:`register_backend` (built-in ones stay)."""
    if name not in _registered:
        raise ValueError(f"name: {name!r} was not added by register_backend; registered: {sorted(_registered)}")
    del _registered[name]
    _forget(name)


def _forget(name: str) -> None:
    global _env_choice
    _env_choice = None  # $CONVLAB_BACKEND may name this backend, or an alias of it
    for choice in [choice for choice in _loaded if choice[0] == name]:
        del _loaded[choice]
    _owner_of_type.cache_clear()


@export
def backend_names() -> list[str]:
    """Canonical names of every backend convlab knows, installed or not.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.backend_names()[0]
    'numpy'
    """
    return list(specs())


def canonical_name(name: str) -> str:
    """Resolve an alias (``"pytorch"``, ``"tf"``, ``"mx"``) to its backend's name.

    Raises
    ------
    ValueError
        If ``name`` names no backend; the message lists the known names.
    """
    if not isinstance(name, str):
        raise TypeError(f"backend: expected a backend name (str), got {type(name).__name__} {name!r}")
    key = name.strip().lower()
    for spec in specs().values():
        if key == spec.name or key in spec.aliases:
            return spec.name
    known = ", ".join(
        spec.name + (f" (alias {', '.join(spec.aliases)})" if spec.aliases else "") for spec in specs().values()
    )
    raise ValueError(f"backend: unknown backend {name!r}; expected one of: {known}")


def is_backend_name(name: str) -> bool:
    """Whether ``name`` is a backend's name or alias (exactly, as an attribute name would be)."""
    return any(name == spec.name or name in spec.aliases for spec in specs().values())


def _order_rules() -> list[tuple[str, str]]:
    """Every ``(earlier, later)`` pair of frameworks that the specs ask for, from both of their fields."""
    rules = []
    for spec in specs().values():
        if spec.modules:
            own = spec.modules[0]
            rules += [(earlier, own) for earlier in spec.import_first]
            rules += [(own, later) for later in spec.import_before]
    return rules


def _backend_of_framework(framework: str) -> str:
    """The name of the backend whose main module ``framework`` is (``framework`` itself if none)."""
    return next((spec.name for spec in specs().values() if spec.modules[:1] == (framework,)), framework)


def _check_import_order(spec: BackendSpec, visiting: frozenset[str] = frozenset()) -> None:
    """Import what must precede ``spec``'s framework; refuse a framework that must precede one already loaded."""
    framework = spec.modules[0] if spec.modules else None
    if framework is None or framework in sys.modules:
        return  # imported already (by the user, say): importing the others now would come too late
    rules = _order_rules()
    late = [later for earlier, later in rules if earlier == framework and later in sys.modules]
    if late:
        raise BackendLoadOrderError(
            f"backend {spec.name!r}: {framework} must be imported before {late[0]} in one process "
            f"(after it, it can crash the process), but {late[0]} is already loaded. Select "
            f"{spec.name!r} (or import {framework}) before {_backend_of_framework(late[0])!r}, or use a new process."
        )
    for earlier in dict.fromkeys(earlier for earlier, later in rules if later == framework):
        if earlier in sys.modules or earlier in visiting or not module_installed(earlier):
            continue
        if any(first == earlier and then in sys.modules for first, then in rules):
            continue  # too late for that framework already: it cannot be loaded in this process at all
        _import_framework(earlier, visiting | {framework})


def _import_framework(framework: str, visiting: frozenset[str]) -> None:
    """Import ``framework`` ahead of another, through its backend's adapter module where it has one.

    The adapter module is what imports the framework when its backend is
    selected, with the settings that keep the framework's start-up logs out
    of convlab's output, and its own predecessors come first, recursively.
    A framework that fails to import is skipped: it cannot be loaded late either.
    """
    spec = next((spec for spec in specs().values() if spec.modules[:1] == (framework,)), None)
    try:
        if spec is None:
            importlib.import_module(framework)
        else:
            _check_import_order(spec, visiting)
            importlib.import_module(spec.adapter.partition(":")[0])
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] == "convlab":
            raise  # a bug in convlab, not a framework that cannot be imported here


def check_dtype(dtype: object) -> str:
    """``dtype`` as one of :data:`~convlab.backends.base.DTYPES` (``None``: ``"float32"``); else a ``ValueError``."""
    if dtype is None:
        return DTYPES[0]
    try:
        name = np.dtype(dtype).name  # also takes np.float64 and np.dtype("float64")
    except TypeError:
        name = None
    if name not in DTYPES or isinstance(dtype, bool):
        raise ValueError(f"dtype: expected one of {', '.join(map(repr, DTYPES))} (or None: 'float32'), got {dtype!r}")
    return name


def load_backend(name: str, device: str | None = None, dtype: str | None = None) -> Backend:
    """The adapter for ``name`` on ``device`` computing in ``dtype``, importing its framework on first use.

    Raises
    ------
    ValueError
        Unknown name, a device the backend does not have, or a dtype it cannot compute in.
    BackendNotInstalledError
        The framework does not import here; the message gives the pip extra.
    BackendLoadOrderError
        The framework must be imported before one that is already loaded.
    """
    if isinstance(dtype, str):  # the active backend's own key: get_backend() costs one lookup
        found = _loaded.get((name, device, dtype))
        if found is not None:
            return found
    key = (canonical_name(name), device, check_dtype(dtype))
    if key in _loaded:
        return _loaded[key]
    with _loading:  # one adapter instance per backend, device and dtype: compiled-function caches hang on it
        if key not in _loaded:
            spec = specs()[key[0]]
            if not spec.is_installed():
                raise BackendNotInstalledError(
                    f"backend {spec.name!r} is not installed here (no module named {spec.modules[0]!r}); "
                    f"install it with: {spec.hint}"
                )
            with thread_settings_kept():  # a framework's import must not slow down the others in the process
                _check_import_order(spec)
                try:
                    cls = spec.adapter_class()
                except ImportError as exc:
                    if (exc.name or "").partition(".")[0] == "convlab":
                        raise  # a bug in convlab, not a missing framework: say so
                    raise BackendImportError(
                        f"backend {spec.name!r}: {spec.modules[0] if spec.modules else spec.name} is installed but "
                        f"importing it fails ({exc}); reinstall it with: {spec.hint}"
                    ) from exc
            if key[2] not in cls.dtypes:
                raise ValueError(
                    f"dtype: the {spec.name} backend cannot compute in {key[2]}; it computes in "
                    f"{', '.join(cls.dtypes)} only"
                )
            # float32 keeps the two-argument call, so an adapter written before dtypes whose __init__ takes
            # (spec, device) still loads
            _loaded[key] = cls(spec, device) if key[2] == DTYPES[0] else cls(spec, device, key[2])
    return _loaded[key]


_env_choice: tuple[str, _Choice] | None = None
"""``($CONVLAB_BACKEND as read, its choice)``: layers ask for the active backend on every call (their dtype)."""


def _default() -> _Choice:
    global _env_choice
    if _default_choice is not None:
        return _default_choice
    wanted = os.environ.get(ENV_VAR) or DEFAULT
    if _env_choice is not None and _env_choice[0] == wanted:
        return _env_choice[1]
    try:
        choice = canonical_name(wanted), None, DTYPES[0]
    except ValueError as exc:
        raise ValueError(f"${ENV_VAR}: {exc}") from None
    _env_choice = wanted, choice
    return choice


def active_choice() -> tuple[str, str | None, str]:
    """``(name, device, dtype)`` of the active backend, as the block or default that chose it wrote them."""
    return _scoped_choice.get() or _default()


@export(pinned=True)
def get_backend() -> Backend:
    """The active backend.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.get_backend().name
    'numpy'
    """
    traced = Backend.traced()  # a compiled step runs: a compiler that traces bytecode cannot read the ContextVar
    if traced is not None:
        return traced
    return load_backend(*(_scoped_choice.get() or _default()))


@export
def set_backend(name: str, device: str | None = None, dtype: str | None = None) -> None:
    """Make ``name`` (on ``device``, in ``dtype``) the process-wide default backend.

    The framework is imported now, so a missing framework fails here rather
    than at the first computation. A surrounding :func:`use_backend` block
    still wins inside that block.

    Parameters
    ----------
    name : str
        A backend's name or alias; :func:`convlab.backend_names` lists them.
    device : str, optional
        Where tensors, layers and training live, in the framework's words
        (``"cuda"``, ``"gpu"``, ``"cpu"``); default: the framework's default.
    dtype : {"float32", "float64"}, optional
        The float dtype tensors and new layers get; default (``None``):
        ``"float32"``, the book's. JAX computes in float64 only in x64 mode,
        which this process-wide setting would have to switch on for every
        JAX user in the process: it refuses, and
        ``with cl.use_backend("jax", dtype="float64"):`` scopes it instead.

    Raises
    ------
    ValueError
        An unknown name, device or dtype, a dtype the backend cannot compute
        in, or one it can only compute in inside a :func:`use_backend` block.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.set_backend("numpy", dtype="float64")
    >>> cl.tensor([1, 2]).dtype
    dtype('float64')
    >>> cl.set_backend("numpy")
    >>> cl.get_backend().name
    'numpy'
    """
    global _default_choice
    backend = load_backend(name, device, dtype)
    if backend.scoped_only:
        raise ValueError(
            f"dtype: the {backend.name} backend computes in {backend.dtype} only inside a block, which switches the "
            f"framework's mode for the block alone: use `with convlab.use_backend({backend.name!r}, "
            f"dtype={backend.dtype.name!r}):` instead of set_backend"
        )
    _default_choice = (backend.name, device, backend.dtype.name)


@export
@contextlib.contextmanager
def use_backend(name: str, device: str | None = None, dtype: str | None = None) -> Iterator[Backend]:
    """Use backend ``name`` (on ``device``, in ``dtype``) inside a ``with`` block (per thread / async task).

    The previous backend, and its dtype, are restored on exit, also when the
    block raises.

    Parameters
    ----------
    name : str
        A backend's name or alias; :func:`convlab.backend_names` lists them.
    device : str, optional
        As in :func:`set_backend`.
    dtype : {"float32", "float64"}, optional
        The float dtype of the block: ``cl.tensor`` and new layers are made
        in it, and the layers of ``cl.nn`` made earlier on the same framework
        and device compute in it too (their parameters cast, gradients kept).
        Default (``None``): ``"float32"``, the book's. On JAX, float64 turns
        on x64 mode for the block only.

    Raises
    ------
    ValueError
        An unknown name or device, or a dtype that is not one of those, or that the backend cannot compute in.

    Examples
    --------
    >>> import convlab as cl
    >>> with cl.use_backend("numpy") as backend:
    ...     print(backend.name, backend.device)
    numpy cpu
    >>> with cl.use_backend("numpy", dtype="float64"):
    ...     print(cl.tensor([1.0]).dtype)
    float64
    >>> cl.tensor([1.0]).dtype
    dtype('float32')
    """
    backend = load_backend(name, device, dtype)
    token = _scoped_choice.set((backend.name, device, backend.dtype.name))
    try:
        with backend.block():
            yield backend
    finally:
        _scoped_choice.reset(token)


@export
def available_backends() -> list[str]:
    """Names of the backends whose framework imports in this environment.

    Each framework is actually imported (once per process), so this can take
    a few seconds the first time. A backend that cannot be loaded because of
    the import order of frameworks already loaded is left out.

    Examples
    --------
    >>> import convlab as cl
    >>> "numpy" in cl.available_backends()
    True
    """
    names = []
    for name in backend_names():
        try:
            load_backend(name)
        except (BackendNotInstalledError, BackendLoadOrderError):
            continue
        names.append(name)
    return names


@dataclass(frozen=True)
class BackendInfo:
    """One row of :func:`backend_info`."""

    name: str
    aliases: tuple[str, ...]
    installed: bool
    version: str | None
    install_hint: str


@export
def backend_info() -> list[BackendInfo]:
    """One row per known backend: name, aliases, installed or not, version, install hint.

    Reads package metadata only: no framework is imported.

    Examples
    --------
    >>> import convlab as cl
    >>> row = cl.backend_info()[0]
    >>> row.name, row.installed
    ('numpy', True)
    """
    rows = []
    for spec in specs().values():
        installed = spec.is_installed()
        rows.append(BackendInfo(spec.name, spec.aliases, installed, spec.version() if installed else None, spec.hint))
    return rows


def owning_backend(x: object) -> str | None:
    """The name of the backend whose framework ``x``'s type comes from, if any."""
    return _owner_of_type(type(x))


@functools.lru_cache(maxsize=256)
def _owner_of_type(kind: type) -> str | None:
    root = kind.__module__.partition(".")[0]
    for spec in specs().values():
        if root in spec.modules:
            return spec.name
    return None
