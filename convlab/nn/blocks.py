"""Blocks with their own forward pass, written once: subclass :class:`Module`, get a module of every framework.

d2l §8 builds its networks from blocks that are not a sequence: ResNet's
``Residual`` adds its input back, GoogLeNet's ``Inception`` and DenseNet's
``DenseBlock`` concatenate branches. Each is written here as PyTorch and
Keras 3 write them: layers made in ``__init__``, a ``forward(self, X)`` in
convlab's operations (``cl.relu``, ``cl.concat``, ``+``). Making one returns
a module of the active framework (``nn.Module``, Keras ``Layer``, NNX
``Module``, Gluon ``Block``, Paddle ``Layer``, or NumPy's) whose
submodules are the layers, named as the attributes that hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from convlab._api import export
from convlab.backends.base import Backend, LayerCall, LayerDef, Tensor
from convlab.core.convert import describe
from convlab.core.registry import get_backend, use_backend
from convlab.nn.layers import Children, in_active_precision, input_tensor


def _is_layer(value: Any) -> bool:
    return isinstance(getattr(value, "definition", None), LayerDef) and isinstance(
        getattr(value, "backend", None), Backend
    )


@dataclass(frozen=True, eq=False)
class BlockDef(LayerDef):
    """A :class:`Module` subclass's forward pass over its named submodules; compares by identity.

    ``attributes`` are the block's other attributes (numbers, flags), which
    its ``forward`` may read; ``names`` the attributes that hold submodules,
    in the order they were set.
    """

    block: type
    names: tuple[str, ...]
    attributes: tuple[tuple[str, Any], ...]

    @property
    def title(self) -> str:
        return self.block.__name__

    def child_names(self, count: int) -> tuple[str, ...]:
        return self.names

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Children = (),
        call: LayerCall | None = None,
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, self.title)  # forward may use X itself (Residual's Y + X): a tensor, not data
        # A fresh instance whose submodules are the ones this call was handed: under a compiler that traces
        # the module (nnx.jit), those are the traced copies, not the ones made in __init__.
        bound = object.__new__(self.block)
        bound.__dict__.update(self.attributes)
        bound.__dict__.update(zip(self.names, children, strict=True))
        active = get_backend()
        if active.name == backend.name and active.device == backend.device:
            Y = self.block.forward(bound, X)
        else:  # cl.relu and cl.concat in forward use the active backend: make it the block's for the call
            with use_backend(backend.name, backend.device, backend.dtype.name):
                Y = self.block.forward(bound, X)
        if not isinstance(Y, backend.tensor_types):
            raise TypeError(
                f"{self.title}.forward: expected it to return a tensor of the {backend.name} backend, got {describe(Y)}"
            )
        return Y


class _BlockType(type):
    """Makes ``Block(...)`` return the framework's module, and ``isinstance(module, Block)`` see through it."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = cls.__new__(cls)
        instance.__init__(*args, **kwargs)
        return _build(instance)

    def __instancecheck__(cls, obj: Any) -> bool:
        definition = getattr(obj, "definition", None)
        if isinstance(definition, BlockDef):
            return issubclass(definition.block, cls)
        return type.__instancecheck__(cls, obj)


def _build(instance: Module) -> Any:
    block = type(instance)
    if block.forward is Module.forward:
        raise TypeError(f"{block.__name__}: a cl.nn.Module subclass must define forward(self, X)")
    backend = get_backend()
    names, children, attributes = [], [], []
    for name, value in vars(instance).items():
        if _is_layer(value):
            if value.backend is not backend:
                raise ValueError(
                    f"{block.__name__}.{name} was made on {value.backend!r}, but the active backend is {backend!r}; "
                    f"make every layer of a block on one backend"
                )
            names.append(name)
            children.append(value)
        elif isinstance(value, (list, tuple)) and any(_is_layer(item) for item in value):
            raise TypeError(
                f"{block.__name__}.{name}: a {type(value).__name__} of layers is not registered; "
                f"hold them as cl.nn.Sequential(*layers)"
            )
        else:
            attributes.append((name, value))
    return backend.module(BlockDef(block, tuple(names), tuple(attributes)), {}, tuple(children))


@export(namespace="nn")  # not pinned: a bound module's nn.Module must stay a class to subclass
class Module(metaclass=_BlockType):
    """A block written once: make layers in ``__init__``, write ``forward(self, X)``; get a module of any framework.

    Making a subclass returns a module of the active framework, whose
    submodules are the ``cl.nn`` layers (and blocks) held as attributes,
    named after them: its parameters are ``"conv1.weight"``, ...; the
    framework's optimisers and :func:`convlab.train_classifier` train it, and
    ``isinstance(module, TheSubclass)`` holds. ``forward`` uses convlab's
    operations (:func:`convlab.relu`, :func:`convlab.concat`) and the
    tensors' own ``+`` and ``*``. Hold a list of layers as
    ``cl.nn.Sequential(*layers)``.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> class Residual(cl.nn.Module):
    ...     def __init__(self, channels):
    ...         self.conv = cl.nn.Conv2d(channels, channels, 3, padding=1, seed=0)
    ...     def forward(self, X):
    ...         return cl.relu(self.conv(X) + X)
    >>> block = Residual(2)
    >>> sorted(cl.parameters(block))
    ['conv.bias', 'conv.weight']
    >>> block(np.ones((1, 2, 4, 4), dtype=np.float32)).shape
    (1, 2, 4, 4)
    >>> isinstance(block, Residual)
    True
    """

    def __init__(self) -> None:
        pass  # nothing to set up: `super().__init__()` may be called or not, as in Keras and PyTorch

    def forward(self, X: Tensor) -> Tensor:
        """The block's output for ``X``; every subclass defines it."""
        raise NotImplementedError
