"""Training and evaluation mode, and the state that is not a parameter (batch norm's running statistics)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

from convlab._api import export
from convlab.nn.layers import module_backend

M = TypeVar("M")


@export(pinned=True, namespace="nn")
def set_training(model: M, training: bool) -> M:
    """Put ``model`` and every module in it in training (``True``) or evaluation (``False``) mode; return it.

    Batch norm normalises by the batch in training mode and by its running
    statistics in evaluation mode; dropout drops in training mode only.
    Modules start in training mode, as in PyTorch; ``cl.train_classifier``
    trains in training mode and measures accuracy in evaluation mode.

    Examples
    --------
    >>> import convlab as cl
    >>> net = cl.nn.Sequential(cl.nn.Linear(2, 2, seed=0), cl.nn.Dropout(0.5))
    >>> cl.nn.is_training(cl.nn.set_training(net, False))
    False
    """
    backend = module_backend(model, "model")
    if not isinstance(training, bool):
        raise TypeError(f"training: expected True or False, got {training!r}")
    backend.set_training(model, training)
    return model


@export(pinned=True, namespace="nn")
def is_training(model: Any) -> bool:
    """Whether ``model`` is in training mode (see :func:`set_training`)."""
    module_backend(model, "model")
    return bool(getattr(model, "training", True))


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[Any]:
    """``model`` in evaluation mode for the block, then in the mode each of its modules had before."""
    backend = module_backend(model, "model")
    modes: list[tuple[Any, bool]] = []

    def remember(module: Any) -> None:
        modes.append((module, bool(getattr(module, "training", True))))
        for child in backend.submodules(module):
            remember(child)

    remember(model)
    backend.set_training(model, False)
    try:
        yield model
    finally:
        for module, mode in modes:  # one by one: a block may have held submodules in another mode than its own
            module.training = mode


@export
def state(module: Any) -> dict[str, Any]:
    """A convlab module's non-trainable state by name (``"running_mean"``, ``"1.running_var"``), live tensors.

    Batch norm's running statistics and dropout's step counters: what a
    module remembers between calls, which no optimiser updates and
    :func:`convlab.parameters` does not list.

    Examples
    --------
    >>> import convlab as cl
    >>> sorted(cl.state(cl.nn.Sequential(cl.nn.Linear(2, 3, seed=0), cl.nn.BatchNorm1d(3))))
    ['1.running_mean', '1.running_var']
    """
    return module_backend(module).state(module)
