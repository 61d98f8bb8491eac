"""Exceptions raised by convlab."""

from __future__ import annotations

from convlab._api import export


@export
class BackendNotInstalledError(ImportError):
    """The selected backend's framework cannot be imported in this environment."""


@export
class BackendImportError(BackendNotInstalledError):
    """The selected backend's framework is installed, but importing it fails: a broken install, not a missing one."""


@export
class DivergenceError(RuntimeError):
    """Gradient descent diverged: the loss became non-finite or kept growing.

    Attributes
    ----------
    lr : float
        The learning rate that was used.
    max_stable_lr : float
        ``2 / lambda_max`` of the loss's Hessian: plain gradient descent on the
        quadratic loss converges exactly when ``lr < max_stable_lr``.
    """

    def __init__(self, message: str, *, lr: float, max_stable_lr: float) -> None:
        super().__init__(message)
        self.lr = lr
        self.max_stable_lr = max_stable_lr


@export
class BackendLoadOrderError(ImportError):
    """A backend's framework must be imported before another framework that is already loaded.

    Importing them the other way round can crash the process, so convlab
    refuses instead and says which import must come first.
    """


@export
class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not where convlab looks; the message says where it looked and how to get them."""


@export
class DataCorruptError(ValueError):
    """A dataset's file is present but damaged: truncated, the wrong size or hash, or inconsistent.

    convlab refuses such data rather than train on it; the message names the
    file and what was wrong with it.
    """


@export
class OutputTooLargeError(MemoryError):
    """A call would allocate more than :func:`convlab.memory_limit` allows; refused before allocating.

    Attributes
    ----------
    function, argument : str
        The call, and the argument that makes its output large.
    nbytes, limit : int
        The bytes it would need, and the limit.
    """

    def __init__(self, message: str, *, function: str, argument: str, nbytes: int, limit: int) -> None:
        super().__init__(message)
        self.function, self.argument, self.nbytes, self.limit = function, argument, nbytes, limit


@export
class CompileFallbackWarning(RuntimeWarning):
    """A training step asked to compile (``train_classifier(compile=True)``) runs eagerly instead; the message says why.

    The eager step computes the same losses, more slowly.
    """
