"""The PaddlePaddle backend (Paddle 3, dynamic graph): ``paddle.nn.functional`` primitives, ``nn.Layer`` layers.

Each choice is explained beside the code it concerns; the d2l-zh Paddle tabs
and Paddle's idiomatic code are in :mod:`convlab.backends.paddle.reference`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerCall, LayerDef, Loss, Padding, Pair, Step

# Selecting this backend should print nothing the user did not ask for; CONVLAB_VERBOSE=1 (any value but "" or
# "0") shows what is hidden here.
_VERBOSE = os.environ.get("CONVLAB_VERBOSE", "") not in ("", "0")
if not _VERBOSE:
    # Paddle's C++ runtime logs through glog, read as it loads: 2 keeps its ERROR lines and hides INFO and WARNING
    # ones, such as the GPU build's note of the device's compute capability and driver versions. A user's own
    # setting wins.
    os.environ.setdefault("GLOG_minloglevel", "2")

# Paddle warns at import that ccache, which only compiling C++ extensions uses, is missing: that one message is
# silenced, so convlab's output stays clean. Imported after TensorFlow, Paddle crashes the process: the spec's
# import_before makes the registry import Paddle first, or refuse Paddle once TensorFlow is loaded.
_root_logger = logging.getLogger()
_root_before = (_root_logger.level, list(_root_logger.handlers))
with warnings.catch_warnings():
    if not _VERBOSE:
        warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    import paddle
    import paddle.nn.functional as F  # noqa: N812 - Paddle's own spelling
    from paddle import nn
if not _VERBOSE:
    # Paddle's import configures the process's root logger (level INFO, a handler on stderr), after which every
    # library's INFO lines reach stderr: JAX's TPU probe, MXNet's notes on NumPy semantics. The root logger is the
    # user's, so it is put back as it was.
    _root_logger.setLevel(_root_before[0])
    for _handler in [h for h in _root_logger.handlers if h not in _root_before[1]]:
        _root_logger.removeHandler(_handler)


_LOWEST = float(np.finfo(np.float32).min)


_SERIAL_RUN = "FLAGS_new_executor_serial_run"


@contextlib.contextmanager
def _serial_run() -> Any:
    """Paddle's executor runs a program's ops one after the other on this thread, for the block.

    Its default hands the ops to a pool of worker threads: the compiled
    LeNet step at batch 128 took 1.12x as long that way (medians 43.4 and
    39.2 ms, 80 interleaved steps, 2 loaded cores). Paddle reads the flag
    at each run.
    """
    before = paddle.get_flags([_SERIAL_RUN])[_SERIAL_RUN]
    paddle.set_flags({_SERIAL_RUN: True})
    try:
        yield
    finally:
        paddle.set_flags({_SERIAL_RUN: before})


class Module(nn.Layer):
    """A convlab layer as a ``paddle.nn.Layer``: core parameters and forward pass, Paddle's registration.

    One ``create_parameter`` per initial value, so
    ``paddle.optimizer.SGD(parameters=layer.parameters())`` trains it.

    Parameters
    ----------
    backend : PaddleBackend
        The backend the layer computes with, whatever backend is active later.
    definition : LayerDef
        The layer's forward pass.
    initial : mapping of str to numpy.ndarray
        One parameter per entry, made by ``create_parameter`` and registered under its name.
    children : tuple of Module
        Sublayers, registered under ``definition.child_names`` (``"0"``, ``"1"``, ... as ``nn.Sequential`` names
        them).
    state : mapping of str to numpy.ndarray, optional
        One buffer per entry (``register_buffer``), which ``parameters()`` does not list.
    """

    def __init__(
        self,
        backend: PaddleBackend,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[nn.Layer, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.definition = definition
        for name, value in initial.items():
            value = np.asarray(value, dtype=backend.dtype)
            parameter = self.create_parameter(
                list(value.shape),
                dtype=backend.dtype.name,
                default_initializer=nn.initializer.Assign(value),
                device=backend.device_place,
            )
            self.add_parameter(name, parameter)
        for name, value in (state or {}).items():
            # A buffer rather than nn.BatchNorm2D's trainable=False parameter, which parameters() lists, so an
            # optimiser made from it would be handed the running statistics. state_dict() saves a buffer too.
            self.register_buffer(name, backend.tensor(value))
        for name, child in zip(definition.child_names(len(children)), children, strict=True):
            self.add_sublayer(name, child)

    def forward(self, X: Any) -> Any:
        # _parameters, _buffers and _sub_layers are nn.Layer's own registries: reading them costs less than
        # named_parameters().
        params, buffers = self._parameters, self._buffers
        if not paddle.in_dynamic_mode():
            # Tracing a compiled step: nn.Layer's attribute lookup hands the program's values of the parameters
            # and buffers, which the program reads and writes, in place of the eager tensors.
            params = {name: getattr(self, name) for name in params}
            buffers = {name: getattr(self, name) for name in buffers}
        call = LayerCall(self.training, buffers)
        Y = self.definition.forward(self.backend, params, X, tuple(self._sub_layers.values()), call)
        if call.updates:
            with paddle.no_grad():  # state moves outside the graph, as nn.BatchNorm2D's running statistics do
                for name, value in call.updates.items():
                    buffer = buffers[name]
                    # assign gives its output the value's dtype: a float64 block's statistics are cast back first.
                    paddle.assign(value.astype(buffer.dtype), output=buffer)
        return Y

    def extra_repr(self) -> str:
        shapes = ", ".join(f"{name}={tuple(p.shape)}" for name, p in self._parameters.items())
        return f"{self.definition}, {shapes}"


class BuiltinConv2d(nn.Conv2D):
    """``paddle.nn.Conv2D(1, 1, kernel_size, bias_attr=False)``, NCHW as Paddle's own."""

    def __init__(self, kernel_size: Pair) -> None:
        super().__init__(1, 1, kernel_size, bias_attr=False)

    def forward(self, X: Any) -> Any:
        if not isinstance(X, paddle.Tensor):
            dtype = np.float64 if self.weight.dtype == paddle.float64 else np.float32
            X = paddle.to_tensor(np.asarray(X, dtype=dtype), place=self.weight.place)
        return super().forward(X)


class PaddleBackend(Backend):
    dtypes = ("float32", "float64")

    def __init__(self, spec: Any, device: str | None = None, dtype: str = "float32") -> None:
        super().__init__(spec, device, dtype)
        self._dtype = getattr(paddle, self.dtype.name)  # paddle.float32 or paddle.float64

    # -- core ------------------------------------------------------------------
    def resolve_device(self, device: str | None) -> str:
        if device is None:
            device = paddle.device.get_device()  # "gpu:0" on a CUDA build with a GPU, else "cpu"
        if not isinstance(device, str):
            raise ValueError(f"device: expected a Paddle device name such as 'cpu' or 'gpu:0', got {device!r}")
        kind, colon, index = device.strip().lower().partition(":")
        if kind == "cpu" and not colon:
            return "cpu"
        if kind != "gpu" or (colon and not index.isdigit()):
            raise ValueError(f"device: expected a Paddle device name such as 'cpu', 'gpu' or 'gpu:0', got {device!r}")
        if not paddle.is_compiled_with_cuda():
            raise ValueError(
                f"device: {device!r} was asked for, but this Paddle build has no CUDA (paddlepaddle is the CPU "
                "wheel, paddlepaddle-gpu the CUDA one); use 'cpu'"
            )
        count = paddle.device.cuda.device_count()
        if int(index or 0) >= count:
            raise ValueError(f"device: {device!r} was asked for, but Paddle sees {count} GPU(s) here")
        return f"gpu:{int(index or 0)}"

    @functools.cached_property
    def device_place(self) -> Any:
        """:attr:`device` as a Paddle ``Place``, where tensors and parameters are made."""
        kind, _, index = self.device.partition(":")
        return paddle.CPUPlace() if kind == "cpu" else paddle.CUDAPlace(int(index))

    def version(self) -> str:
        return str(paddle.__version__)

    @property
    def tensor_types(self) -> tuple[type, ...]:
        # Parameters (EagerParamBase) included; a Value is a tensor of a program a compiled step is tracing.
        return (paddle.Tensor, paddle.pir.Value)

    def labels(self, data: np.ndarray) -> Any:
        return paddle.to_tensor(np.asarray(data, dtype=np.int64), place=self.device_place)

    def one_hot(self, labels: Any, classes: int) -> Any:
        return F.one_hot(labels, classes).astype(self.dtype.name)

    def tensor(self, data: Any) -> Any:
        # A Paddle tensor of this dtype on this device is returned as it is, so parameters keep their graph.
        if isinstance(data, paddle.Tensor):
            if data.dtype != self._dtype:
                data = data.astype(self._dtype)
            return data if data.place == self.device_place else data.to(self.device)
        return paddle.to_tensor(np.asarray(data, dtype=self.dtype), place=self.device_place)  # one fresh copy

    def is_real(self, x: Any) -> bool:
        return bool(paddle.is_floating_point(x) or paddle.is_integer(x))  # neither holds for bool and complex

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.numpy()  # a host copy, also of a tensor that requires a gradient

    # -- nn ----------------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, stride: Pair, padding: Padding, groups: int, bias: Any = None) -> Any:
        # Paddle takes the core's (top, bottom, left, right) padding as it is, asymmetric included.
        y = F.conv2d(x, w, stride=list(stride), padding=list(padding), groups=groups)
        if bias is None:
            return y
        # The bias added over (N, C, H W) rather than F.conv2d's (N, C, H, W): the same sums, but Paddle's CPU
        # broadcast over four axes, and its gradient's reduction, took 4.3 + 12.5 ms on LeNet's first layer at
        # batch 128, over 1.7 + 2.0 ms (medians of 25).
        batch, channels, height, width = y.shape
        flat = y.reshape([batch, channels, height * width]) + bias.reshape([channels, 1])
        return flat.reshape([batch, channels, height, width])

    def pool2d(self, x: Any, window: Pair, stride: Pair, padding: Padding, mode: str) -> Any:
        top, bottom, left, right = padding
        if mode == "max":
            y = F.max_pool2d(x, list(window), list(stride), list(padding))
            if max(top, bottom) < window[0] and max(left, right) < window[1]:
                return y
            # Paddle's max starts from the lowest float32 (in float64 too), which a window wholly in the padding keeps.
            return y.masked_fill(y == _LOWEST, -math.inf)
        # Average pooling counts the padding (exclusive=False), but uneven padding only on the top and left,
        # leaving the rest out of the divisor: uneven padding is padded with zeros first.
        if top != bottom or left != right:
            x, padding = F.pad(x, [left, right, top, bottom]), (0, 0, 0, 0)
        return F.avg_pool2d(x, list(window), list(stride), list(padding), exclusive=False)

    def flip(self, x: Any, axes: tuple[int, ...]) -> Any:
        return paddle.flip(x, list(axes))

    def linear(self, x: Any, w: Any, bias: Any = None) -> Any:
        # The core's weight is (out, in), Paddle's linear one (in, out): the matmul reads it transposed.
        y = paddle.matmul(x, w, transpose_y=True)
        return y if bias is None else y + bias

    def sigmoid(self, x: Any) -> Any:
        return F.sigmoid(x)

    def relu(self, x: Any) -> Any:
        return F.relu(x)

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        # F.log_softmax on the CPU clips each term at -64 (log_softmax([1000, 0]) gives [0, -64]).
        return x - paddle.logsumexp(x, axis=axis, keepdim=True)

    def concat(self, tensors: Any, axis: int) -> Any:
        return paddle.concat(list(tensors), axis=axis)

    def sqrt(self, x: Any) -> Any:
        return paddle.sqrt(x)

    def batch_norm(self, X: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any]:
        # nn.BatchNorm2D's fused kernel. It reports the batch's statistics only by averaging them into running
        # buffers: fresh ones with momentum 0 (Paddle weighs the old value by it) receive them whole, the variance
        # biased, as Paddle keeps it.
        mean = paddle.zeros([X.shape[1]], dtype=X.dtype)
        variance = paddle.ones([X.shape[1]], dtype=X.dtype)
        Y = F.batch_norm(
            X, mean, variance, weight, bias, training=True, momentum=0.0, epsilon=eps,
            data_format="NCHW" if X.ndim == 4 else "NC",
        )  # fmt: skip
        return Y, mean, variance

    # -- chapter ---------------------------------------------------------------
    def corr2d_loop(self, X: Any, K: Any) -> Any:
        """The d2l-zh Paddle tab: item assignment ``Y[i, j] = ...`` into ``paddle.zeros``.

        Paddle records the assignment (``set_value``) in its graph, so the
        loop layer is differentiable, only slow: :func:`convlab.autograd_exercise`
        reports the gradients.
        """
        h, w = K.shape
        Y = paddle.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), device=X.place)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        height, width = X.shape
        out_h, out_w = height - h + 1, width - w + 1
        # Shifts of the flattened image: offset (a, b) is a * width + b, so each shifted view is one contiguous run
        # of out_h rows of `width` columns (the last w - 1 of each row wrap around and are cropped at the end).
        # Paddle's elementwise kernels are several times slower on a 2-D strided view than on a contiguous run.
        run = (out_h - 1) * width + out_w
        flat = X.reshape([height * width])
        # Scaling by a Python number is several times faster than broadcasting a 0-d tensor, so a kernel that
        # needs no gradient is read once; one that does keeps its elements in the graph.
        weights = K.numpy().ravel().tolist() if K.stop_gradient else paddle.unbind(K.reshape([h * w]))
        Y = flat[:run] * weights[0]
        for a in range(h):
            for b in range(w):
                if a or b:
                    start = a * width + b
                    Y.add_(flat[start : start + run] * weights[a * w + b])
        if w == 1:
            return Y.reshape([out_h, width])
        Y = paddle.concat([Y, paddle.zeros([w - 1], Y.dtype, device=Y.place)]).reshape([out_h, width])
        return paddle.crop(Y, shape=[out_h, out_w])  # a copy, which Paddle makes faster than of a view

    def auto_method(self, x_shape: Pair, k_shape: Pair) -> str:
        # Each shift of the shift-and-add costs tens of microseconds of dispatch and a pass over memory; the
        # convolution, banded where large (corr2d_bands), was faster at most sizes `convlab bench` tries. Not past
        # 1024x1024 with 2x2, whose four shifts cost least: in 5 of 7 measurements at 2048x2048 the banded
        # convolution took 15-17 ms, the shift-and-add 10-13 (the other 2: 6 ms against 12-13).
        if x_shape[0] * x_shape[1] > 1024 * 1024 and k_shape[0] * k_shape[1] <= 4:
            return "vectorized"
        return "native"

    def corr2d_bands(self, x_shape: Pair, k_shape: Pair) -> int:
        # Paddle's CPU conv unfolds a one-channel input (one column per kernel tap): past about 1 MB of unfolded
        # float32 it slows several-fold. Bands of about 32 output rows as the channels of a depthwise conv took
        # its own kernel instead, 5x to 13x faster from 256x256 to 2048x2048.
        unfolded = x_shape[0] * x_shape[1] * k_shape[0] * k_shape[1]
        return max(8, (x_shape[0] - k_shape[0] + 1) // 32) if unfolded > 256 * 1024 else 1

    # -- modules and training ----------------------------------------------------
    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Module:
        return Module(self, definition, initial, children, state)

    def submodules(self, module: nn.Layer) -> tuple[Any, ...]:
        return tuple(module.children())

    def state(self, module: nn.Layer) -> dict[str, Any]:
        return dict(module.named_buffers())

    def set_training(self, module: nn.Layer, training: bool) -> None:
        module.train(training)  # Paddle's own switch: layer.eval() and cl.nn.set_training agree

    def dropout_mask(self, shape: tuple[int, ...], p: float, counter: Any) -> Any:
        # Paddle's generator (paddle.seed governs it), as nn.Dropout draws: keep where the uniform draw is >= p.
        keep = paddle.rand(list(shape), dtype=self._dtype, device=self.device_place) >= p
        return keep.astype(self._dtype) / (1.0 - p)

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        out_size, in_size, *kernel = shapes["weight"]
        bias = None if "bias" in shapes else False  # None: Paddle's default bias, zeros
        if kind == "conv2d":
            layer = nn.Conv2D(in_size, out_size, kernel, bias_attr=bias)
            return {name: p.numpy() for name, p in layer.named_parameters()}
        layer = nn.Linear(in_size, out_size, bias_attr=bias)
        values = {name: p.numpy() for name, p in layer.named_parameters()}
        values["weight"] = np.ascontiguousarray(values["weight"].T)  # Paddle's (in, out) as the core's (out, in)
        return values

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> BuiltinConv2d:
        layer = BuiltinConv2d(kernel_size)
        layer.to(device=self.device_place)
        if self.dtype != np.float32:
            layer.to(dtype=self.dtype.name)
        if weight is not None:
            layer.weight.set_value(np.asarray(weight, dtype=self.dtype).reshape(layer.weight.shape))
        return layer

    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        return paddle.rand(kernel_size).numpy()  # the d2l-zh Paddle tab: uniform on [0, 1)

    def parameters(self, module: nn.Layer) -> dict[str, Any]:
        return dict(module.named_parameters())

    def value_and_grad(self, module: nn.Layer, X: Any, Y: Any, loss: Loss) -> tuple[float, dict[str, Any]]:
        params = self.parameters(module)
        for p in params.values():
            p.clear_gradient(False)  # release rather than zero: an unreached parameter keeps no gradient
        value = loss(module(X), Y)
        value.backward()
        # Copies: releasing a gradient (the next call's clear_gradient) empties every tensor that shares it.
        return value.item(), {name: None if p.grad is None else p.grad.clone() for name, p in params.items()}

    def sgd_update(self, module: nn.Layer, grads: Mapping[str, Any], lr: float) -> None:
        params = self.parameters(module)
        with paddle.no_grad():
            for name, grad in grads.items():
                params[name].subtract_(grad * lr)

    # compile="auto" leaves Paddle eager: the program runs the eager step's CPU kernels, and no faster. On LeNet at
    # batch 128 (2 loaded cores) the first compiled call took 134 ms, the next ones a median 39.2 ms against the
    # eager step's 38.5 (paired ratio 0.995, 80 interleaved steps); this Paddle wheel has no CINN to fuse kernels.
    compile_break_even_steps = None

    def compiled_train_step(self, module: nn.Layer, loss: Loss, lr: float) -> Step:
        """Forward, loss, gradients and update as one static program of ``paddle.jit.to_static``.

        The step's Python runs once per batch shape and training mode, as a
        trace that records a PIR program; later calls run the program.
        ``paddle.jit.not_to_static`` keeps Paddle from rewriting the core's
        code into static control flow: it branches on shapes and settings,
        never on tensor values, so the trace is the program. (SOT, Paddle's
        default bytecode translator, gives up on the layer definitions,
        frozen dataclasses it can neither call methods of nor rebuild.)
        ``paddle.grad`` differentiates inside the program, which returns the
        updated parameters: they are copied into the module's, as Paddle
        refuses an in-place update, within a program, of a parameter that a
        view op (the conv bias's ``reshape``) has read.
        """
        # (layer, name) in named_parameters' order: the program reads a parameter through its layer's attribute.
        layers = [layer for _, layer in module.named_sublayers(include_self=True)]
        owners = [(layer, name) for layer in layers for name in layer._parameters]
        params = [layer._parameters[name] for layer, name in owners]

        @paddle.jit.not_to_static
        def traced_step(X: Any, Y: Any, rate: Any) -> list[Any]:
            value = loss(module(X), Y)
            values = [getattr(layer, name) for layer, name in owners]
            with warnings.catch_warnings():
                # Paddle's backward reads the place of outputs without a gradient (batch norm's saved statistics),
                # which a program's values lack, and warns about it at each trace.
                warnings.filterwarnings("ignore", message="Tensor do not have 'place'", category=UserWarning)
                grads = paddle.grad(value, values)
            # Outputs that need no gradient: Paddle appends no backward pass to the program itself.
            return [value.detach()] + [(p - rate * g).detach() for p, g in zip(values, grads, strict=True)]

        programs: dict[tuple[bool, ...], Any] = {}  # one per training mode; each traces once per input shape
        # An input, not a constant: a program stores a Python float as a float32 attribute, which in float64 put
        # the compiled step's losses 4.5e-7 apart from the eager step's in 50 LeNet steps (now 0 to 1e-15).
        rate = self.tensor(np.asarray(lr))

        def step(X: Any, Y: Any) -> Any:
            # Other data becomes a tensor of this backend's dtype, as the eager step's layers convert it.
            X, Y = (x if isinstance(x, paddle.Tensor) else self.tensor(x) for x in (X, Y))
            modes = tuple(layer.training for layer in layers)
            program = programs.get(modes)
            if program is None:
                program = programs[modes] = paddle.jit.to_static(traced_step, full_graph=True)
                program.eval()  # the inference form, which Paddle prunes: the gradients are inside the program
            with self.tracing(), _serial_run():
                value, *updated = program(X, Y, rate)
            with paddle.no_grad():
                for param, new in zip(params, updated, strict=True):
                    paddle.assign(new, output=param)
            return value

        return step

    def grad(self, f: Callable[..., Any], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        """``f(*inputs)`` and its gradients; float inputs keep their dtype, others become float64."""
        leaves = []
        for x in inputs:
            array = np.asarray(x)
            dtype = array.dtype.newbyteorder("=") if array.dtype.kind == "f" else np.float64
            fresh = np.asarray(array, dtype=dtype)
            leaves.append(paddle.to_tensor(fresh, place=self.device_place, stop_gradient=False))
        value = f(*leaves)
        if not value.stop_gradient:  # else no input reached the value: no gradient for any
            value.backward()
        return value.item(), [None if t.grad is None else t.grad.numpy() for t in leaves]
