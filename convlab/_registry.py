"""Finding, selecting and loading backends.

Adapters are discovered by scanning :mod:`convlab.backends` (one file per
backend, each defining one :class:`~convlab.backends.base.Backend` subclass);
adding a backend adds a file and touches nothing here. Adapter modules import
no framework at module level, so discovery is cheap; a framework is imported
the first time its backend is used.

The active backend is the innermost :func:`use_backend` block of the current
context if any, otherwise the process default set by :func:`set_backend`,
otherwise ``$CONVLAB_BACKEND``, otherwise ``"numpy"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import os
import pkgutil
import threading
from collections.abc import Iterator

from convlab import backends as _backends_pkg
from convlab.backends.base import Backend
from convlab.errors import BackendNotInstalledError

ENV_VAR = "CONVLAB_BACKEND"
DEFAULT = "numpy"

_default_name: str | None = None
_scoped_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("convlab_backend", default=None)
_loaded: dict[str, Backend] = {}
_loading = threading.RLock()


@functools.cache
def _adapter_classes() -> dict[str, type[Backend]]:
    classes: dict[str, type[Backend]] = {}
    for info in pkgutil.iter_modules(_backends_pkg.__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_backends_pkg.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Backend) and obj.__module__ == module.__name__:
                classes[obj.name] = obj
    return dict(sorted(classes.items(), key=lambda item: (item[0] != DEFAULT, item[0])))


def backend_names() -> list[str]:
    """Canonical names of every backend convlab has an adapter for."""
    return list(_adapter_classes())


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
    for cls in _adapter_classes().values():
        if key == cls.name or key in cls.aliases:
            return cls.name
    known = ", ".join(
        cls.name + (f" (alias {', '.join(cls.aliases)})" if cls.aliases else "") for cls in _adapter_classes().values()
    )
    raise ValueError(f"backend: unknown backend {name!r}; expected one of: {known}")


def load_backend(name: str) -> Backend:
    """The adapter for ``name``, importing its framework on first use.

    Raises
    ------
    ValueError
        Unknown name.
    BackendNotInstalledError
        The framework does not import here; the message gives the pip extra.
    """
    key = canonical_name(name)
    if key in _loaded:
        return _loaded[key]
    with _loading:  # one adapter instance per backend: compiled-function caches hang on it
        if key not in _loaded:
            cls = _adapter_classes()[key]
            backend = cls()
            try:
                backend.import_framework()
            except ImportError as exc:
                raise BackendNotInstalledError(
                    f"backend {key!r} is not installed here ({exc}); install it with: {install_hint(cls)}"
                ) from exc
            _loaded[key] = backend
    return _loaded[key]


def install_hint(cls: type[Backend]) -> str:
    """The command that installs a backend's framework."""
    if cls.install_hint:
        return cls.install_hint
    return f'pip install "convlab[{cls.extra}]"' if cls.extra else "(built in)"


def _default() -> str:
    if _default_name is not None:
        return _default_name
    try:
        return canonical_name(os.environ.get(ENV_VAR) or DEFAULT)
    except ValueError as exc:
        raise ValueError(f"${ENV_VAR}: {exc}") from None


def get_backend() -> Backend:
    """The active backend.

    Examples
    --------
    >>> import convlab as cl
    >>> cl.get_backend().name
    'numpy'
    """
    return load_backend(_scoped_name.get() or _default())


def set_backend(name: str) -> None:
    """Make ``name`` the process-wide default backend.

    The framework is imported now, so a missing framework fails here rather
    than at the first computation. A surrounding :func:`use_backend` block
    still wins inside that block.

    Parameters
    ----------
    name : str
        ``"numpy"``, ``"torch"``, ``"tensorflow"``, ``"jax"`` or ``"mxnet"``,
        or an alias (``"pytorch"``, ``"tf"``, ``"mx"``).

    Examples
    --------
    >>> import convlab as cl
    >>> cl.set_backend("numpy")
    >>> cl.get_backend().name
    'numpy'
    """
    global _default_name
    backend = load_backend(name)
    _default_name = backend.name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Use backend ``name`` inside a ``with`` block (per thread / async task).

    The previous backend is restored on exit, also when the block raises.

    Examples
    --------
    >>> import convlab as cl
    >>> with cl.use_backend("numpy") as backend:
    ...     print(backend.name)
    numpy
    """
    backend = load_backend(name)
    token = _scoped_name.set(backend.name)
    try:
        yield backend
    finally:
        _scoped_name.reset(token)


def available_backends() -> list[str]:
    """Names of the backends whose framework imports in this environment.

    Each framework is actually imported (once per process), so this can take
    a few seconds the first time.

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
        except BackendNotInstalledError:
            continue
        names.append(name)
    return names


def owning_backend(x: object) -> str | None:
    """The name of the backend whose framework ``x``'s type comes from, if any."""
    return _owner_of_type(type(x))


@functools.lru_cache(maxsize=256)
def _owner_of_type(kind: type) -> str | None:
    root = kind.__module__.partition(".")[0]
    for cls in _adapter_classes().values():
        if root in cls.modules:
            return cls.name
    return None
