"""Module paths of convlab 0.1 that moved when the package took its floors: importable for one release, with a warning.

``import convlab.ops`` still works and warns, naming the new module
(``convlab.core.ops``). Each old path is a small proxy module placed in
``sys.modules`` when convlab is imported: it imports nothing until a name is
read from it, so ``import convlab`` stays as light as before, and it never
replaces a public attribute of the package (``convlab.gradcheck`` stays the
function).
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

MOVED: dict[str, tuple[str, ...]] = {
    "convlab._checks": ("convlab.core.checks",),
    "convlab._convert": ("convlab.core.convert",),
    "convlab._registry": ("convlab.core.registry",),
    "convlab.ops": ("convlab.core.ops", "convlab.core.padding"),
    "convlab.gradcheck": ("convlab.core.gradcheck",),
    "convlab.layers": ("convlab.nn.handwritten", "convlab.nn.losses", "convlab.backends.base"),
    "convlab.training": ("convlab.train.kernel",),
    "convlab.classifier": ("convlab.train.classifier", "convlab.train.records", "convlab.cli.lenet"),
    "convlab.exercises": ("convlab.chapter.conv_layer",),
    "convlab.padding_exercises": ("convlab.chapter.padding",),
    "convlab.chapter_exercises": ("convlab.chapter.channels", "convlab.chapter.pooling"),
    "convlab.disagreements": ("convlab.chapter.disagreements",),
    "convlab.demo": ("convlab.cli.demo",),
}
"""Old module path -> the modules its names now live in, searched in order."""

RENAMED: dict[tuple[str, str], str] = {("convlab.layers", "HandWrittenConv2D"): "HandWrittenConv2dDef"}
"""``(old module, old name)`` -> the name's new spelling."""


class MovedModule(types.ModuleType):
    """An old module path: reading a name warns once per name and returns it from its new module."""

    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name, f"Moved: see {', '.join(targets)}.")
        self.__targets = targets

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        name = RENAMED.get((self.__name__, attribute), attribute)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, name):
                warnings.warn(
                    f"{self.__name__} is deprecated and will be removed in convlab 0.3; "
                    f"import {name} from {target} instead",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, name)
        raise AttributeError(
            f"module {self.__name__!r} (moved to {', '.join(self.__targets)}) has no attribute {attribute!r}"
        )


def install() -> None:
    """Put a :class:`MovedModule` in ``sys.modules`` for each old path not already there."""
    for old, targets in MOVED.items():
        sys.modules.setdefault(old, MovedModule(old, targets))


def moved_module(name: str) -> types.ModuleType | None:
    """``convlab.<name>`` as an old path's proxy (for the package's ``__getattr__``), or ``None``."""
    return sys.modules.get(f"convlab.{name}") if f"convlab.{name}" in MOVED else None
