"""One training step, eager or compiled whole by the framework's own compiler, and the choice between them."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

from convlab.backends.base import Backend, CompileUnavailableError, Loss
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


class CompiledOrEager:
    """A function compiled by the framework where asked and possible, its eager twin otherwise.

    A compiled function that fails (no compiler for this model, no C++
    compiler for TorchInductor, an operation the compiler refuses) is replaced
    by the eager one, which then runs the same call again; a
    :class:`CompileFallbackWarning` says why, once. Only the first call can
    fail this way: a compiled function that has run once is kept.

    Parameters
    ----------
    backend : Backend
        The backend both functions run on (its name goes in the warning).
    purpose : str
        What the function does, for the warning ("the training step").
    eager : callable
        The eager function.
    compiled : callable, optional
        Builds the compiled function; may raise :class:`CompileUnavailableError`.
        ``None``: run eagerly.
    warn_unavailable : bool
        Warn where ``compiled`` raises :class:`CompileUnavailableError` (else
        run eagerly in silence: for a function whose compiling nobody asked
        for by name, such as evaluation in a compiled run).

    Attributes
    ----------
    compiled : bool
        Whether the function runs compiled (``False`` after a fallback).
    reason : str or None
        Why a function asked to compile runs eagerly.
    """

    def __init__(
        self,
        backend: Backend,
        purpose: str,
        eager: Callable[..., Any],
        compiled: Callable[[], Callable[..., Any]] | None,
        warn_unavailable: bool = True,
    ) -> None:
        self.backend, self.purpose = backend, purpose
        self.reason: str | None = None
        self._eager = self._function = eager
        self._proven = compiled is None
        if compiled is not None:
            try:
                self._function = compiled()
            except CompileUnavailableError as error:
                self._fall_back(str(error), warn=warn_unavailable)
        self.compiled = self._function is not self._eager

    def __call__(self, *args: Any) -> Any:
        if self._proven:
            return self._function(*args)
        try:
            value = self._function(*args)
        except Exception as error:  # whatever the compiler raises; the eager function re-raises real faults
            gist, kind = _gist(error), type(error).__name__
            self._fall_back(gist if gist.startswith(f"{kind}: ") else f"{kind}: {gist}")
            return self._eager(*args)
        self._proven = True
        return value

    def _fall_back(self, reason: str, warn: bool = True) -> None:
        self.reason = reason
        self._function, self._proven, self.compiled = self._eager, True, False
        if warn:
            warnings.warn(
                f"the {self.backend.name} backend could not compile {self.purpose} ({reason}); running it eagerly",
                CompileFallbackWarning,
                stacklevel=3,
            )


class TrainingStep(CompiledOrEager):
    """One SGD step of ``model`` on ``(X, Y)``, compiled whole where asked and possible, eager otherwise.

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
        Compile the whole step with the framework's compiler
        (:meth:`~convlab.backends.base.Backend.compiled_train_step`); see
        :class:`CompiledOrEager` for what happens where it cannot.
    """

    def __init__(self, backend: Backend, model: Any, loss: Loss, lr: float, compile: bool) -> None:
        compiled = (lambda: backend.compiled_train_step(model, loss, lr)) if compile else None
        super().__init__(backend, "the training step", backend.train_step(model, loss, lr), compiled)


class Prediction(CompiledOrEager):
    """``model(X)`` for evaluation, compiled where asked and the backend can, eager otherwise.

    A backend without a compiled prediction
    (:meth:`~convlab.backends.base.Backend.compiled_predict`) predicts eagerly
    without a warning: a compiled run asks for its training step, which
    takes nearly all of its time.
    """

    def __init__(self, backend: Backend, model: Any, compile: bool) -> None:
        compiled = (lambda: backend.compiled_predict(model)) if compile else None
        super().__init__(backend, "evaluation", partial(backend.predict, model), compiled, warn_unavailable=False)


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
