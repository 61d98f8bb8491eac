"""The MXNet backend: MXNet's NumPy interface (``mxnet.np``, ``npx.set_np()``) and Gluon.

MXNet 1.9.1 is made importable on today's NumPy by
:mod:`convlab.backends.mxnet.numpy_compat`, which runs before ``import mxnet``.

Adapter choices
---------------
* Tensors are ``mxnet.numpy.ndarray`` (float32) in the context of the
  backend's device (``mx.cpu()``, ``mx.gpu(i)``). Legacy ``mx.nd.NDArray``
  input is accepted as any other array, through NumPy (a copy).
* ``conv2d`` is ``npx.convolution`` and ``pool2d`` is ``npx.pooling``, both
  NCHW, with their own padding where it is symmetric: MXNet's max pooling
  ignores its padding and its average pooling counts it
  (``count_include_pad=True``), as the protocol asks. Other paddings are
  concatenated first (``-inf`` for max pooling, zeros otherwise), since
  MXNet's padding is symmetric only and ``mxnet.np.pad`` does not work here:
  it reads ``numpy.compat``, gone in NumPy 2, and ignores ``constant_values``.
  MXNet's pooling refuses padding as wide as its window, so padding beyond
  half the window is concatenated too. MXNet's max starts from the dtype's
  lowest finite value, so a window wholly in the padding would give that
  instead of ``-inf``; where padding is as wide as the window, such results
  become ``-inf``. A ``bias`` is ``npx.convolution``'s own (``no_bias=False``),
  as ``nn.Conv2D`` passes it; ``linear`` is ``npx.fully_connected`` with
  ``flatten=False``, ``nn.Dense``'s operator, whose weight is ``(out, in)``
  already.
* ``sigmoid`` and ``relu`` are ``npx.activation``, the operator of Gluon's
  ``activation=`` and ``nn.Activation``, which oneDNN computes on the CPU.
  ``npx.sigmoid``'s generic elementwise kernel took ten times as long on
  LeNet's first activation (128 x 6 x 28 x 28: 8 to 11 ms against 1 ms),
  and an eager LeNet step 8 to 15% longer.
* ``log_softmax`` subtracts the maximum itself: ``npx.log_softmax`` is off by
  about ``1e-6`` where the answer is 0.
* ``reshape`` is ``reshape_view``, a view that autograd records:
  ``mxnet.np``'s ``reshape`` copies, and ``Y[0, 0]`` is several times slower
  still. ``method="native"`` adds and removes the batch and channel axes
  with it, as the built-in layer does.
* ``corr2d_loop`` is the book's MXNet tab, in-place item assignment into
  ``np.zeros`` (made in ``X``'s context, so that it also runs on a GPU).
  MXNet refuses in-place operations while ``autograd.record()`` records, so
  the loop layer cannot be differentiated: :func:`convlab.autograd_exercise`
  reports MXNet's error.
* ``corr2d_vectorized`` is the core's shift-and-add (no in-place operations,
  so it records). ``method="auto"`` always picks ``"native"``: each MXNet
  operator costs tens of microseconds of dispatch and the shift-and-add
  issues ``3 k_h k_w`` of them.
* Every layer (the hand-written one, each of ``cl.nn``) is a :class:`Module`,
  a Gluon ``Block`` holding one ``self.params.get`` parameter per initial
  value, as the book's layer does, and its children registered with
  ``register_child`` under ``"0"``, ``"1"``, ... as ``nn.Sequential`` does,
  so ``collect_params()`` holds every nested parameter and
  ``gluon.Trainer(net.collect_params(), "sgd", ...)`` trains it; its forward
  pass is the core's definition. Gluon names parameters by global prefixes
  (``module3_weight``); convlab's dotted names (``"0.weight"``, ``"2.1.bias"``)
  are Gluon's structural ones, those ``save_parameters`` writes. A module
  initialises only its own parameters (``self.params``, not
  ``collect_params()``): its children were initialised when they were made,
  and ``initialize()`` would warn for each of theirs. A ``Module`` is a
  ``Block``, not a ``HybridBlock`` (the core's forward passes call
  ``mxnet.np`` on arrays, not symbols), so ``hybridize()`` leaves it eager.
* ``framework_initial`` makes Gluon's own layer of that shape
  (``nn.Conv2D(out, kernel, in_channels=in)``, ``nn.Dense(out,
  in_units=in)``) and reads what its default ``initialize()`` drew:
  ``Uniform(0.07)`` weights and zero biases, OIHW and ``(out, in)`` already.
  The built-in layer is :class:`BuiltinConv2d`, ``nn.Conv2D(1, kernel_size,
  use_bias=False, in_channels=1)`` on 2-D inputs and outputs. Without an
  initial weight it keeps Gluon's default initialiser, as the book's
  ``initialize()`` does; ``framework_initial_weight`` draws from it too.
* ``labels`` are int64 ``mxnet.np`` arrays, the dtype of ``mxnet.np``'s
  ``argmax``: its ``==`` refuses int64 against the int32 that Gluon's
  datasets yield.
* Gradients come from ``backward()`` after ``autograd.record()``; a parameter
  whose gradient ``backward()`` did not write (MXNet's "fresh gradient" flag,
  which ``gluon.Trainer`` checks too) is reported as ``None``. The gradients
  returned are Gluon's own buffers, which the next ``backward()`` overwrites.
  ``sgd_update`` is the book's ``param.data()[:] -= lr * grad`` computed by
  ``multi_sgd_update``, the fused kernel that ``gluon.Trainer``'s SGD calls:
  one operator for up to 60 parameters (MXNet 1.9.1 crashes on more) where
  ``-=`` and ``*`` dispatch two per parameter.
* Both return once their results are computed (``wait_to_read`` on each
  gradient, each updated parameter): MXNet would otherwise return with the
  backward pass still running, and a timed step (``convlab bench``) would
  leave its work to whatever is timed after it. A training step waits for
  its loss anyway, so little overlap is lost.
* ``grad`` differentiates in the inputs' own float dtype (float64 from
  :func:`convlab.gradcheck`), which MXNet's operators support on the CPU.
* MXNet dispatches asynchronously: :meth:`MXNetBackend.synchronize` waits
  with ``wait_to_read()``, which copies nothing.
* MXNet's NumPy mode is per thread: ``npx.set_np()`` runs at import and again
  before a layer is built in a thread that has not turned it on.
* ``book_tab`` evaluates the book's MXNet calls of 7.3 and 7.5 as quoted
  (``nn.Conv2D(1, kernel_size=3, padding=1)`` then ``initialize()``;
  ``nn.MaxPool2D(3, padding=1, strides=2)``). Gluon's padding is symmetric
  and of any width, and its max pooling never picks its padding, so every
  tab gives convlab's shapes and values: no tab has a note.
* ``framework_conv2d_step`` is Gluon's ``nn.Conv2D`` hybridized with
  ``static_alloc`` and ``static_shape``, as Gluon's performance guide
  advises; ``idiomatic_lenet_step`` is d2l's MXNet LeNet (activations inside
  ``nn.Conv2D`` and ``nn.Dense``, which flattens its input) in a hybridized
  ``nn.HybridSequential``, trained by ``gluon.Trainer`` on
  ``SoftmaxCrossEntropyLoss``. Both wait for their results, as convlab's
  steps do. ``static_alloc`` is where the idiomatic LeNet step gains: its
  cached graph runs on memory planned once, where an eager step allocates
  every intermediate; hybridized without it, it ran as slowly as eager
  Gluon, and convlab's ``Module`` is eager (see above).
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, BookTab, LayerDef, Loss, Padding, Pair
from convlab.backends.mxnet.numpy_compat import add_numpy_names_for_mxnet

add_numpy_names_for_mxnet(np)
with warnings.catch_warnings():  # mxnet's own deprecated uses: distutils, and NEP 32 on NumPy 1.x
    warnings.filterwarnings("ignore", "distutils Version classes are deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "In accordance with NEP 32", DeprecationWarning)
    import mxnet as mx
    from mxnet import autograd, gluon, init, npx
    from mxnet import np as mnp
    from mxnet.gluon import nn
npx.set_np()


def _np_mode() -> None:
    # Gluon creates legacy NDArray parameters in a thread without NumPy mode.
    if not npx.is_np_array():
        npx.set_np()


class Module(nn.Block):
    """A convlab layer as a Gluon ``Block``: core parameters and forward pass, Gluon's registration.

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
        Submodules, registered with ``register_child`` as ``"0"``, ``"1"``,
        ... (as ``nn.Sequential`` names them), so that ``collect_params()``
        holds their parameters too.
    """

    def __init__(
        self,
        backend: MXNetBackend,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[nn.Block, ...] = (),
    ) -> None:
        super().__init__()
        self.backend = backend
        self.definition = definition
        for name, value in initial.items():
            setattr(self, name, self.params.get(name, shape=value.shape, init=init.Constant(value)))
        for index, child in enumerate(children):
            self.register_child(child, str(index))
        # Kept beside Gluon's registry so that a call does not rebuild it; Gluon sees these blocks as registered.
        self.layers = tuple(children)

    def forward(self, X: Any) -> Any:
        params = {name: p.data() for name, p in self._reg_params.items()}
        return self.definition.forward(self.backend, params, X, self.layers)

    def __repr__(self) -> str:
        shapes = "".join(f", {name}={p.shape}" for name, p in self._reg_params.items())
        nested = "".join("\n" + textwrap.indent(f"({i}): {child!r}", "  ") for i, child in enumerate(self.layers))
        end = "\n)" if nested else ")"
        return f"{type(self).__name__}({self.definition}{shapes}{nested}{end}"


class BuiltinConv2d(nn.Conv2D):
    """``nn.Conv2D(1, kernel_size, use_bias=False, in_channels=1)`` on 2-D inputs and outputs."""

    def __init__(self, backend: MXNetBackend, kernel_size: Pair) -> None:
        super().__init__(1, kernel_size, use_bias=False, in_channels=1)
        self.backend = backend

    def forward(self, X: Any) -> Any:
        X = self.backend.tensor(X)
        Y = super().forward(X.reshape_view((1, 1, *X.shape)))
        return Y.reshape_view(Y.shape[2:])


_FUSED_SGD_WEIGHTS = 60
"""The most weights one ``multi_sgd_update`` call takes: MXNet 1.9.1 crashes (segfault) on more."""


def _gluon_parameters(module: nn.Block) -> dict[str, gluon.Parameter]:
    """Every parameter of ``module``, named as ``save_parameters`` names them: ``"weight"``, ``"0.bias"``, ..."""
    return module._collect_params_with_prefix()


def _halves(padding: Padding) -> Pair | None:
    """``(rows, columns)`` on each side where ``padding`` is symmetric, else ``None``."""
    top, bottom, left, right = padding
    return (top, left) if top == bottom and left == right else None


def _pad(x: Any, padding: Padding, value: float = 0.0) -> Any:
    """``x`` with ``padding`` rows and columns of ``value`` around its last two axes."""
    top, bottom, left, right = padding
    for axis, sizes in ((2, (top, bottom)), (3, (left, right))):
        if any(sizes):
            before, after = (
                mnp.full((*x.shape[:axis], size, *x.shape[axis + 1 :]), value, dtype=x.dtype, ctx=x.ctx)
                for size in sizes
            )
            x = mnp.concatenate([before, x, after], axis=axis)
    return x


class MXNetBackend(Backend):
    """MXNet's NumPy interface and Gluon, in one context (see the module's notes)."""

    def __init__(self, spec: Any, device: str | None = None) -> None:
        super().__init__(spec, device)
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
        return (mnp.ndarray,)  # what Gluon's Parameter.data() and grad() return in NumPy mode

    def tensor(self, data: Any) -> Any:
        if isinstance(data, mnp.ndarray):  # the same array when nothing changes, so parameters keep their graph
            return data.astype(np.float32, copy=False).as_in_ctx(self.context)
        return mnp.array(data, dtype=np.float32, ctx=self.context)  # without dtype, float64 would stay float64

    def labels(self, data: np.ndarray) -> Any:
        # int64, what mxnet.np's argmax returns: its == refuses to compare int64 with int32.
        return mnp.array(np.asarray(data, dtype=np.int64), dtype=np.int64, ctx=self.context)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, gluon.Parameter):
            x = x.data()
        return x.asnumpy()

    def synchronize(self, y: Any) -> Any:
        y.wait_to_read()
        return y

    # -- nn ----------------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, stride: Pair, padding: Padding, groups: int, bias: Any = None) -> Any:
        halves = _halves(padding)
        if halves is None:
            x, halves = _pad(x, padding), (0, 0)
        out_channels, _, *kernel = w.shape  # one shape query: each costs a call into MXNet
        return npx.convolution(
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
        halves = _halves(padding)
        # npx.pooling rejects padding as wide as the window; past half of it, concatenate.
        if halves is None or halves[0] > window[0] // 2 or halves[1] > window[1] // 2:
            x, halves = _pad(x, padding, -np.inf if mode == "max" else 0.0), (0, 0)
        elif mode == "max":
            # MXNet 1.9.1's max-pooling backward misreads an input that is a reshape_view (it sends
            # every window's gradient to the window's first element): pool a copy.
            x = x.reshape(x.shape)
        y = npx.pooling(x, kernel=window, stride=stride, pad=halves, pool_type=mode, count_include_pad=True)
        top, bottom, left, right = padding
        if mode == "max" and (max(top, bottom) >= window[0] or max(left, right) >= window[1]):
            # Some window may lie wholly in the -inf padding; MXNet's max starts from the dtype's lowest
            # finite value, so such a window gives that instead of -inf. Both as arrays: a float64
            # scalar is compared in float32, and where()'s scalar form sends no gradient to y.
            lowest = mnp.array(np.finfo(y.dtype).min, dtype=y.dtype, ctx=y.ctx)
            y = mnp.where(y == lowest, mnp.full(y.shape, -np.inf, dtype=y.dtype, ctx=y.ctx), y)
        return y

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return x.reshape_view(shape)

    def linear(self, x: Any, w: Any, bias: Any = None) -> Any:
        return npx.fully_connected(x, w, bias, num_hidden=w.shape[0], no_bias=bias is None, flatten=False)

    def sigmoid(self, x: Any) -> Any:
        # Gluon's activation operator, which oneDNN computes (see the module's notes).
        return npx.activation(x, act_type="sigmoid")

    def relu(self, x: Any) -> Any:
        return npx.activation(x, act_type="relu")

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - mnp.log(mnp.exp(shifted).sum(axis=axis, keepdims=True))

    # -- chapter ---------------------------------------------------------------
    def corr2d_loop(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = mnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), ctx=X.ctx)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def auto_method(self, x_shape: Pair, k_shape: Pair) -> str:
        # One convolution call beats the shift-and-add's 3 k_h k_w dispatches at every size `convlab bench` tries.
        return "native"

    # -- modules and training ----------------------------------------------------
    def module(self, definition: LayerDef, initial: Mapping[str, np.ndarray], children: tuple[Any, ...] = ()) -> Module:
        _np_mode()
        layer = Module(self, definition, initial, children)
        # Its own parameters only: the children were initialised when they were made, and
        # layer.initialize() would warn once for each of their parameters.
        layer.params.initialize(ctx=self.context)
        return layer

    def submodules(self, module: nn.Block) -> tuple[Any, ...]:
        return tuple(module._children.values())

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        _np_mode()
        out_size, in_size, *kernel = shapes["weight"]
        use_bias = "bias" in shapes
        if kind == "conv2d":
            layer = nn.Conv2D(out_size, tuple(kernel), in_channels=in_size, use_bias=use_bias)
        else:
            layer = nn.Dense(out_size, use_bias=use_bias, in_units=in_size)
        layer.initialize(ctx=self.context)  # Gluon's default: Uniform(0.07) weights, the bias's own "zeros"
        return {name: p.data().asnumpy() for name, p in _gluon_parameters(layer).items()}

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> BuiltinConv2d:
        _np_mode()
        layer = BuiltinConv2d(self, kernel_size)
        layer.initialize(ctx=self.context)  # Gluon's default initialiser: Uniform(0.07)
        if weight is not None:
            layer.weight.set_data(self.tensor(weight).reshape(layer.weight.shape))
        return layer

    def framework_initial_weight(self, kernel_size: Pair) -> np.ndarray:
        _np_mode()
        weight = mnp.zeros(kernel_size, ctx=self.context)
        init.Uniform()(init.InitDesc("weight"), weight)  # what initialize() draws a weight from
        return weight.asnumpy()

    def parameters(self, module: nn.Block) -> dict[str, Any]:
        return {name: p.data() for name, p in _gluon_parameters(module).items()}

    def value_and_grad(self, module: nn.Block, X: Any, Y: Any, loss: Loss) -> tuple[float, dict[str, Any]]:
        params = _gluon_parameters(module)
        with autograd.record():
            value = loss(module(X), Y)
        value.backward()
        grads = {}
        for name, p in params.items():
            data = p.data()  # backward() flags the variable, not its gradient buffer
            grads[name] = p.grad() if data._fresh_grad else None
            data._fresh_grad = False
            if grads[name] is not None:
                grads[name].wait_to_read()  # returned computed, so that a timed step counts its backward
        return value.item(), grads

    def sgd_update(self, module: nn.Block, grads: Mapping[str, Any], lr: float) -> None:
        params = _gluon_parameters(module)
        # Gluon's fused SGD kernel, for _FUSED_SGD_WEIGHTS parameters at a time (see the module's notes).
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

    def grad(self, f: Callable[..., Any], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        """``f(*inputs)`` and its gradients; float inputs keep their dtype, others become float64."""
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

    def book_train_kernel(
        self, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
    ) -> list[float]:
        """The book's MXNet tab: Gluon ``nn.Conv2D``, ``autograd.record()``, ``l.backward()``, ``data()[:] -= ...``.

        The layer and data are placed in :attr:`context`, so that it is timed where ``train_kernel`` runs.
        """
        npx.set_np()
        conv2d = nn.Conv2D(1, kernel_size=kernel_size, use_bias=False)
        conv2d.initialize(init.Zero(), ctx=self.context)
        X = mnp.array(X, ctx=self.context).reshape(1, 1, *X.shape)
        Y = mnp.array(Y, ctx=self.context).reshape(1, 1, *Y.shape)
        losses = []
        for _ in range(num_epochs):
            with autograd.record():
                Y_hat = conv2d(X)
                l = (Y_hat - Y) ** 2  # noqa: E741 - the book's name
            l.backward()
            conv2d.weight.data()[:] -= lr * conv2d.weight.grad()
            losses.append(float(l.sum()))
        return losses

    def book_tab(self, example: str, X: np.ndarray) -> BookTab:
        """d2l's MXNet tabs of 7.3 (``nn.Conv2D``, one output channel, ``initialize()``) and 7.5 (``nn.MaxPool2D``)."""
        calls = {
            "conv 3, padding 1": "nn.Conv2D(1, kernel_size=3, padding=1)",
            "conv (5, 3), padding (2, 1)": "nn.Conv2D(1, kernel_size=(5, 3), padding=(2, 1))",
            "conv 3, padding 1, stride 2": "nn.Conv2D(1, kernel_size=3, padding=1, strides=2)",
            "conv (3, 5), padding (0, 1), stride (3, 4)":
                "nn.Conv2D(1, kernel_size=(3, 5), padding=(0, 1), strides=(3, 4))",
            "max-pool 3": "nn.MaxPool2D(3)",
            "max-pool 3, padding 1, stride 2": "nn.MaxPool2D(3, padding=1, strides=2)",
            "max-pool (2, 3), padding (0, 1), stride (2, 3)": "nn.MaxPool2D((2, 3), padding=(0, 1), strides=(2, 3))",
        }  # fmt: skip
        code = calls[example]
        _np_mode()
        layer = eval(code, {"nn": nn})  # the quoted text is what runs: the report cannot show other code than it ran
        # The tab's comp_conv2d: Gluon's default initialiser, input channels inferred on the first call.
        # A pooling layer has no parameters to initialise.
        layer.initialize(ctx=self.context)
        output = layer(mnp.array(X, dtype=np.float32, ctx=self.context))
        return BookTab(output.asnumpy(), code)

    def framework_conv2d_step(
        self, in_channels: int, out_channels: int, kernel_size: int, padding: int, x: np.ndarray
    ) -> Callable[[], list[Any]]:
        """Gluon's ``nn.Conv2D`` (bias, default initialiser), hybridized; a call returns its weight and bias grads."""
        _np_mode()
        layer = nn.Conv2D(out_channels, kernel_size, padding=padding, in_channels=in_channels)
        layer.initialize(ctx=self.context)
        layer.hybridize(static_alloc=True, static_shape=True)  # what Gluon's guides advise for speed
        X = mnp.array(x, dtype=np.float32, ctx=self.context)

        def step() -> list[Any]:
            with autograd.record():
                total = layer(X).sum()
            total.backward()
            return [self.synchronize(p.grad()) for p in (layer.weight, layer.bias)]

        return step

    def idiomatic_lenet_step(
        self, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
    ) -> Callable[[], float]:
        """d2l's MXNet LeNet: ``nn.HybridSequential`` hybridized, ``gluon.Trainer``, ``SoftmaxCrossEntropyLoss``."""
        _np_mode()
        net = nn.HybridSequential()
        net.add(
            nn.Conv2D(channels=6, kernel_size=5, padding=2, activation="sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Conv2D(channels=16, kernel_size=5, activation="sigmoid"),
            nn.AvgPool2D(pool_size=2, strides=2),
            nn.Dense(120, activation="sigmoid"),
            nn.Dense(84, activation="sigmoid"),
            nn.Dense(10),
        )
        net.initialize(ctx=self.context)
        X, y = mnp.array(X, dtype=np.float32, ctx=self.context), self.labels(y)
        net(X)  # Gluon infers the input sizes on the first call; only then can the weights be set
        # Gluon folds each activation into its layer and flattens inside Dense, so its layers 0, 2, 4, 5
        # and 6 are the core's 0, 3, 7, 9 and 11; the layouts (OIHW, (out, in)) are the same.
        core_index = {"0": "0", "2": "3", "4": "7", "5": "9", "6": "11"}
        for name, param in _gluon_parameters(net).items():
            index, _, kind = name.partition(".")
            param.set_data(mnp.array(weights[f"{core_index[index]}.{kind}"], dtype=np.float32, ctx=self.context))
        net.hybridize(static_alloc=True, static_shape=True)
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
        loss = gluon.loss.SoftmaxCrossEntropyLoss()
        batch_size = X.shape[0]

        def step() -> float:
            with autograd.record():
                l = loss(net(X), y)  # noqa: E741 - the book's name
            l.backward()
            trainer.step(batch_size)  # the gradient of the sum, over the batch size: that of the mean
            value = l.mean().item()
            npx.waitall()  # the update too, as convlab's step waits for its own: a timing counts the whole step
            return value

        return step
