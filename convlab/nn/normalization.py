"""Batch normalisation (d2l §8.5), written once: the batch's statistics in training, the running ones in evaluation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, LayerCall, LayerDef, Tensor
from convlab.core.checks import check_count, check_fraction, check_positive
from convlab.core.convert import describe
from convlab.core.registry import get_backend
from convlab.nn.layers import Children, in_active_precision, input_tensor


@dataclass(frozen=True)
class BatchNormDef(LayerDef):
    """Normalise each channel (``spatial``: of NCHW input; else of ``(N, C)``), then scale and shift it.

    In training mode the batch's mean and biased variance normalise it, and
    the running statistics move towards the batch's, with the *unbiased*
    variance, as PyTorch does; in evaluation mode the running statistics
    normalise it.
    """

    num_features: int
    eps: float
    momentum: float
    spatial: bool

    @property
    def title(self) -> str:
        return "BatchNorm2d" if self.spatial else "BatchNorm1d"

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Children = (),
        call: LayerCall | None = None,
    ) -> Tensor:
        original = backend
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, self.title)
        shape = tuple(X.shape)
        ndim, expected = (4, "(N, C, H, W)") if self.spatial else (2, "(N, C)")
        if len(shape) != ndim or shape[1] != self.num_features:
            raise ValueError(
                f"{self.title}: expected an input of shape {expected} with C = num_features = {self.num_features}, "
                f"got {describe(X)}"
            )
        call = call if call is not None else LayerCall(training=True)
        state = (
            {name: backend.tensor(value) for name, value in call.state.items()}
            if backend is not original
            else call.state
        )
        if call.training:
            count = math.prod(shape) // shape[1]
            if count < 2:
                raise ValueError(
                    f"{self.title}: in training mode each channel needs more than one value to have a variance, "
                    f"got an input of shape {shape}; use a batch of more than one, or evaluation mode "
                    f"(cl.nn.set_training(model, False))"
                )
            Y, mean, variance = backend.batch_norm(X, params["weight"], params["bias"], self.eps)
            if "running_mean" in state:
                keep = 1.0 - self.momentum
                call.updates["running_mean"] = keep * state["running_mean"] + self.momentum * mean
                unbiased = variance * (count / (count - 1))
                call.updates["running_var"] = keep * state["running_var"] + self.momentum * unbiased
            return Y
        return backend.normalize(
            X, state["running_mean"], state["running_var"], params["weight"], params["bias"], self.eps
        )


def _batch_norm(num_features: int, eps: float, momentum: float, spatial: bool) -> Any:
    channels = check_count(num_features, "num_features")
    definition = BatchNormDef(
        channels, float(check_positive(eps, "eps")), check_fraction(momentum, "momentum"), spatial
    )
    initial = {"weight": np.ones(channels, np.float32), "bias": np.zeros(channels, np.float32)}
    state = {"running_mean": np.zeros(channels, np.float32), "running_var": np.ones(channels, np.float32)}
    return get_backend().module(definition, initial, (), state)


@export(pinned=True, namespace="nn")
def BatchNorm2d(num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> Any:  # noqa: N802
    """Batch normalisation of each channel of NCHW input, as a module of the active framework (d2l §8.5).

    PyTorch's conventions, which the book's formula follows:

    * training mode: ``Y = weight (X - mean) / sqrt(var + eps) + bias`` with
      the batch's mean and *biased* variance over ``N``, ``H`` and ``W``;
      then ``running = (1 - momentum) running + momentum batch``, with the
      *unbiased* variance for ``running_var``;
    * evaluation mode (:func:`convlab.nn.set_training`): the running
      statistics in place of the batch's.

    Keras writes ``momentum`` the other way round (its 0.99 is PyTorch's
    0.01); the disagreements page shows it.

    Parameters
    ----------
    num_features : int
        Channels ``C`` of the input.
    eps : float
        Added to the variance, for stability.
    momentum : float
        Weight of the batch's statistics in the running ones, in ``[0, 1]``.

    Returns
    -------
    layer
        A module with parameters ``weight`` (ones) and ``bias`` (zeros) of
        shape ``(C,)`` and state ``running_mean`` (zeros) and ``running_var``
        (ones), which :func:`convlab.state` returns and no optimiser touches.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> bn = cl.nn.BatchNorm2d(1)
    >>> X = cl.tensor(np.arange(8.0).reshape(2, 1, 2, 2))
    >>> Y = cl.to_numpy(bn(X))
    >>> round(float(Y.mean()), 6), round(float(Y.std()), 4)
    (0.0, 1.0)
    >>> cl.to_numpy(cl.state(bn)["running_mean"])  # 0.9 * 0 + 0.1 * 3.5
    array([0.35], dtype=float32)
    """
    return _batch_norm(num_features, eps, momentum, spatial=True)


@export(pinned=True, namespace="nn")
def BatchNorm1d(num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> Any:  # noqa: N802
    """Batch normalisation of each feature of ``(N, C)`` input (after a ``Linear``), as :func:`BatchNorm2d`.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> Y = cl.nn.BatchNorm1d(3)(cl.tensor([[0.0, 1.0, 2.0], [2.0, 3.0, 6.0]]))
    >>> np.round(cl.to_numpy(Y), 3)
    array([[-1., -1., -1.],
           [ 1.,  1.,  1.]], dtype=float32)
    """
    return _batch_norm(num_features, eps, momentum, spatial=False)
