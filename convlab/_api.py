"""convlab's public names, and which of them run on a backend.

:func:`export` is the one mechanism behind both ``convlab.__all__`` and the
bound modules (``import convlab.torch``): an object exported with
``pinned=True`` computes on a backend, so a bound module wraps it to run on
that module's backend; every other export is shared as it is.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

_exports: dict[str, bool] = {}
"""Public name -> whether it runs on the active backend."""


def export(obj: T | None = None, *, pinned: bool = False, namespace: str | None = None) -> Any:
    """Make ``obj`` (a function, class or module) part of convlab's public API.

    Usable as ``@export``, ``@export(pinned=True)`` or ``export(module)``.
    With ``namespace="nn"`` the name is public as ``convlab.nn.<name>``
    (and pinned there in the bound modules: ``convlab.torch.nn.<name>``).
    """

    def mark(target: T) -> T:
        name = getattr(target, "__name__", "").rpartition(".")[2]
        if not name:
            raise TypeError(f"export: expected a named function, class or module, got {target!r}")
        _exports[f"{namespace}.{name}" if namespace else name] = pinned
        return target

    return mark if obj is None else mark(obj)


def exported(namespace: str | None = None) -> list[str]:
    """Every public name, sorted (``convlab.__all__``), or those of ``convlab.<namespace>``."""
    if namespace is None:  # the top-level names, and the namespaces themselves ("nn")
        return sorted({name.partition(".")[0] for name in _exports})
    prefix = f"{namespace}."
    return sorted(name.removeprefix(prefix) for name in _exports if name.startswith(prefix))


def namespaces() -> list[str]:
    """The exported submodules whose names are registered one by one (``"nn"``)."""
    return sorted({name.partition(".")[0] for name in _exports if "." in name})


def is_pinned(name: str) -> bool:
    """Whether the public ``name`` (``"corr2d"``, ``"nn.Conv2d"``) computes on the active backend.

    A namespace itself is not pinned: its names are, one by one.
    """
    return _exports.get(name, False)
