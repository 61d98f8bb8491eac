"""One training step, eager or compiled whole by the framework's own compiler, and the choice between them."""

from __future__ import annotations

import re
import warnings
from typing import Any

from convlab.backends.base import Backend, CompileUnavailableError, Loss, Step, Tensor
from convlab.errors import CompileFallbackWarning

COMPILE_CHOICES = ("auto", True, False)
"""What ``compile=`` accepts: ``"auto"`` compiles where it pays over the run, ``True`` always, ``False`` never."""


def check_compile(compile: Any) -> bool | str:
    """``compile`` if it is one of :data:`COMPILE_CHOICES`, else a ``ValueError`` naming it."""
    if isinstance(compile, bool) or compile == "auto":
        return compile
    raise ValueError(f"compile: expected 'auto', True or False, got {compile!r}")


def wants_compiled(backend: Backend, compile: bool | str, steps: int | None) -> bool:
    """Whether a run of ``steps`` steps compiles: always for ``True``; for ``"auto"``, once the compile repays itself.

    ``"auto"`` needs the run's length: a run of unknown length stays eager.
    """
    if compile != "auto":
        return bool(compile)
    break_even = backend.compile_break_even_steps
    return break_even is not None and steps is not None and steps >= break_even


class TrainingStep:
    """One SGD step of ``model`` on ``(X, Y)``, compiled where asked and possible, eager otherwise.

    A compiled step that fails (no compiler for this model, no C++ compiler
    for TorchInductor, an operation the compiler refuses) is replaced by the
    eager step, which then runs the same batch again; a
    :class:`CompileFallbackWarning` says why, once. Only the first call can
    fail this way: a compiled step that has run once is kept.

    Parameters
    ----------
    backend : Backend
        The model's backend.
    model : module
        The module to train; its parameters change in place.
    loss : callable
        ``loss(Y_hat, Y)``, a core loss such as :class:`convlab.nn.losses.SoftmaxCrossEntropy`.
    lr : float
        Learning rate.
    compile : bool
        Compile the whole step with the framework's compiler.

    Attributes
    ----------
    compiled : bool
        Whether the step runs compiled (``False`` after a fallback).
    reason : str or None
        Why a step asked to compile runs eagerly.
    """

    def __init__(self, backend: Backend, model: Any, loss: Loss, lr: float, compile: bool) -> None:
        self.backend, self.model, self.loss, self.lr = backend, model, loss, lr
        self.reason: str | None = None
        self._eager = backend.train_step(model, loss, lr)
        self._step: Step = self._eager
        self._proven = not compile
        if compile:
            try:
                self._step = backend.compiled_train_step(model, loss, lr)
            except CompileUnavailableError as error:
                self._fall_back(str(error))
        self.compiled = self._step is not self._eager

    def __call__(self, X: Tensor, Y: Tensor) -> Any:
        if self._proven:
            return self._step(X, Y)
        try:
            value = self._step(X, Y)
        except Exception as error:  # whatever the compiler raises; the eager step re-raises real faults
            gist, kind = _gist(error), type(error).__name__
            self._fall_back(gist if gist.startswith(f"{kind}: ") else f"{kind}: {gist}")
            return self._eager(X, Y)
        self._proven = True
        return value

    def _fall_back(self, reason: str) -> None:
        self.reason = reason
        self._step, self._proven, self.compiled = self._eager, True, False
        warnings.warn(
            f"the {self.backend.name} backend could not compile the training step ({reason}); training eagerly",
            CompileFallbackWarning,
            stacklevel=3,
        )


def _gist(error: Exception) -> str:
    """What a compiler's error says went wrong, in a line or two.

    TensorFlow's errors open with ``in user code:`` and a traceback, then
    name the error raised inside and its cause on the lines after it.
    """
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return "no message"
    raised = [index for index, line in enumerate(lines) if re.match(r"\w+(Error|Exception): ", line)]
    if not lines[0].endswith(":") or not raised:
        return lines[0]
    start = raised[-1]
    return " ".join(lines[start : start + 2])
