"""The MXNet backend: MXNet's NumPy interface (``mxnet.np``, ``npx.set_np()``) and Gluon, eager or traced whole.

Each choice is explained beside the code it concerns; the book's MXNet tabs
and Gluon's idiomatic code are in :mod:`convlab.backends.mxnet.reference`.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, CompileUnavailableError, LayerCall, LayerDef, Loss, Padding, Pair, Step
from convlab.backends.mxnet.numpy_compat import add_numpy_names_for_mxnet

# CONVLAB_VERBOSE=1 (any value but "" or "0") shows the warnings hidden here, which are MXNet's, not the user's.
_VERBOSE = os.environ.get("CONVLAB_VERBOSE", "") not in ("", "0")

add_numpy_names_for_mxnet(np)  # before import mxnet: makes MXNet 1.9.1 importable on today's NumPy
with warnings.catch_warnings():
    if not _VERBOSE:  # mxnet's own deprecated uses: distutils, and NEP 32 on NumPy 1.x
        warnings.filterwarnings("ignore", "distutils Version classes are deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "In accordance with NEP 32", DeprecationWarning)
    import mxnet as mx
    from mxnet import autograd, gluon, init, npx
    from mxnet import np as mnp
    from mxnet.gluon import nn
npx.set_np()


def _np_mode() -> None:
    # MXNet's NumPy mode is per thread: set at import, and again before a layer is built in a thread that has not
    # turned it on, where Gluon would create legacy NDArray parameters.
    if not npx.is_np_array():
        npx.set_np()


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
    :meth:`MXNetBackend.compiled_train_step` traces it into a graph instead.
    Its mode is its own ``training`` attribute, not Gluon's process-wide
    ``autograd.train_mode()``, so one model can hold modules in either mode,
    as in PyTorch.

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
        backend: MXNetBackend,
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
    """``nn.Conv2D(1, kernel_size, use_bias=False, in_channels=1)`` on 2-D inputs and outputs.

    Its ``reshape_view`` calls add and remove the batch and channel axes, as ``method="native"`` does.
    """

    def __init__(self, backend: MXNetBackend, kernel_size: Pair) -> None:
        super().__init__(1, kernel_size, use_bias=False, in_channels=1)
        self.backend = backend

    def forward(self, X: Any) -> Any:
        X = self.backend.tensor(X)
        Y = super().forward(X.reshape_view((1, 1, *X.shape)))
        return Y.reshape_view(Y.shape[2:])


_FUSED_SGD_WEIGHTS = 60
"""The most weights one ``multi_sgd_update`` call takes: MXNet 1.9.1 crashes (segfault) on more."""


def _gluon_parameters(module: nn.Block, trainable: bool = True) -> dict[str, gluon.Parameter]:
    """The parameters of ``module``, named as ``save_parameters`` names them: ``"weight"``, ``"0.bias"``, ...

    These structural names are convlab's dotted ones; Gluon's own names carry
    process-wide prefixes (``module3_weight``). ``trainable=False`` gives the
    state instead: the parameters made ``differentiable=False``, as
    ``nn.BatchNorm``'s running statistics are. ``grad_req="null"`` would not
    tell them apart: it also freezes a trainable parameter.
    """
    return {name: p for name, p in module._collect_params_with_prefix().items() if p._differentiable == trainable}


def _descendants(module: nn.Block) -> list[nn.Block]:
    """Every block under ``module``, depth first."""
    return [block for child in module._children.values() for block in (child, *_descendants(child))]


def _fresh_gradients(params: Mapping[str, gluon.Parameter]) -> dict[str, Any]:
    """The gradient buffer of each parameter that the last ``backward()`` wrote, else ``None``; computed on return.

    ``backward()`` flags the variable, not its gradient buffer: MXNet's
    "fresh gradient" flag, which ``gluon.Trainer`` checks too, and which is
    cleared here. The gradients are returned computed, so that a timed step
    counts its backward pass.
    """
    grads = {}
    for name, p in params.items():
        data = p.data()
        grads[name] = p.grad() if data._fresh_grad else None
        data._fresh_grad = False
        if grads[name] is not None:
            grads[name].wait_to_read()
    return grads


def _halves(padding: Padding) -> Pair | None:
    """``(rows, columns)`` on each side where ``padding`` is symmetric, else ``None``."""
    top, bottom, left, right = padding
    return (top, left) if top == bottom and left == right else None


def _pad(x: Any, padding: Padding, value: float = 0.0) -> Any:
    """``x`` with ``padding`` rows and columns of ``value`` around its last two axes, by concatenation.

    ``mxnet.np.pad`` does not work here: it reads ``numpy.compat``, gone in
    NumPy 2, and ignores ``constant_values``.
    """
    F = _namespace(x)
    top, bottom, left, right = padding
    for axis, sizes in ((2, (top, bottom)), (3, (left, right))):
        if any(sizes):
            before, after = (
                F.np.full((*x.shape[:axis], size, *x.shape[axis + 1 :]), value, dtype=x.dtype, ctx=x.ctx)
                for size in sizes
            )
            x = F.np.concatenate([before, x, after], axis=axis)
    return x


# -- the compiled step's tracing --------------------------------------------------
# MXNet 1.9.1 compiles a graph of symbols (mx.sym), which a HybridBlock's hybrid_forward(F, x) writes with F = mx.sym;
# it cannot record one from NDArray calls (deferred compute came in 2.0). The core's forward passes call this
# adapter's ops, and read shapes (a layer checks its input, Flatten computes its output's), which a symbol lacks.
# So a compiled step traces them once per batch shape on _Traced values, symbols that know their shape: each op
# takes its namespaces from its input (_namespace), mxnet.np and mxnet.npx for arrays, their mx.sym twins for
# traced values, as Gluon's F does. The graph then runs as Gluon runs a hybridized block, one CachedOp.


class _Traced:
    """A tensor of a forward pass being traced into an ``mx.sym`` graph: a symbol that knows its shape and dtype.

    The shape and dtype are inferred from the graph's inputs, whose shapes
    the trace knows. Arithmetic, indexing and methods (``x * y``,
    ``x.sum()``) are the symbol's, their results traced again; reading a
    value (``float(x)``, ``asnumpy``) is refused: the graph has none until
    it runs.
    """

    __slots__ = ("_dtype", "_shape", "symbol", "trace")

    def __init__(self, symbol: Any, trace: _Trace) -> None:
        self.symbol, self.trace = symbol, trace
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None

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


class MXNetBackend(Backend):
    """MXNet's NumPy interface and Gluon, in one context."""

    dtypes = ("float32", "float64")

    def __init__(self, spec: Any, device: str | None = None, dtype: str = "float32") -> None:
        super().__init__(spec, device, dtype)
        kind, _, index = self.device.partition(":")
        self.context = mx.Context(kind, int(index or 0))
        """The MXNet context of :attr:`device`, where tensors and parameters are made."""

    # -- core ------------------------------------------------------------------
    def version(self) -> str:
        return str(mx.__version__)

    def resolve_device(self, device: str | None) -> str:
        if device is None:
            return str(mx.context.current_context().device_type)
        kind, _, index = device.lower().partition(":")
        if kind not in ("cpu", "gpu") or not (index == "" or index.isdigit()):
            raise ValueError(f"device: expected 'cpu', 'gpu' or 'gpu:N', got {device!r}")
        if kind == "gpu" and int(index or 0) >= mx.context.num_gpus():
            raise ValueError(f"device: {device!r} was asked for, but MXNet sees {mx.context.num_gpus()} GPUs here")
        return device.lower()

    @property
    def tensor_types(self) -> tuple[type, ...]:
        # What Gluon's Parameter.data() and grad() return in NumPy mode; and, while a compiled step traces its
        # forward pass, the values traced, which the core's checks then take for this backend's tensors.
        return (mnp.ndarray, _Traced)

    def tensor(self, data: Any) -> Any:
        # mxnet.numpy.ndarray, float32, in the context of the device (mx.cpu(), mx.gpu(i)). Legacy mx.nd.NDArray
        # input is accepted as any other array, through NumPy (a copy).
        if isinstance(data, mnp.ndarray):  # the same array when nothing changes, so parameters keep their graph
            return data.astype(self.dtype, copy=False).as_in_ctx(self.context)
        if isinstance(data, _Traced):
            return data if data.dtype == self.dtype else data.astype(self.dtype)
        return mnp.array(data, dtype=self.dtype, ctx=self.context)  # without dtype, float64 would stay float64

    def one_hot(self, labels: Any, classes: int) -> Any:
        return npx.one_hot(labels, classes, dtype=self.dtype)

    def labels(self, data: np.ndarray) -> Any:
        # int64, what mxnet.np's argmax returns: its == refuses to compare int64 with int32.
        return mnp.array(np.asarray(data, dtype=np.int64), dtype=np.int64, ctx=self.context)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, gluon.Parameter):
            x = x.data()
        return x.asnumpy()

    def synchronize(self, y: Any) -> Any:
        # MXNet dispatches asynchronously; wait_to_read() waits for y, and copies nothing.
        y.wait_to_read()
        return y

    # -- nn ----------------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, stride: Pair, padding: Padding, groups: int, bias: Any = None) -> Any:
        halves = _halves(padding)
        if halves is None:  # MXNet's own padding is symmetric only: others are zeros concatenated first
            x, halves = _pad(x, padding), (0, 0)
        # The bias is npx.convolution's own (no_bias=False), as nn.Conv2D passes it.
        out_channels, _, *kernel = w.shape  # one shape query: each costs a call into MXNet
        return _namespace(x).npx.convolution(
            data=x,
            weight=w,
            bias=bias,
            kernel=kernel,
            stride=stride,
            pad=halves,
            num_filter=out_channels,
            num_group=groups,
            no_bias=bias is None,
        )

    def pool2d(self, x: Any, window: Pair, stride: Pair, padding: Padding, mode: str) -> Any:
        F = _namespace(x)
        halves = _halves(padding)
        # MXNet's own padding suits the protocol where it is symmetric: max pooling ignores it, average pooling
        # counts it (count_include_pad=True). Other paddings are concatenated first, -inf for max pooling and
        # zeros for average. npx.pooling rejects padding as wide as the window; past half of it, concatenate.
        if halves is None or halves[0] > window[0] // 2 or halves[1] > window[1] // 2:
            x, halves = _pad(x, padding, -np.inf if mode == "max" else 0.0), (0, 0)
        elif mode == "max":
            # MXNet 1.9.1's max-pooling backward misreads an input that is a reshape_view (it sends
            # every window's gradient to the window's first element): pool a copy.
            x = x.reshape(x.shape)
        y = F.npx.pooling(x, kernel=window, stride=stride, pad=halves, pool_type=mode, count_include_pad=True)
        top, bottom, left, right = padding
        if mode == "max" and (max(top, bottom) >= window[0] or max(left, right) >= window[1]):
            # Some window may lie wholly in the -inf padding; MXNet's max starts from the dtype's lowest
            # finite value, so such a window gives that instead of -inf. Both as arrays: a float64
            # scalar is compared in float32, and where()'s scalar form sends no gradient to y.
            lowest = F.np.full((), np.finfo(y.dtype).min, dtype=y.dtype, ctx=y.ctx)
            y = F.np.where(y == lowest, F.np.full(y.shape, -np.inf, dtype=y.dtype, ctx=y.ctx), y)
        return y

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        # A view that autograd records: mxnet.np's reshape copies, and indexing (Y[0, 0]) is several times slower.
        return x.reshape_view(shape)

    def linear(self, x: Any, w: Any, bias: Any = None) -> Any:
        # nn.Dense's operator, whose weight is (out, in) already; flatten=False keeps x's leading axes.
        return _namespace(x).npx.fully_connected(x, w, bias, num_hidden=w.shape[0], no_bias=bias is None, flatten=False)

    def sigmoid(self, x: Any) -> Any:
        # The operator of Gluon's activation= and nn.Activation, which oneDNN computes on the CPU. npx.sigmoid's
        # generic elementwise kernel took ten times as long on LeNet's first activation (128 x 6 x 28 x 28: 8 to
        # 11 ms against 1 ms), and an eager LeNet step 8 to 15% longer.
        return _namespace(x).npx.activation(x, act_type="sigmoid")

    def relu(self, x: Any) -> Any:
        return _namespace(x).npx.activation(x, act_type="relu")  # as sigmoid: Gluon's operator, computed by oneDNN

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        # npx.log_softmax is off by about 1e-6 where the answer is 0: the maximum is subtracted here.
        F = _namespace(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - F.np.log(F.np.exp(shifted).sum(axis=axis, keepdims=True))

    def concat(self, tensors: Any, axis: int) -> Any:
        return _namespace(tensors[0]).np.concatenate(list(tensors), axis=axis)

    def sqrt(self, x: Any) -> Any:
        return _namespace(x).np.sqrt(x)

    def batch_norm(self, X: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any]:
        # nn.BatchNorm's fused kernel, which returns the batch's mean and 1 / sqrt(variance + eps) beside Y.
        F = _namespace(X)
        channels = X.shape[1]
        running_mean = F.np.zeros(channels, dtype=X.dtype, ctx=X.ctx)
        running_var = F.np.ones(channels, dtype=X.dtype, ctx=X.ctx)
        # Outside train mode, MXNet's kernel normalises by the running statistics. A traced graph takes its mode
        # when it runs: a compiled step runs it under autograd.record(), which is train mode.
        with autograd.train_mode():
            Y, mean, inverse_std = F.npx.batch_norm(
                X, weight, bias, running_mean, running_var, eps=eps, momentum=0.0, fix_gamma=False,
                use_global_stats=False, output_mean_var=True, axis=1,
            )  # fmt: skip
        return Y, mean, 1.0 / (inverse_std * inverse_std) - eps

    # -- chapter ---------------------------------------------------------------
    def corr2d_loop(self, X: Any, K: Any) -> Any:
        """The book's MXNet tab: in-place item assignment into ``np.zeros``, made in ``X``'s context (so, GPU too).

        MXNet refuses in-place operations while ``autograd.record()`` records,
        so the loop layer cannot be differentiated:
        :func:`convlab.autograd_exercise` reports MXNet's error.
        """
        h, w = K.shape
        Y = mnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), ctx=X.ctx)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def auto_method(self, x_shape: Pair, k_shape: Pair) -> str:
        # The inherited shift-and-add records (it has no in-place operations), but each MXNet operator costs tens
        # of microseconds of dispatch: one convolution call beats its 3 k_h k_w dispatches at every size
        # `convlab bench` tries.
        return "native"

    def corr2d_bands(self, x_shape: Pair, k_shape: Pair) -> int:
        # oneDNN's one-channel convolution is slow past 256x256 pixels; as 16 channels of a depthwise one,
        # 3x to 9x faster on 512x512 to 2048x2048 (more bands gained nothing there, `convlab bench` sizes).
        return 16 if x_shape[0] * x_shape[1] > 256 * 256 else 1

    # -- modules and training ----------------------------------------------------
    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Module:
        _np_mode()
        layer = Module(self, definition, initial, children, state)
        # Its own parameters only: the children were initialised when they were made, and
        # layer.initialize() would warn once for each of their parameters.
        layer.params.initialize(ctx=self.context)
        return layer

    def submodules(self, module: nn.Block) -> tuple[Any, ...]:
        return tuple(module._children.values())

    def state(self, module: nn.Block) -> dict[str, Any]:
        return {name: p.data() for name, p in _gluon_parameters(module, trainable=False).items()}

    def from_host(self, function: Callable[..., np.ndarray], shape: tuple[int, ...], *args: Any) -> Any:
        # Traced, the function becomes an input of the graph, computed before each run from its arguments' values.
        trace = next((arg.trace for arg in args if isinstance(arg, _Traced)), None)
        if trace is not None:
            return trace.host(function, shape, self.dtype, args)
        if self.traced() is self:  # nothing says which trace: its value would be computed once, at trace time
            raise CompileUnavailableError("a host function without tensor arguments cannot be traced")
        return super().from_host(function, shape, *args)

    def dropout_mask(self, shape: tuple[int, ...], p: float, counter: Any) -> Any:
        # MXNet's generator (mx.random.seed governs it), on the device: keep where U >= p, with probability 1 - p.
        uniform = _namespace(counter).np.random.uniform(size=shape, dtype=self.dtype, ctx=self.context)
        return (uniform >= p).astype(self.dtype) / (1.0 - p)

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        _np_mode()
        out_size, in_size, *kernel = shapes["weight"]
        use_bias = "bias" in shapes
        if kind == "conv2d":
            layer = nn.Conv2D(out_size, tuple(kernel), in_channels=in_size, use_bias=use_bias)
        else:
            layer = nn.Dense(out_size, use_bias=use_bias, in_units=in_size)
        # Gluon's default: Uniform(0.07) weights, the bias's own "zeros"; OIHW and (out, in) already.
        layer.initialize(ctx=self.context)
        return {name: p.data().asnumpy() for name, p in _gluon_parameters(layer).items()}

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> BuiltinConv2d:
        _np_mode()
        layer = BuiltinConv2d(self, kernel_size)
        if self.dtype != np.float32:
            layer.cast(self.dtype.name)
        # Gluon's default initialiser, Uniform(0.07), kept without a weight, as the book's initialize() does.
        layer.initialize(ctx=self.context)
        if weight is not None:
            layer.weight.set_data(self.tensor(weight).reshape(layer.weight.shape))
        return layer

    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        _np_mode()
        weight = mnp.zeros(kernel_size, ctx=self.context)
        init.Uniform()(init.InitDesc("weight"), weight)  # what initialize() draws a weight from
        return weight.asnumpy()

    def parameters(self, module: nn.Block) -> dict[str, Any]:
        return {name: p.data() for name, p in _gluon_parameters(module).items()}

    def value_and_grad(self, module: nn.Block, X: Any, Y: Any, loss: Loss) -> tuple[float, dict[str, Any]]:
        """``backward()`` after ``autograd.record()``, as the book does.

        The gradients returned are Gluon's own buffers, which the next
        ``backward()`` overwrites. A parameter whose gradient ``backward()`` did not write (MXNet's "fresh
        gradient" flag, which ``gluon.Trainer`` checks too) has ``None``. It
        returns once the gradients are computed: MXNet would otherwise return
        with the backward pass still running, and a timed step
        (``convlab bench``) would leave its work to whatever is timed after
        it. A training step waits for its loss anyway, so little overlap is lost.
        """
        params = _gluon_parameters(module)
        with autograd.record():
            value = loss(module(X), Y)
        value.backward()
        return value.item(), _fresh_gradients(params)

    def sgd_update(self, module: nn.Block, grads: Mapping[str, Any], lr: float) -> None:
        self._sgd(_gluon_parameters(module), grads, lr)

    def _sgd(self, params: Mapping[str, gluon.Parameter], grads: Mapping[str, Any], lr: float) -> None:
        """:meth:`sgd_update` of the parameters ``params``, by name as ``grads`` names them."""
        if self.dtype != np.float32:
            # multi_sgd_update takes its learning rates as float32 (0.1 becomes 0.10000000149): a float64 step
            # would not be the float64 update every other backend makes, so it is the book's two operations.
            for name, grad in grads.items():
                params[name].data()[:] -= lr * grad
            return
        # The book's param.data()[:] -= lr * grad, computed by multi_sgd_update, the fused kernel that
        # gluon.Trainer's SGD calls: one operator for _FUSED_SGD_WEIGHTS parameters at a time, where -= and *
        # dispatch two per parameter.
        weights, pairs = [], []  # legacy NDArray views of the same memory, as the Trainer passes them
        for name, grad in grads.items():
            weights.append(params[name].data().as_nd_ndarray())
            pairs += [weights[-1], grad.as_nd_ndarray()]
        for start in range(0, len(weights), _FUSED_SGD_WEIGHTS):
            chunk = weights[start : start + _FUSED_SGD_WEIGHTS]
            count, arrays = len(chunk), pairs[2 * start : 2 * (start + len(chunk))]
            mx.nd.multi_sgd_update(*arrays, out=chunk, num_weights=count, lrs=(lr,) * count, wds=(0.0,) * count)
        for weight in weights:
            weight.wait_to_read()  # finished on return, so that a timed step counts its update

    # LeNet, batch 128, 2 loaded cores: the first compiled call, traced and made a CachedOp, took 26 to 55 ms against
    # 24 to 40 ms for a steady compiled call, which saved 11 to 16 ms on the eager step (36 to 56 ms): repaid
    # within 2 steps. 10 leaves room for a busier machine and a larger model's trace.
    compile_break_even_steps = 10

    def compiled_train_step(self, module: nn.Block, loss: Loss, lr: float) -> Step:
        """The forward pass and the loss as one graph, run as a hybridized block runs; then the eager step's update.

        At the first call on a batch shape the core's forward pass and loss
        are traced into one ``mx.sym`` graph (see :class:`_Traced`), which
        becomes a ``CachedOp`` with ``static_alloc`` and ``static_shape``,
        as ``hybridize(static_alloc=True, static_shape=True)`` makes one;
        each call runs it under ``autograd.record()``, ``backward()``, then
        :meth:`sgd_update`'s fused ``multi_sgd_update``. State the forward pass
        changes (batch norm's running statistics) is an output of the graph,
        written back after each run; what NumPy draws on the host (seeded
        dropout's masks) is an input, drawn before each run. A graph is kept
        per batch shape and per layers' modes. A forward pass that reads a
        tensor's value (``float(x)``) cannot be traced: its first call raises
        :class:`CompileUnavailableError`, as does one that writes a state
        twice in a step.
        """
        params = _gluon_parameters(module)
        layers = [module, *_descendants(module)]
        graphs: dict[tuple[Any, ...], _CompiledGraph] = {}

        def step(X: Any, Y: Any) -> Any:
            # A graph holds the shapes and the layers' modes it was traced with (batch norm's statistics, dropout).
            key = (X.shape, X.dtype, Y.shape, Y.dtype, *(getattr(layer, "training", None) for layer in layers))
            if key not in graphs:
                graphs[key] = self._trace_step(module, loss, X, Y)
            value = graphs[key](X, Y)
            value.backward()
            self._sgd(params, _fresh_gradients(params), lr)
            return value

        return step

    def _trace_step(self, module: nn.Block, loss: Loss, X: Any, Y: Any) -> _CompiledGraph:
        """``loss(module(X), Y)`` traced into one graph for batches of ``X``'s and ``Y``'s shapes, and compiled."""
        trace = _Trace(self.context)
        with self.tracing():
            value = loss(module(trace.variable("X", X.shape, X.dtype, "X")), trace.variable("Y", Y.shape, Y.dtype, "Y"))
        if not isinstance(value, _Traced) or value.shape != ():
            raise CompileUnavailableError(f"the loss traced to {value!r}, not a scalar of the graph")
        return _CompiledGraph(trace, value)

    def grad(self, f: Callable[..., Any], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        """``f(*inputs)`` and its gradients; float inputs keep their dtype, others become float64.

        MXNet's operators support float64 (what :func:`convlab.gradcheck` passes) on the CPU.
        """
        leaves = []
        for x in inputs:
            array = np.asarray(x)
            leaf = mnp.array(array, dtype=array.dtype if array.dtype.kind == "f" else np.float64, ctx=self.context)
            leaf.attach_grad()
            leaves.append(leaf)
        with autograd.record():
            value = f(*leaves)
        try:
            value.backward()
        except mx.base.MXNetError as exc:
            if "not in a computational graph" not in str(exc):
                raise  # else no input reached the value: no gradient for any
        return value.item(), [leaf.grad.asnumpy() if leaf._fresh_grad else None for leaf in leaves]
