"""The MXNet backend: MXNet's NumPy interface (``mxnet.np``, ``npx.set_np()``) and Gluon, eager or traced whole.

This module is the protocol's implementation, :class:`MXNetBackend`. MXNet's
import is set up in :mod:`convlab.backends.mxnet.framework`, the layers'
Gluon blocks are in :mod:`convlab.backends.mxnet.blocks`, and the compiled
step's tracing in :mod:`convlab.backends.mxnet.tracing`. Each choice is
explained beside the code it concerns; the book's MXNet tabs and Gluon's
idiomatic code are in :mod:`convlab.backends.mxnet.reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, CompileUnavailableError, LayerDef, Loss, Padding, Pair, Step
from convlab.backends.mxnet.blocks import BuiltinConv2d, Module
from convlab.backends.mxnet.framework import _np_mode, autograd, gluon, init, mnp, mx, nn, npx
from convlab.backends.mxnet.tracing import _CompiledGraph, _namespace, _Trace, _Traced

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
        elif mode == "max" and getattr(x, "is_reshaped_view", False):
            # MXNet 1.9.1's max-pooling backward misreads an input that is a reshape_view (it sends
            # every window's gradient to the window's first element): pool a copy. Only of a view: copying
            # every input, which oneDNN keeps in its blocked layout, took 1.4 ms a max pooling, 5 ms of the
            # mini VGG's 49 ms step at batch 128. (A slice along the first axis, a view too, is misread
            # likewise; the core never pools one.)
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
        view = x.reshape_view(shape)
        view.is_reshaped_view = True  # pool2d copies it before a max pooling
        return view

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
        are traced into one ``mx.sym`` graph (see
        :mod:`~convlab.backends.mxnet.tracing`), which becomes a ``CachedOp``
        with ``static_alloc`` and ``static_shape``, as
        ``hybridize(static_alloc=True, static_shape=True)`` makes one; each
        call runs it under ``autograd.record()``, ``backward()``, then
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
