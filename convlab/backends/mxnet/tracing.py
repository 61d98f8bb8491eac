"""The MXNet backend's compiled step: a forward pass and loss traced into one ``mx.sym`` graph, run as a ``CachedOp``.

MXNet 1.9.1 compiles a graph of symbols (``mx.sym``), which a
``HybridBlock``'s ``hybrid_forward(F, x)`` writes with ``F = mx.sym``; it
cannot record one from NDArray calls (deferred compute came in 2.0). The
core's forward passes call the adapter's ops, and read shapes (a layer checks
its input, ``Flatten`` computes its output's), which a symbol lacks. So a
compiled step (:meth:`~convlab.backends.mxnet.adapter.MXNetBackend.compiled_train_step`)
traces them once per batch shape on :class:`_Traced` values, symbols that
know their shape: each op takes its namespaces from its input
(:func:`_namespace`), ``mxnet.np`` and ``mxnet.npx`` for arrays, their
``mx.sym`` twins for traced values, as Gluon's ``F`` does. The graph then
runs as Gluon runs a hybridized block, one ``CachedOp``
(:class:`_CompiledGraph`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convlab.backends.base import CompileUnavailableError
from convlab.backends.mxnet.framework import autograd, gluon, mnp, mx, npx


class _Traced:
    """A tensor of a forward pass being traced into an ``mx.sym`` graph: a symbol that knows its shape and dtype.

    The shape and dtype are inferred from the graph's inputs, whose shapes
    the trace knows. Arithmetic, indexing and methods (``x * y``,
    ``x.sum()``) are the symbol's, their results traced again; reading a
    value (``float(x)``, ``asnumpy``) is refused: the graph has none until
    it runs.
    """

    __slots__ = ("_dtype", "_shape", "is_reshaped_view", "symbol", "trace")

    def __init__(self, symbol: Any, trace: _Trace) -> None:
        self.symbol, self.trace = symbol, trace
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self.is_reshaped_view = False  # as an array's reshape_view is, once the adapter's reshape marks it

    @property
    def shape(self) -> tuple[int, ...]:
        if self._shape is None:
            self._shape = self.trace.infer(self.symbol, "shape")
        return self._shape

    @property
    def dtype(self) -> np.dtype:
        if self._dtype is None:
            self._dtype = np.dtype(self.trace.infer(self.symbol, "type"))
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def ctx(self) -> Any:
        return self.trace.context

    @property
    def T(self) -> _Traced:  # noqa: N802 - NumPy's name
        return self.trace.wrap(self.symbol.T)

    def reshape_view(self, shape: tuple[int, ...]) -> _Traced:
        return self.trace.wrap(self.symbol.reshape(shape))  # in a graph a reshape copies nothing either

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.symbol, name)
        if not callable(method):
            raise AttributeError(f"a traced tensor has no attribute {name!r}")
        return lambda *args, **kwargs: self.trace.call(method, *args, **kwargs)

    def __getitem__(self, key: Any) -> _Traced:
        return self.trace.call(self.symbol.__getitem__, key)

    def _value(self, *_: Any) -> Any:
        raise CompileUnavailableError(
            "the forward pass reads a tensor's value, which a traced graph has only when it runs"
        )

    asnumpy = item = wait_to_read = __array__ = __bool__ = __float__ = __int__ = __index__ = _value

    def __repr__(self) -> str:
        return f"<traced {self.symbol.name} {self.shape} {self.dtype}>"


def _traced_operator(name: str) -> Callable[..., Any]:
    def operator(self: _Traced, *others: Any) -> Any:
        return self.trace.call(getattr(type(self.symbol), name), self.symbol, *others)

    operator.__name__ = name
    return operator


for _name in (
    "add sub mul truediv pow matmul radd rsub rmul rtruediv rpow rmatmul neg eq ne lt le gt ge".split()
):  # the dunders the core's forward passes and losses use
    setattr(_Traced, f"__{_name}__", _traced_operator(f"__{_name}__"))


class _Namespaces:
    """``np`` and ``npx`` of one kind: ``mxnet``'s for arrays, a trace's (``mx.sym``'s, traced) for its values."""

    def __init__(self, np_: Any, npx_: Any) -> None:
        self.np, self.npx = np_, npx_


_CONSTANTS = ("zeros", "ones", "full")
"""``mxnet.np``'s functions that make an array of known values, which a trace makes an input of the graph."""


class _TracedNamespace:
    """An ``mx.sym`` namespace (``mx.sym.np``, ``mx.sym.npx``) whose functions take and return traced values.

    ``np.zeros``, ``np.ones`` and ``np.full`` make their array at once, an
    input of the graph (see :meth:`_Trace.constant`), not an operator in it:
    an operator's output cannot be where an operator writes (batch norm's
    running statistics), which a graph takes only from its inputs.
    """

    def __init__(self, namespace: Any, eager: Any, trace: _Trace) -> None:
        self._namespace, self._eager, self._trace = namespace, eager, trace

    def __getattr__(self, name: str) -> Any:
        function = getattr(self._namespace, name)
        if not callable(function):  # a submodule: mx.sym.np.random
            return _TracedNamespace(function, getattr(self._eager, name), self._trace)
        if self._eager is mnp and name in _CONSTANTS:
            return lambda *args, **kwargs: self._trace.constant(getattr(mnp, name)(*args, **kwargs))
        return lambda *args, **kwargs: self._trace.call(function, *args, **kwargs)


_ARRAYS = _Namespaces(mnp, npx)


def _namespace(x: Any) -> Any:
    """``mxnet.np`` and ``mxnet.npx`` as ``.np`` and ``.npx`` for an array; for a traced value, its trace's twins."""
    return x.trace.namespaces if isinstance(x, _Traced) else _ARRAYS


class _Trace:
    """One training step's forward pass and loss being written as one ``mx.sym`` graph, for one batch shape.

    Its inputs are the batch, ``X`` and ``Y``, and the parameters the
    forward pass reads (trainable and state alike), each a variable of known
    shape and dtype; its outputs, the loss and each state's new value.
    """

    def __init__(self, context: Any) -> None:
        self.context = context
        self.namespaces = _Namespaces(_TracedNamespace(mx.sym.np, mnp, self), _TracedNamespace(mx.sym.npx, npx, self))
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self.sources: dict[str, gluon.Parameter | str | _HostInput | Any] = {}
        """What feeds each variable, by name: ``"X"`` or ``"Y"``, a Gluon parameter, a host function, an array."""
        self.updates: dict[str, tuple[gluon.Parameter, Any]] = {}
        """Each state written: its variable's name, its parameter and its new value, a symbol."""
        self._variables: dict[int, _Traced] = {}

    def variable(self, name: str, shape: tuple[int, ...], dtype: Any, source: Any) -> _Traced:
        self.shapes[name], self.dtypes[name], self.sources[name] = tuple(shape), np.dtype(dtype), source
        return _Traced(mx.sym.var(name, shape=shape, dtype=np.dtype(dtype).name).as_np_ndarray(), self)

    def parameter(self, parameter: gluon.Parameter) -> _Traced:
        """The variable of ``parameter``: one per parameter, however many layers read it."""
        if id(parameter) not in self._variables:
            data = parameter.data()
            name = f"p{len(self._variables)}_{parameter.name}"
            self._variables[id(parameter)] = self.variable(name, data.shape, data.dtype, parameter)
        return self._variables[id(parameter)]

    def constant(self, array: Any) -> _Traced:
        """A variable fed ``array``, made at trace time, at every run."""
        return self.variable(f"c{len(self.sources)}", array.shape, array.dtype, array)

    def host(self, function: Callable[..., np.ndarray], shape: tuple[int, ...], dtype: Any, args: Any) -> _Traced:
        """A variable fed ``function`` of the values of ``args`` (variables of the graph), computed before each run."""
        names = [arg.symbol.name if isinstance(arg, _Traced) else None for arg in args]
        if any(name not in self.sources for name in names):
            raise CompileUnavailableError("a host function (seeded dropout's mask) takes a value the graph computes")
        sources = tuple(self.sources[name] for name in names)
        return self.variable(f"h{len(self.sources)}", shape, dtype, _HostInput(function, sources, dtype, self.context))

    def update(self, parameter: gluon.Parameter, value: Any) -> None:
        """Write ``value`` into ``parameter`` (a state) once the graph has run, as an eager module writes it."""
        if not isinstance(value, _Traced):
            raise CompileUnavailableError(f"a layer updates its state {parameter.name} with {type(value).__name__}")
        name = self.parameter(parameter).symbol.name
        if name in self.updates:  # eagerly the second call reads the first one's value; the graph, the old one
            raise CompileUnavailableError(f"a layer called twice in one step updates its state {parameter.name} twice")
        self.updates[name] = (parameter, value.symbol)

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function`` (of ``mx.sym``) on the symbols of traced ``args``, its result traced."""
        return self.wrap(function(*_symbols(args), **_symbols(kwargs)))

    def wrap(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):  # an operator of several outputs (batch norm's) returns a list
            return type(value)(self.wrap(item) for item in value)
        return _Traced(value, self) if isinstance(value, mx.sym.Symbol) else value

    def infer(self, symbol: Any, what: str) -> Any:
        """The shape (``what="shape"``) or dtype (``"type"``) of ``symbol``'s output, from the inputs'."""
        known = self.shapes if what == "shape" else {name: dtype.type for name, dtype in self.dtypes.items()}
        given = {name: known[name] for name in symbol.list_inputs() if name in known}
        _, (result, *_), _ = getattr(symbol, f"infer_{what}_partial")(**given)
        if result is None or (what == "shape" and any(n < 0 for n in result)):
            raise CompileUnavailableError(f"MXNet could not infer the {what} of {symbol.name} while tracing")
        return tuple(result) if what == "shape" else result


def _symbols(value: Any) -> Any:
    """``value`` with each traced value in it (also in lists, tuples and dicts) replaced by its symbol."""
    if isinstance(value, _Traced):
        return value.symbol
    if isinstance(value, (list, tuple)):
        return type(value)(_symbols(item) for item in value)
    if isinstance(value, dict):
        return {key: _symbols(item) for key, item in value.items()}
    return value


class _HostInput:
    """A graph input that NumPy computes before each run, from other inputs' values (:meth:`Backend.from_host`)."""

    def __init__(self, function: Callable[..., np.ndarray], sources: tuple[Any, ...], dtype: Any, context: Any) -> None:
        self.function, self.sources, self.dtype, self.context = function, sources, dtype, context

    def __call__(self, X: Any, Y: Any) -> Any:
        values = (_feed(source, X, Y).asnumpy() for source in self.sources)
        return mnp.array(self.function(*values), dtype=self.dtype, ctx=self.context)


def _feed(source: Any, X: Any, Y: Any) -> Any:
    """The array a graph's input gets from ``source`` (:attr:`_Trace.sources`) for the batch ``(X, Y)``."""
    if isinstance(source, gluon.Parameter):
        return source.data()
    if isinstance(source, str):
        return X if source == "X" else Y
    if isinstance(source, _HostInput):
        return source(X, Y)
    return source


class _CompiledGraph:
    """A traced step's graph as one ``CachedOp``, with the memory plan and shapes fixed, as ``hybridize`` makes it.

    Called on a batch, it returns the loss and writes the new state values
    back into their parameters; recorded under ``autograd.record()``, the
    loss's ``backward()`` reaches the trainable parameters' gradients.
    """

    def __init__(self, trace: _Trace, loss: _Traced) -> None:
        self.updates = list(trace.updates.values())
        graph = mx.sym.Group([loss.symbol, *(value for _, value in self.updates)], create_fn=type(loss.symbol))
        names = graph.list_inputs()
        self.sources = [trace.sources[name] for name in names]
        # The batch and host inputs change from call to call; the parameters' and constants' arrays stay, as
        # Gluon's flags say.
        data = [index for index, source in enumerate(self.sources) if isinstance(source, (str, _HostInput))]
        others = [index for index in range(len(names)) if index not in data]
        flags = [("static_alloc", True), ("static_shape", True), ("data_indices", data), ("param_indices", others)]
        self.cached_op = mx.nd.CachedOp(graph, [(key, str(value)) for key, value in flags])

    def __call__(self, X: Any, Y: Any) -> Any:
        args = [_feed(source, X, Y) for source in self.sources]
        with autograd.record():
            outputs = self.cached_op(*args)
        value, *states = outputs if isinstance(outputs, list) else [outputs]  # a list where there are several
        with autograd.pause():
            for (parameter, _), state in zip(self.updates, states, strict=True):
                state.copyto(parameter.data())
        return value
