"""A backend written from scratch against the protocol: only :class:`~convlab.backends.base.Backend`'s abstract members.

It subclasses ``Backend`` itself, not another adapter, so it meets exactly
the set a new framework's adapter must implement, and it computes with NumPy
and convlab's array autograd (:mod:`convlab.backends.numpy.autograd`), which
stands in for a framework's own. ``tests/backends/scratch/test_scratch_backend.py``
registers it at run time and runs the shared suites on it; the docs page
"Adding a backend" walks through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerCall, LayerDef, Loss, Padding, Pair, Tensor
from convlab.backends.numpy import autograd
from convlab.backends.spec import BackendSpec


class ScratchModule:
    """A layer or a container: its parameters and state as arrays, its named submodules, the core's forward pass."""

    def __init__(
        self,
        definition: LayerDef,
        backend: Backend,
        initial: Mapping[str, np.ndarray],
        children: Sequence[Any] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.definition = definition
        self.backend = backend
        self.own = {name: np.array(value, dtype=np.float32) for name, value in initial.items()}
        self.buffers = {name: np.array(value, dtype=np.float32) for name, value in (state or {}).items()}
        self.children = tuple(children)
        self.names = definition.child_names(len(self.children))
        self.training = True

    def __call__(self, X: Tensor) -> Tensor:
        call = LayerCall(self.training, self.buffers)
        Y = self.definition.forward(self.backend, self.own, X, self.children, call)
        for name, value in call.updates.items():
            self.buffers[name][...] = autograd.value_of(value)  # outside the gradient
        return Y


def _slots(module: ScratchModule, prefix: str = "", registry: str = "own") -> Iterator[tuple[str, dict[str, Any], str]]:
    """``(dotted name, the dict that holds it, its key)`` for every parameter (or state), PyTorch's order and names."""
    holder = getattr(module, registry)
    for name in holder:
        yield prefix + name, holder, name
    for name, child in zip(module.names, module.children, strict=True):
        yield from _slots(child, f"{prefix}{name}.", registry)


@dataclass(frozen=True)
class ScratchConv2dDef(LayerDef):
    """The stand-in for a framework's own conv layer: one NCHW image of one channel, one 2-D kernel, no bias."""

    @property
    def title(self) -> str:
        return "Conv2D"

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Sequence[Any] = (),
        call: LayerCall | None = None,
    ) -> Any:
        weight = params["weight"]
        return backend.conv2d(X, backend.reshape(weight, (1, 1, *weight.shape)), (1, 1), (0, 0, 0, 0), 1)


class ScratchBackend(Backend):
    """NumPy float32 arrays, convlab's array autograd for gradients: the protocol's abstract set and nothing more."""

    def version(self) -> str:
        return np.__version__

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (np.ndarray, autograd.Tensor)

    def to_numpy(self, x: Tensor) -> np.ndarray:
        return np.asarray(x)

    def tensor(self, data: Any) -> Tensor:
        if isinstance(data, autograd.Tensor):  # inside a gradient computation: keep the graph
            return data
        return np.asarray(data, dtype=np.float32)

    def sigmoid(self, x: Tensor) -> Tensor:
        return autograd.sigmoid(x)

    def log_softmax(self, x: Tensor, axis: int = -1) -> Tensor:
        return autograd.log_softmax(x, axis)

    def relu(self, x: Tensor) -> Tensor:
        return autograd.relu(x)

    def pool2d(self, x: Tensor, window: Pair, stride: Pair, padding: Padding, mode: str) -> Tensor:
        return autograd.pool2d(x, window, stride, padding, mode)

    def conv2d(self, x: Tensor, w: Tensor, stride: Pair, padding: Padding, groups: int, bias: Tensor = None) -> Tensor:
        return autograd.conv2d(x, w, stride, padding, groups, bias)

    def corr2d_loop(self, X: Tensor, K: Tensor) -> Tensor:
        # The book's loop; float() keeps each number and, like the book's array assignment, drops its graph.
        h, w = K.shape
        rows, cols = range(X.shape[0] - h + 1), range(X.shape[1] - w + 1)
        return np.array([[float((X[i : i + h, j : j + w] * K).sum()) for j in cols] for i in rows], dtype=np.float32)

    def concat(self, tensors: Sequence[Tensor], axis: int) -> Tensor:
        return autograd.concat(tensors, axis)

    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Any:
        return ScratchModule(definition, self, initial, children, state)

    def submodules(self, module: ScratchModule) -> tuple[Any, ...]:
        return module.children

    def state(self, module: ScratchModule) -> dict[str, Tensor]:
        return {name: holder[key] for name, holder, key in _slots(module, registry="buffers")}

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        # No layers of its own: what PyTorch's Kaiming-uniform (a = sqrt(5)) draws, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        bound = 1.0 / np.sqrt(np.prod(shapes["weight"][1:]))
        rng = np.random.default_rng()
        return {name: rng.uniform(-bound, bound, shape).astype(np.float32) for name, shape in shapes.items()}

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> Any:
        initial = self.book_initial_kernel(kernel_size) if weight is None else weight
        return self.module(ScratchConv2dDef(), {"weight": initial})

    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        return np.random.default_rng().random(kernel_size, dtype=np.float32)

    def parameters(self, module: ScratchModule) -> dict[str, Tensor]:
        return {name: holder[key] for name, holder, key in _slots(module)}

    def value_and_grad(self, module: ScratchModule, X: Tensor, Y: Tensor, loss: Loss) -> tuple[float, dict[str, Any]]:
        slots = list(_slots(module))
        arrays = [holder[key] for _, holder, key in slots]

        def objective(*tracked: Any) -> Any:
            # The module computes with tracked copies of its parameters for this one call, then gets its arrays back.
            for (_, holder, key), value in zip(slots, tracked, strict=True):
                holder[key] = value
            try:
                return loss(module(X), Y)
            finally:
                for (_, holder, key), array in zip(slots, arrays, strict=True):
                    holder[key] = array

        value, grads = autograd.value_and_grad(objective, *arrays)
        return value, {name: grad for (name, _, _), grad in zip(slots, grads, strict=True)}

    def sgd_update(self, module: ScratchModule, grads: Mapping[str, Tensor], lr: float) -> None:
        for name, holder, key in _slots(module):
            holder[key] -= lr * grads[name]

    def grad(self, f: Callable[..., Tensor], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        return autograd.value_and_grad(f, *inputs)


BACKEND = BackendSpec("scratch", f"{__name__}:ScratchBackend")
