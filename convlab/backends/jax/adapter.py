"""The JAX backend: ``jax.numpy`` tensors, ``jax.lax`` primitives under ``jax.jit``, Flax NNX layers.

Each choice is explained beside the code it concerns; the book's JAX tabs
(written for Flax linen) and Flax NNX's idiomatic code are in
:mod:`convlab.backends.jax.reference`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerCall, LayerDef, Loss, Padding, Pair, Step

# Selecting this backend should print nothing the user did not ask for; CONVLAB_VERBOSE=1 (any value but "" or
# "0") leaves the log level to the frameworks.
_VERBOSE = os.environ.get("CONVLAB_VERBOSE", "") not in ("", "0")
if not _VERBOSE:
    # jaxlib shares TensorFlow's C++ logging (XLA): once it has loaded without this variable, a TensorFlow imported
    # later in the process ignores it, and "failed call to cuInit" reaches stderr on a machine without a GPU. The
    # value is the TensorFlow adapter's, whichever comes first; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402 - after the log level, which jaxlib reads as it loads
import jax.experimental  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

SEED = 0
"""Seed of the ``nnx.Rngs`` behind ``init="framework"`` and behind unseeded ``cl.nn`` layers.

JAX's randomness is explicit: the layers use a fixed seed, as the book's
``d2l.get_key()`` does, so every such layer starts from the same values.
"""


_state_frozen: contextvars.ContextVar[bool] = contextvars.ContextVar("convlab_jax_state_frozen", default=False)
"""Whether modules keep their state as it is: while :meth:`JaxBackend.grad` differentiates a function over them."""


def _float64() -> contextlib.AbstractContextManager:
    """A context with float64 on; its name moved between JAX versions, and where neither exists, float32 stays."""
    enable_x64 = getattr(jax, "enable_x64", None)
    if enable_x64 is None:
        enable_x64 = getattr(jax.experimental, "enable_x64", None)
    return contextlib.nullcontext() if enable_x64 is None else enable_x64(True)


class Module(nnx.Module):
    """A layer on Flax NNX: ``nnx.Param`` parameters, ``nnx.BatchStat`` state, submodules, the core's forward pass.

    ``flax.nnx`` is Flax's current API: its modules hold their state and are
    called directly, unlike linen's ``apply(params, x)``. The submodules are
    held in an ``nnx.List`` named ``layers``, as ``nnx.Sequential`` holds its
    own, so ``nnx.state(module, nnx.Param)``, ``nnx.Optimizer`` and optax see
    every nested parameter; a block's submodule is also read by its name
    (``block.conv1``). The state (batch norm's running statistics, dropout's
    step counter) is ``nnx.BatchStat``, as ``nnx.BatchNorm`` keeps its own:
    an optimiser made ``wrt=nnx.Param`` never touches it.

    Parameters
    ----------
    definition : LayerDef
        What the layer computes.
    backend : JaxBackend
        The backend the layer computes with, whichever is active when it is called.
    initial : mapping of str to numpy.ndarray
        Each parameter's name and initial value.
    children : tuple of Module
        Submodules, held in order in the ``nnx.List`` ``layers`` (as ``nnx.Sequential`` holds its own).
    state : mapping of str to numpy.ndarray, optional
        Each non-trainable tensor's name and initial value.
    """

    layers: Sequence[nnx.Module] = ()
    """The submodules; a layer without any keeps this empty default, one graph node fewer for ``nnx.jit`` to walk."""

    def __init__(
        self,
        definition: LayerDef,
        backend: JaxBackend,
        initial: Mapping[str, np.ndarray],
        children: tuple[nnx.Module, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        # None of these holds arrays, so NNX keeps them as static structure: jit compiles once per definition,
        # and once more per mode (`training`, a bool) the module is called in.
        self.definition = definition
        self.backend = backend
        self.training = True
        self.parameter_names = tuple(initial)
        self.state_names = tuple(state or ())
        self.child_names = definition.child_names(len(children))
        for name, value in initial.items():
            setattr(self, name, nnx.Param(backend.tensor(value)))
        for name, value in (state or {}).items():
            setattr(self, name, nnx.BatchStat(backend.tensor(value)))
        if children:
            self.layers = nnx.List(children)

    def __getattr__(self, name: str) -> Any:
        # Reached only when no attribute has the name: a submodule's, which `layers` holds (one node per submodule
        # for NNX's graph, not two).
        names = self.__dict__.get("child_names", ())
        if name in names:
            return self.layers[names.index(name)]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __call__(self, X: Any) -> Any:
        params = {name: _value(getattr(self, name)) for name in self.parameter_names}
        call = LayerCall(self.training, {name: _value(getattr(self, name)) for name in self.state_names})
        Y = self.definition.forward(self.backend, params, X, self.layers, call)
        if _state_frozen.get():
            return Y
        for name, value in call.updates.items():
            variable = getattr(self, name)
            # Outside the gradient, as nnx.BatchNorm's running statistics move; in the variable's dtype, which a
            # float64 block's values would otherwise change. Under nnx.jit and nnx.value_and_grad NNX carries the
            # new value out of the trace, as it does every variable but the differentiated parameters.
            _assign(variable, jax.lax.stop_gradient(value).astype(_value(variable).dtype))
        return Y


def _value(param: nnx.Variable) -> Any:
    """The array a ``Module``'s variable holds (a tracer under ``nnx.jit``), as ``param[...]`` reads it, faster.

    ``param[...]`` copies the value's pytree and looks for read hooks on every read, tens of microseconds
    per parameter on an eager call; a ``Module``'s variables have no hooks, so their plain array is the
    value. Another value (an array reference, where NNX is set to hold them) is read the usual way.
    """
    raw = param.get_raw_value()
    return raw if isinstance(raw, jax.Array) else param[...]


def _assign(param: nnx.Variable, value: Any) -> None:
    """``param[...] = value`` for a new array of the parameter's shape and dtype, without its per-write checks.

    Setting ``param[...]`` copies the value's pytree and indexes the old array to compare shapes (one more
    dispatch per parameter); a ``Module``'s plain array is replaced as that assignment would replace it.
    """
    if isinstance(param.get_raw_value(), jax.Array):
        param.set_raw_value(value)
    else:
        param[...] = value


@jax.jit
def _sgd_step(params: tuple[Any, ...], grads: tuple[Any, ...], lr: Any) -> tuple[Any, ...]:
    # One compiled update of every parameter, what the book's param[...] -= lr * grad does: eagerly, each
    # costs two dispatches (lr * grad, then -=). sgd_update writes the new arrays back.
    return tuple(param - lr * grad for param, grad in zip(params, grads, strict=True))


class BuiltinConv2d(nnx.Conv):
    """Flax's ``nnx.Conv`` (NHWC, kernel ``(k_h, k_w, 1, 1)``) on NCHW images."""

    def __call__(self, X: Any) -> Any:
        return super().__call__(X.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _variables(module: Any, state: bool = False, prefix: str = "") -> Iterator[tuple[str, tuple[str | int, ...], Any]]:
    """Each parameter's (``state``: state tensor's) dotted name, its path in the module's ``nnx.State``, its variable.

    The module's own come first, then each submodule's, prefixed with the submodule's name, as PyTorch orders and
    names them: the ``i``-th submodule's ``weight`` is ``"i.weight"`` in a sequence, ``"conv1.weight"`` in a
    block whose attribute ``conv1`` holds it, at the path ``("layers", i, "weight")`` either way.
    """
    if isinstance(module, BuiltinConv2d):
        if not state:
            yield f"{prefix}weight", ("kernel",), module.kernel
        return
    for name in module.state_names if state else module.parameter_names:
        yield f"{prefix}{name}", (name,), getattr(module, name)
    for index, (child_name, child) in enumerate(zip(module.child_names, module.layers, strict=True)):
        for name, path, variable in _variables(child, state, f"{prefix}{child_name}."):
            yield name, ("layers", index, *path), variable


@nnx.jit(static_argnames="loss")
def _value_and_grad(module: Any, X: Any, Y: Any, loss: Loss) -> tuple[Any, dict[str, Any]]:
    # Compiled once per module structure, input shape and loss: the definitions of a module and its
    # submodules and its backend are static structure to NNX, and `loss` is static too (the core's
    # losses compare by value), so one compilation serves every call.
    value, grads = nnx.value_and_grad(lambda module: loss(module(X), Y))(module)
    by_path = dict(nnx.to_flat_state(grads))
    return value, {name: by_path[path][...] for name, path, _ in _variables(module)}


@nnx.jit(static_argnames=("loss", "lr"), donate_argnames="module")
def _whole_step(module: Any, X: Any, Y: Any, loss: Loss, lr: float) -> Any:
    # Forward, backward and update in one XLA program. The module's arrays are donated: XLA writes the new
    # parameters into the old ones' buffers, and NNX puts them back into the module after the call.
    value, grads = nnx.value_and_grad(lambda module: loss(module(X), Y))(module)
    by_path = dict(nnx.to_flat_state(grads))
    for _, path, variable in _variables(module):
        _assign(variable, _value(variable) - lr * by_path[path][...])
    return value


@functools.partial(jax.jit, static_argnames=("stride", "padding", "groups"))
def _conv2d(x: Any, w: Any, bias: Any, stride: Pair, padding: Padding, groups: int) -> Any:
    # The padding is explicit (top, bottom) and (left, right) pairs, so an asymmetric one needs no separate
    # pad. precision="highest" keeps float32 accuracy where XLA would otherwise use TF32 or bfloat16 (GPU,
    # TPU). The bias is added inside this one dispatch, where XLA compiles the addition into the elementwise
    # pass over the product (on the CPU, the pass that transposes XLA's NHWC result back to NCHW, so the
    # bias costs no pass of its own).
    top, bottom, left, right = padding
    # The default dimension numbers are NCHW input, OIHW kernel, NCHW output: the protocol's layouts.
    y = jax.lax.conv_general_dilated(
        x, w, stride, ((top, bottom), (left, right)), feature_group_count=groups, precision="highest"
    )
    return y if bias is None else y + bias[:, None, None]


@jax.jit
def _linear(x: Any, w: Any, bias: Any) -> Any:
    # x @ w.T + bias in one dispatch; XLA fuses the addition into one elementwise pass over the product.
    y = jnp.matmul(x, w.T, precision="highest")
    return y if bias is None else y + bias


@functools.partial(jax.jit, static_argnames=("window", "stride", "padding", "mode", "channels_last"))
def _pool2d(x: Any, window: Pair, stride: Pair, padding: Padding, mode: str, channels_last: bool) -> Any:
    # reduce_window takes explicit padding, asymmetric included, and pads with its initial value: -inf for
    # max, 0 for average.
    top, bottom, left, right = padding
    if channels_last:  # the same windows on x viewed as NHWC; the result is transposed back to NCHW
        x = x.transpose(0, 2, 3, 1)
        dims, strides, pads = (1, *window, 1), (1, *stride, 1), ((0, 0), (top, bottom), (left, right), (0, 0))
    else:
        dims, strides, pads = (1, 1, *window), (1, 1, *stride), ((0, 0), (0, 0), (top, bottom), (left, right))
    # NumPy scalars of x's dtype: concrete identities, so JAX uses its max / sum windows and their gradients.
    if mode == "max":
        y = jax.lax.reduce_window(x, np.array(-np.inf, x.dtype), jax.lax.max, dims, strides, pads)
    else:
        y = jax.lax.reduce_window(x, np.array(0, x.dtype), jax.lax.add, dims, strides, pads) / (window[0] * window[1])
    return y.transpose(0, 3, 1, 2) if channels_last else y


class JaxBackend(Backend):
    """JAX on one device (``"cpu"``, ``"gpu:1"``), with Flax NNX modules; float64 in x64 mode, scoped."""

    dtypes = ("float32", "float64")

    def __init__(self, spec: Any, device: str | None = None, dtype: str = "float32") -> None:
        super().__init__(spec, device, dtype)
        # JAX keeps float64 only in x64 mode, a switch of the whole framework: the float64 instance turns it on
        # for its use_backend blocks alone (scope), so JAX code elsewhere in the process keeps float32.
        self.scoped_only = self.dtype == np.float64
        kind, _, index = self.device.partition(":")
        self._place = jax.devices(kind)[int(index or 0)]
        self._channels_last_pooling = self._place.platform == "cpu"  # measured there only (see pool2d)
        # The core's shift-and-add, jitted: XLA fuses it into one pass over the output, still differentiable.
        self._vectorized = jax.jit(super().corr2d_vectorized)
        # One stream for every unseeded cl.nn layer, as an NNX model threads one Rngs through its layers.
        self._rngs = nnx.Rngs(SEED)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        return _float64() if self.scoped_only else contextlib.nullcontext()

    # -- core --------------------------------------------------------------
    def version(self) -> str:
        return jax.__version__

    def resolve_device(self, device: str | None) -> str:
        kind, _, index = (device or jax.default_backend()).partition(":")
        try:
            count = len(jax.devices(kind))
        except RuntimeError:
            raise ValueError(f"device: JAX has no {kind!r} devices here; it has {jax.default_backend()!r}") from None
        if index and not (index.isdigit() and int(index) < count):
            raise ValueError(f"device: expected {kind}:0 to {kind}:{count - 1}, got {device!r}")
        return f"{kind}:{index}" if index else kind

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (jax.Array,)  # also matches tracers, so the core's checks work under jit and grad

    def tensor(self, data: Any) -> Any:
        # NumPy data goes straight to the device; jnp.asarray would stage it on the default device first.
        array = data.astype(self.dtype) if isinstance(data, jax.Array) else np.asarray(data, dtype=self.dtype)
        return jax.device_put(array, self._place)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def labels(self, data: np.ndarray) -> Any:
        # int32, JAX's default integer: without jax_enable_x64 an int64 array would be narrowed, with a warning.
        return jax.device_put(np.asarray(data, dtype=np.int32), self._place)

    def one_hot(self, labels: Any, classes: int) -> Any:
        return jax.nn.one_hot(labels, classes, dtype=self.dtype)

    def is_real(self, x: Any) -> bool:
        # jnp.issubdtype knows bfloat16 is a float; NumPy sees it as an opaque ("V") dtype.
        return bool(jnp.issubdtype(x.dtype, jnp.integer) or jnp.issubdtype(x.dtype, jnp.floating))

    def synchronize(self, y: Any) -> Any:
        return y.block_until_ready()  # JAX dispatches asynchronously; this copies nothing

    # -- nn ----------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, stride: Pair, padding: Padding, groups: int, bias: Any = None) -> Any:
        return _conv2d(x, w, bias, tuple(stride), tuple(padding), groups)

    def linear(self, x: Any, w: Any, bias: Any = None) -> Any:
        return _linear(x, w, bias)

    def pool2d(self, x: Any, window: Pair, stride: Pair, padding: Padding, mode: str) -> Any:
        # Inside a compiled network (x a tracer) XLA on the CPU keeps a convolution's output channels-last;
        # pooling that layout skips a round trip of transposes and runs faster windows (LeNet's training step
        # by 15%, `convlab bench`). Called eagerly on an NCHW array, the transposes would be two real copies.
        channels_last = self._channels_last_pooling and isinstance(x, jax.core.Tracer)
        return _pool2d(x, tuple(window), tuple(stride), tuple(padding), mode, channels_last)

    def sigmoid(self, x: Any) -> Any:
        return jax.nn.sigmoid(x)

    def relu(self, x: Any) -> Any:
        return jax.nn.relu(x)

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        return jax.nn.log_softmax(x, axis=axis)

    def concat(self, tensors: Sequence[Any], axis: int) -> Any:
        return jnp.concatenate(tuple(tensors), axis=axis)

    def sqrt(self, x: Any) -> Any:
        return jnp.sqrt(x)

    def from_host(self, function: Callable[..., np.ndarray], shape: tuple[int, ...], *args: Any) -> Any:
        # A host callback: under nnx.jit the function runs at every call of the compiled step, on that call's
        # args (dropout's step counter), where a plain NumPy call would run once, while tracing, and its mask
        # would be baked into the compiled step as a constant.
        # The result travels as float32, cast after: the callback runs on a thread that does not see a float64
        # block's x64 mode, where JAX would turn a float64 result into float32 and refuse it. The core's values
        # (dropout's keep masks, ones and zeros) are exact in float32.
        def on_host(*arrays: np.ndarray) -> np.ndarray:
            return np.asarray(function(*arrays), dtype=np.float32)

        return jax.pure_callback(on_host, jax.ShapeDtypeStruct(shape, jnp.float32), *args).astype(self.dtype)

    def dropout_mask(self, shape: tuple[int, ...], p: float, counter: Any) -> Any:
        # JAX's randomness is explicit: the key is SEED's with the layer's call count folded in, as an NNX model
        # derives a fresh dropout key per step, so every step draws another mask, traced or not.
        key = jax.random.fold_in(jax.random.key(SEED), counter.astype(jnp.uint32))
        return jax.random.bernoulli(key, 1.0 - p, shape).astype(self.dtype) / (1.0 - p)

    # -- chapter -----------------------------------------------------------
    def corr2d_loop(self, X: Any, K: Any) -> Any:
        """The book's loop: JAX arrays are immutable, so ``Y = Y.at[i, j].set(...)`` makes a new array each time.

        It runs eagerly, one dispatch per pixel, as in the book: slow, but differentiable.
        """
        h, w = K.shape
        Y = jnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y = Y.at[i, j].set((X[i : i + h, j : j + w] * K).sum())
        return Y

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        return self._vectorized(X, K)

    def auto_method(self, x_shape: Pair, k_shape: Pair) -> str:
        # Measured on CPU: XLA's one-channel convolution is up to 100x slower than the fused shift-and-add.
        return "vectorized"

    # -- modules and training ----------------------------------------------
    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Module:
        return Module(definition, self, initial, children, state)

    def submodules(self, module: Any) -> tuple[Any, ...]:
        return tuple(module.layers) if isinstance(module, Module) else ()

    def state(self, module: Any) -> dict[str, Any]:
        return {name: variable[...] for name, _, variable in _variables(module, state=True)}

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        """A new ``nnx.Conv`` or ``nnx.Linear``'s values (``lecun_normal`` kernel, zero bias), in the core's layout.

        Every layer draws from the backend's one ``nnx.Rngs(SEED)``, as an NNX
        model passes one ``rngs`` to all its layers: a process's first
        unseeded layer always starts from the same values, and each further
        layer draws the stream's next key, so two layers of a network differ.
        """
        out_size, in_size, *kernel_size = shapes["weight"]
        use_bias = "bias" in shapes
        with jax.default_device(self._place):
            if kind == "conv2d":
                layer = nnx.Conv(in_size, out_size, tuple(kernel_size), use_bias=use_bias, rngs=self._rngs)
                initial = {"weight": np.asarray(layer.kernel[...]).transpose(3, 2, 0, 1)}  # HWIO -> OIHW
            else:
                layer = nnx.Linear(in_size, out_size, use_bias=use_bias, rngs=self._rngs)
                initial = {"weight": np.asarray(layer.kernel[...]).T}  # (in, out) -> (out, in)
        if use_bias:
            initial["bias"] = np.asarray(layer.bias[...])
        return initial

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> BuiltinConv2d:
        # Without a weight, nnx.Conv's default lecun_normal draws it from nnx.Rngs(SEED), as the book's NNX tab.
        with jax.default_device(self._place):  # the kernel is made, and stays, on this backend's device
            layer = BuiltinConv2d(
                1, 1, kernel_size, use_bias=False, padding="VALID", precision="highest", param_dtype=self.dtype,
                rngs=nnx.Rngs(SEED),
            )  # fmt: skip
        if weight is not None:
            layer.kernel[...] = self.tensor(weight).reshape(layer.kernel.shape)
        return layer

    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        # The book's NNX tab: nnx.initializers.uniform(), on [0, 0.01).
        return np.asarray(nnx.initializers.uniform()(nnx.Rngs(SEED).params(), kernel_size))

    def parameters(self, module: Any) -> dict[str, Any]:
        return {name: variable[...] for name, _, variable in _variables(module)}

    def value_and_grad(self, module: Any, X: Any, Y: Any, loss: Loss) -> tuple[float, dict[str, Any]]:
        value, grads = _value_and_grad(module, X, Y, loss)
        return float(value), grads

    def sgd_update(self, module: Any, grads: Mapping[str, Any], lr: float) -> None:
        variables = [(name, variable) for name, _, variable in _variables(module)]
        updated = _sgd_step(tuple(_value(v) for _, v in variables), tuple(grads[name] for name, _ in variables), lr)
        for (_, variable), value in zip(variables, updated, strict=True):
            _assign(variable, value)

    # compile="auto" leaves JAX eager: its eager step is already two jitted calls. On LeNet at batch 128 (2 loaded
    # cores) the whole step saved 5 ms of 63 after 2.5 s of compiling, and a whole 10-epoch run took 151 s
    # compiled against 129 s eager, one after the other.
    compile_break_even_steps = None

    def compiled_train_step(self, module: Any, loss: Loss, lr: float) -> Step:
        """One ``nnx.jit`` of the whole step, the module's arrays donated; the loss stays on the device."""
        lr = float(lr)

        def step(X: Any, Y: Any) -> Any:
            with self.tracing():
                return _whole_step(module, X, Y, loss, lr)

        return step

    def grad(self, f: Callable[..., Any], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        # jax.value_and_grad traces f with the modules it closes over, which NNX sees only through nnx transforms:
        # a new state would be a tracer of that trace, which NNX refuses to store (TraceContextError), so the
        # modules keep their state; gradcheck, which calls this, needs none.
        token = _state_frozen.set(True)
        try:
            with _float64():
                arrays = [jax.device_put(np.asarray(x), self._place) for x in inputs]
                value, grads = jax.value_and_grad(f, argnums=tuple(range(len(arrays))))(*arrays)
                return float(value), [np.asarray(g) for g in grads]
        finally:
            _state_frozen.reset(token)
