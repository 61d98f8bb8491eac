"""``from convlab import torch as cl``: convlab's API pinned to one backend."""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Callable
from typing import Any

from convlab import _registry
from convlab._registry import canonical_name, use_backend

_PINNED = (
    "Conv2D",
    "autograd_exercise",
    "conv2d",
    "corr2d",
    "corr2d_matrix",
    "max_stable_lr",
    "tensor",
    "train_kernel",
)
"""The functions that compute, and so run on the module's backend; every other public name is shared."""


def is_backend_name(name: str) -> bool:
    """Whether ``name`` is a backend's name or alias."""
    return any(name == cls.name or name in cls.aliases for cls in _registry._adapter_classes().values())


def _pinned(function: Callable[..., Any], backend: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with use_backend(backend):
            return function(*args, **kwargs)

    return call


def bound_module(name: str) -> types.ModuleType:
    """The module ``convlab.<name>``: every backend-dependent function runs on ``name``.

    The backend's framework is imported here, so a missing framework fails at
    the import statement, with the install hint.
    """
    import convlab

    backend = canonical_name(name)
    module_name = f"convlab.{name}"
    if module_name not in sys.modules:
        with use_backend(backend):
            pass  # imports the framework now, or raises BackendNotInstalledError
        module = types.ModuleType(module_name, f"convlab's API on the {backend} backend.")
        for public in _PINNED:
            setattr(module, public, _pinned(getattr(convlab, public), backend))
        shared = [public for public in convlab.__all__ if public not in _PINNED]
        for public in shared:
            setattr(module, public, getattr(convlab, public))
        module.backend = backend  # type: ignore[attr-defined]
        module.__all__ = list(convlab.__all__)  # type: ignore[attr-defined]
        sys.modules[module_name] = module
    return sys.modules[module_name]
