"""``import convlab.torch as cl`` and ``from convlab import jax as cl``: the API pinned to one backend.

A bound module is made on first import, for any backend the registry knows
(by name or alias), so that adding a backend adds no module here. The names
it pins are those exported with ``pinned=True`` (:mod:`convlab._api`).
"""

from __future__ import annotations

import functools
import importlib.machinery
import sys
import types
from collections.abc import Callable
from typing import Any

from convlab import _api
from convlab.core.registry import canonical_name, is_backend_name, use_backend


def _pinned(function: Callable[..., Any], backend: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with use_backend(backend):
            return function(*args, **kwargs)

    return call


def _new_bound_module(module_name: str, backend: str) -> types.ModuleType:
    import convlab

    with use_backend(backend):
        pass  # imports the framework now, or raises BackendNotInstalledError
    module = types.ModuleType(module_name, f"convlab's API on the {backend} backend.")
    namespaces = _api.namespaces()
    for public in (name for name in _api.exported() if name not in namespaces):
        value = getattr(convlab, public)
        setattr(module, public, _pinned(value, backend) if _api.is_pinned(public) else value)
    for namespace in _api.namespaces():  # convlab.torch.nn: the layers, made on torch
        source = getattr(convlab, namespace)
        pinned = types.ModuleType(f"{module_name}.{namespace}", f"convlab.{namespace} on the {backend} backend.")
        for public in _api.exported(namespace):
            value = getattr(source, public)
            setattr(pinned, public, _pinned(value, backend) if _api.is_pinned(f"{namespace}.{public}") else value)
        pinned.__all__ = _api.exported(namespace)  # type: ignore[attr-defined]
        setattr(module, namespace, pinned)
    module.backend = backend  # type: ignore[attr-defined]
    module.__all__ = _api.exported()  # type: ignore[attr-defined]
    return module


def bound_module(name: str) -> types.ModuleType:
    """The module ``convlab.<name>``: every backend-dependent function runs on backend ``name``.

    The backend's framework is imported here, so a missing framework fails at
    the import statement, with the install hint.
    """
    module_name = f"convlab.{name}"
    if module_name not in sys.modules:
        sys.modules[module_name] = _new_bound_module(module_name, canonical_name(name))
    return sys.modules[module_name]


class BoundModuleFinder:
    """Finds ``convlab.<backend>`` for ``import convlab.<backend>``; consulted after the real submodules.

    A meta path finder and its loader by duck typing: subclassing ``importlib.abc``'s classes
    would import ``importlib.resources`` and its dependencies, about 30 ms, into ``import convlab``.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "convlab" or not name or "." in name or not is_backend_name(name):
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        name = spec.name.partition(".")[2]
        return sys.modules.get(spec.name) or _new_bound_module(spec.name, canonical_name(name))

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: :meth:`create_module` filled the module."""


def install_finder() -> None:
    """Put :class:`BoundModuleFinder` at the end of ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, BoundModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(BoundModuleFinder())
