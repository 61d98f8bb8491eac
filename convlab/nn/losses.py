"""The losses, written once on the backend primitives and compared by value, so compiled training steps are reused."""

from __future__ import annotations

from dataclasses import dataclass

from convlab.backends.base import Backend, Tensor


@dataclass(frozen=True)
class SquaredError:
    """The book's loss: squared error summed over all outputs.

    Compared by value, like :class:`LayerDef`, so compiled training steps are reused.
    """

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return self.backend.sum((Y_hat - Y) ** 2)


@dataclass(frozen=True)
class HalfMeanSquaredError:
    """The Java edition's loss, DJL's ``Loss.l2Loss()``: half the mean squared error."""

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return 0.5 * self.backend.mean((Y_hat - Y) ** 2)


@dataclass(frozen=True)
class SoftmaxCrossEntropy:
    """The mean softmax cross-entropy of logits ``Y_hat`` ``(N, classes)`` against one-hot ``Y``, as d2l's classifiers.

    The labels come one-hot (float) so that the loss needs no gather: ``-sum(Y * log_softmax(Y_hat)) / N``.
    """

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return -self.backend.sum(Y * self.backend.log_softmax(Y_hat, axis=1)) / Y_hat.shape[0]
