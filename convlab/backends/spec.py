"""What the registry knows about a backend before its framework is imported.

Each backend package's ``__init__`` holds one :class:`BackendSpec` named
``BACKEND`` and nothing else: reading it imports no framework. A third-party
package registers its own spec with :func:`convlab.register_backend` or
through the ``convlab.backends`` entry-point group.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from convlab._api import export


def module_installed(name: str) -> bool:
    """Whether ``name`` is an importable module or regular package, found without importing it.

    A bare folder that only shares the name (a namespace package: no
    ``__init__.py``, such as a student's ``jax/`` notebook folder, or a test
    folder on ``sys.path``) is not a framework, so it does not count.
    """
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return found is not None and found.origin not in (None, "namespace")


@export
@dataclass(frozen=True)
class BackendSpec:
    """A backend's metadata: names, framework modules, how to install it, import-order rules.

    Parameters
    ----------
    name : str
        The canonical name, as given to :func:`convlab.set_backend`.
    adapter : str
        ``"module:Class"`` of the :class:`~convlab.backends.base.Backend`
        subclass; importing ``module`` imports the framework.
    aliases : tuple of str
        Other accepted names (``"pytorch"`` for ``"torch"``).
    modules : tuple of str
        Top-level modules that the framework's tensor types come from; the
        first is the one that must import for the backend to count as installed.
    distribution : str, optional
        The PyPI distribution whose version :func:`convlab.backend_info`
        reports (default: the first of ``modules``).
    extra : str, optional
        The ``pip install "convlab[extra]"`` that installs the framework.
    install_hint : str, optional
        A command to suggest instead of ``pip install "convlab[extra]"``.
    import_first : tuple of str
        Frameworks (top-level modules) that must be imported before this
        backend's, where both are installed: the registry imports them first,
        and refuses to load them once this backend's framework is loaded.
    import_before : tuple of str
        The other direction: frameworks that this backend's framework must be
        imported before. Selecting the backend of one of them imports this
        backend's framework first, and selecting this backend once one of
        them is loaded is refused. A rule belongs to the spec of the backend
        that needs it, so a new backend never edits another's spec.
    reference : str, optional
        ``"package.module"`` of the backend's reference module: the book's own
        code and the framework's idiomatic code, as functions of
        :class:`~convlab.backends.reference.ReferenceModule`. Only
        ``convlab bench`` and :func:`convlab.shape_report` import it, through
        :func:`~convlab.backends.reference.load_reference`; without one, they
        say "not provided" where it would be.
    """

    name: str
    adapter: str
    aliases: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    distribution: str | None = None
    extra: str | None = None
    install_hint: str | None = None
    import_first: tuple[str, ...] = field(default=())
    import_before: tuple[str, ...] = field(default=())
    reference: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"name: expected a lower-case Python identifier, got {self.name!r}")
        module, colon, attribute = self.adapter.partition(":")
        if not (module and colon and attribute):
            raise ValueError(f"adapter: expected 'package.module:ClassName', got {self.adapter!r}")
        if self.reference is not None and not (
            isinstance(self.reference, str) and all(part.isidentifier() for part in self.reference.split("."))
        ):
            raise ValueError(f"reference: expected 'package.module' or None, got {self.reference!r}")

    @property
    def hint(self) -> str:
        """The command that installs this backend's framework."""
        if self.install_hint:
            return self.install_hint
        if self.extra:
            return f'pip install "convlab[{self.extra}]"'
        if self.modules:  # a third-party backend without a convlab extra: its framework's own distribution
            return f"pip install {self.distribution or self.modules[0]}"
        return "(built in)"

    def is_installed(self) -> bool:
        """Whether the framework's main module can be found, without importing it."""
        return not self.modules or module_installed(self.modules[0])

    def version(self) -> str | None:
        """The installed framework's version from its package metadata, without importing it."""
        from importlib import metadata

        name = self.distribution or (self.modules[0] if self.modules else None)
        if name is None:
            return None
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    def adapter_class(self) -> Any:
        """Import the adapter module (and with it the framework) and return the adapter class."""
        module, _, attribute = self.adapter.partition(":")
        return getattr(importlib.import_module(module), attribute)
