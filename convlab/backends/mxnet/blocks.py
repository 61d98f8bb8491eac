"""The MXNet backend's modules: convlab's layers, and the framework's own convolution, as Gluon ``Block`` objects.

:meth:`~convlab.backends.mxnet.adapter.MXNetBackend.module` and
:meth:`~convlab.backends.mxnet.adapter.MXNetBackend.builtin_conv2d` make
them; ``gluon.Trainer``, ``collect_params()`` and ``save_parameters`` take
them as they take Gluon's own blocks.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerCall, LayerDef, Pair
from convlab.backends.mxnet.framework import autograd, gluon, init, nn
from convlab.backends.mxnet.tracing import _Traced


class _Value(init.Constant):
    """``init.Constant`` that fills 0-d parameters too (dropout's step).

    Gluon's own initialisers write ``arr[:]``, which a 0-d ``mxnet.np`` array refuses.
    """

    def _init_weight(self, _: Any, arr: Any) -> None:
        arr[()] = self.value


class _StateParameter(gluon.Parameter):
    """A state tensor's Gluon parameter whose value ``load_parameters`` can set where it is 0-d (dropout's step).

    Gluon's ``set_data`` writes ``arr[:]``, which a 0-d ``mxnet.np`` array refuses.
    """

    def set_data(self, data: Any) -> None:
        if self._data is None or data.ndim:
            super().set_data(data)
            return
        for arr in self._check_and_get(self._data, list):
            arr[()] = data


class Module(nn.Block):
    """A convlab layer as a Gluon ``Block``: core parameters and forward pass, Gluon's registration.

    Every layer (the hand-written one, each of ``cl.nn``) is one, holding one
    ``self.params.get`` parameter per initial value, as the book's layer
    does, so ``gluon.Trainer(net.collect_params(), "sgd", ...)`` trains it. It
    is a ``Block``, not a ``HybridBlock``: the core's forward passes call
    ``mxnet.np`` on arrays, not symbols, so ``hybridize()`` leaves it eager;
    :meth:`~convlab.backends.mxnet.adapter.MXNetBackend.compiled_train_step`
    traces it into a graph instead. Its mode is its own ``training``
    attribute, not Gluon's process-wide ``autograd.train_mode()``, so one
    model can hold modules in either mode, as in PyTorch.

    Parameters
    ----------
    backend : MXNetBackend
        The backend the layer computes with, whatever backend is active later.
    definition : LayerDef
        The layer's forward pass.
    initial : mapping of str to numpy.ndarray
        One parameter per entry, from ``self.params.get`` and set as an
        attribute of that name (``layer.weight``), starting at that value once
        the layer is initialised.
    children : tuple of Module
        Submodules, registered with ``register_child`` under
        ``definition.child_names`` (``"0"``, ``"1"``, ... as ``nn.Sequential``
        names them; ``"conv1"`` in a block), so that ``collect_params()``
        holds their parameters too, and reachable as attributes of those names.
    state : mapping of str to numpy.ndarray, optional
        One parameter per entry, as ``initial``, but made as ``nn.BatchNorm``
        makes its ``running_mean``: ``grad_req="null"`` and not differentiable.
    """

    def __init__(
        self,
        backend: Backend,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[nn.Block, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.definition = definition
        # Gluon makes float32 parameters unless told: a float64 backend's layers get float64 ones.
        precision = {} if backend.dtype == np.float32 else {"dtype": backend.dtype.type}
        for name, value in initial.items():
            setattr(self, name, self.params.get(name, shape=value.shape, init=_Value(value), **precision))
        # As nn.BatchNorm's running statistics: without a gradient, so gluon.Trainer and backward() pass them by.
        frozen = {"grad_req": "null", "differentiable": False}
        for name, value in (state or {}).items():
            parameter = self.params.get(name, shape=value.shape, init=_Value(value), **frozen, **precision)
            parameter.__class__ = _StateParameter  # made by Gluon's own registry, which takes no class
            setattr(self, name, parameter)
        for name, child in zip(definition.child_names(len(children)), children, strict=True):
            self.register_child(child, name)
        # Kept beside Gluon's registries so that a call does not rebuild them; Gluon sees these blocks as registered.
        self.layers = tuple(children)
        self.training = True

    def __getattr__(self, name: str) -> Any:
        # Submodules as attributes ("conv1"), looked up only where no attribute has the name: setattr would
        # register them just as well, but one named as a Block attribute ("params", "name") would then fail.
        children = self.__dict__.get("_children", {})
        if name in children:
            return children[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def forward(self, X: Any) -> Any:
        # Traced (a compiled step's first call), the parameters are the graph's variables and the new state values
        # become outputs of the graph, which the step writes back once it has run.
        trace = X.trace if isinstance(X, _Traced) else None
        # _reg_params is Gluon's own registry of this block's parameters: reading it costs less than collect_params().
        params, state = {}, {}
        for name, p in self._reg_params.items():
            (params if p._differentiable else state)[name] = p.data() if trace is None else trace.parameter(p)
        call = LayerCall(self.training, state)
        Y = self.definition.forward(self.backend, params, X, self.layers, call)
        if call.updates and trace is not None:
            for name, value in call.updates.items():
                trace.update(self._reg_params[name], value)
        elif call.updates:
            # Paused, the copy is not recorded: under autograd.record() it would make the state an output of the
            # graph, which the next in-place write refuses. copyto casts a float64 block's values.
            with autograd.pause():
                for name, value in call.updates.items():
                    value.copyto(state[name])
        return Y

    def __repr__(self) -> str:
        shapes = "".join(f", {name}={p.shape}" for name, p in self._reg_params.items())
        nested = "".join("\n" + textwrap.indent(f"({name}): {child!r}", "  ") for name, child in self._children.items())
        end = "\n)" if nested else ")"
        return f"{type(self).__name__}({self.definition}{shapes}{nested}{end}"


class BuiltinConv2d(nn.Conv2D):
    """``nn.Conv2D(1, kernel_size, use_bias=False, in_channels=1)``, NCHW as Gluon's own."""

    def __init__(self, backend: Backend, kernel_size: Pair) -> None:
        super().__init__(1, kernel_size, use_bias=False, in_channels=1)
        self.backend = backend

    def forward(self, X: Any) -> Any:
        return super().forward(self.backend.tensor(X))
