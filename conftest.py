"""Root conftest: what doctest collection (``--doctest-modules``) must not import."""

from __future__ import annotations

import importlib.util
import pathlib


def _adapters_without_their_framework() -> list[str]:
    # A backend's modules import their framework at their top (the adapter, the reference module with the book's
    # tabs, and the modules an adapter is split into): where that framework is not installed, there is nothing to
    # collect (its backend's tests skip, saying so). The package's __init__ imports no framework.
    from convlab.backends.spec import module_installed
    from convlab.core.registry import specs

    ignored = []
    for spec in specs().values():
        if all(module_installed(module) for module in spec.modules):
            continue
        for module in (spec.adapter.partition(":")[0], spec.reference):
            found = importlib.util.find_spec(module) if module else None
            if found is None or not found.origin:
                continue
            ignored.append(found.origin)
            package = pathlib.Path(found.origin).parent
            if (package / "__init__.py").exists():
                ignored += [str(path) for path in sorted(package.glob("*.py")) if path.name != "__init__.py"]
    return sorted(set(ignored))


# Running __main__ would exit; the figures' examples need matplotlib (the `plot` extra).
collect_ignore = ["convlab/__main__.py", *_adapters_without_their_framework()]
if importlib.util.find_spec("matplotlib") is None:
    collect_ignore.append("convlab/plot")
