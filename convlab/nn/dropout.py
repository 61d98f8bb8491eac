"""Dropout (d2l §5.6, used by AlexNet and VGG in §8), written once: seeded masks are NumPy's, on every backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, LayerCall, LayerDef, Tensor
from convlab.core.checks import check_fraction, check_seed
from convlab.core.registry import get_backend
from convlab.nn.layers import Children, in_active_precision, input_tensor


def seeded_keep_mask(seed: int, p: float, shape: tuple[int, ...], step: np.ndarray) -> np.ndarray:
    """Which units call ``step`` of a dropout layer seeded ``seed`` keeps: 1 with probability ``1 - p``, else 0.

    A pure function of its arguments (NumPy's generator seeded with ``(seed,
    step)``, a unit kept where its uniform number is at least ``p``), so every
    backend, and every run, drops the same units on the same step. The ones
    and zeros are exact in any dtype; the layer scales the kept units.

    Examples
    --------
    >>> seeded_keep_mask(0, 0.5, (2, 4), np.float32(0))
    array([[1., 0., 0., 0.],
           [1., 1., 1., 1.]], dtype=float32)
    """
    rng = np.random.default_rng([seed, int(np.asarray(step))])
    return (rng.random(shape) >= p).astype(np.float32)


@dataclass(frozen=True)
class DropoutDef(LayerDef):
    """Inverted dropout: in training mode each element is zeroed with probability ``p``, the rest scaled by ``1/(1-p)``.

    The identity in evaluation mode. ``seed`` (an int) draws the masks with
    :func:`seeded_keep_mask`; ``None`` with the framework's own generator.
    """

    p: float
    seed: int | None

    @property
    def title(self) -> str:
        return "Dropout"

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Children = (),
        call: LayerCall | None = None,
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, "Dropout")
        if call is None or not call.training or self.p == 0.0:
            return X
        shape = tuple(int(n) for n in X.shape)
        step = call.state["step"]
        call.updates["step"] = step + 1
        if self.seed is None:
            return X * backend.dropout_mask(shape, self.p, step)
        keep = backend.from_host(_SeededKeep(self.seed, self.p, shape), shape, step)
        return X * keep * (1.0 / (1.0 - self.p))


@dataclass(frozen=True)
class _SeededKeep:
    """:func:`seeded_keep_mask` with all but the step bound; compares by value, so a compiled step is reused."""

    seed: int
    p: float
    shape: tuple[int, ...]

    def __call__(self, step: np.ndarray) -> np.ndarray:
        return seeded_keep_mask(self.seed, self.p, self.shape, step)


@export(pinned=True, namespace="nn")
def Dropout(p: float = 0.5, seed: int | None = None) -> Any:  # noqa: N802 - the frameworks' name
    """Inverted dropout as a module of the active framework: zero each element with probability ``p`` in training.

    The kept elements are scaled by ``1/(1-p)``, so evaluation mode (where
    the layer is the identity) needs no rescaling, as in every framework.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in ``[0, 1)``.
    seed : int, optional
        Draw the masks with NumPy from ``(seed, step)``, where ``step``
        counts the layer's training calls (its state, from 0): every backend
        drops the same units on the same step. ``None`` uses the framework's
        own generator (``torch.manual_seed`` and the like govern it); the
        count then starts at a random number, from which JAX derives its keys.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> drop = cl.nn.Dropout(0.5, seed=0)
    >>> cl.to_numpy(drop(np.ones((2, 4), dtype=np.float32)))
    array([[2., 0., 0., 0.],
           [2., 2., 2., 2.]], dtype=float32)
    >>> cl.to_numpy(cl.nn.set_training(drop, False)(np.ones((1, 2), dtype=np.float32)))
    array([[1., 1.]], dtype=float32)
    """
    definition = DropoutDef(check_fraction(p, "p", what="a probability", below_one=True), check_seed(seed))
    # An unseeded layer's counter starts anywhere below 2**20 (exact in float32 for 15 million steps more), so a
    # framework that derives its keys from the counter (JAX) gives two such layers different masks.
    start = int(np.random.default_rng().integers(2**20)) if seed is None else 0
    return get_backend().module(definition, {}, (), {"step": np.full((), start, np.float32)})
