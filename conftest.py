"""Root conftest: what doctest collection (``--doctest-modules``) must not import."""

from __future__ import annotations

import importlib.util


def _adapters_without_their_framework() -> list[str]:
    # An adapter module and a reference module import their framework at their top: where that framework is not
    # installed, there is nothing to collect (its backend's tests skip, saying so).
    from convlab.backends.spec import module_installed
    from convlab.core.registry import specs

    ignored = []
    for spec in specs().values():
        if all(module_installed(module) for module in spec.modules):
            continue
        # the reference module (the book's tabs, idiomatic code) and the networks it times import the framework too
        adapter = spec.adapter.partition(":")[0]
        networks = adapter.rpartition(".")[0] + ".networks" if "." in adapter else None
        for module in (adapter, spec.reference, networks):
            found = importlib.util.find_spec(module) if module else None
            if found is not None and found.origin:
                ignored.append(found.origin)
    return ignored


# Running __main__ would exit; the figures' examples need matplotlib (the `plot` extra).
collect_ignore = ["convlab/__main__.py", *_adapters_without_their_framework()]
if importlib.util.find_spec("matplotlib") is None:
    collect_ignore.append("convlab/plot")
