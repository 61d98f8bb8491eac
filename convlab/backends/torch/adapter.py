"""The PyTorch backend: ``torch.nn.functional`` primitives, ``nn.Module`` layers, ``loss.backward()``.

Each choice is explained beside the code it concerns; the book's PyTorch
tabs and PyTorch's idiomatic code are in :mod:`convlab.backends.torch.reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
from torch import nn

from convlab.backends.base import Backend, LayerCall, LayerDef, Loss, Padding, Pair, Step, shifted_runs

_RUN = (1 << 15) - 1
"""Most elements per run of the CPU shift-and-add: under PyTorch's parallel grain (see ``corr2d_vectorized``)."""


class Module(nn.Module):
    """A convlab layer as an ``nn.Module``: core parameters and forward pass, PyTorch's registration.

    It holds one ``nn.Parameter`` per initial value, so
    ``torch.optim.SGD(layer.parameters())`` trains it; its forward pass is the
    core's definition.

    Parameters
    ----------
    backend : TorchBackend
        The backend the layer computes with, whatever backend is active later.
    definition : LayerDef
        The layer's forward pass.
    initial : mapping of str to numpy.ndarray
        One ``nn.Parameter`` per entry, registered under its name.
    children : tuple of Module
        Submodules, registered as ``"0"``, ``"1"``, ... (as ``nn.Sequential`` names them).
    """

    def __init__(
        self,
        backend: TorchBackend,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[nn.Module, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.definition = definition
        for name, value in initial.items():
            self.register_parameter(name, nn.Parameter(backend.tensor(value)))
        for name, value in (state or {}).items():
            self.register_buffer(name, backend.tensor(value))  # state_dict() saves it; optimisers never see it
        for name, child in zip(definition.child_names(len(children)), children, strict=True):
            self.add_module(name, child)

    def forward(self, X: Any) -> Any:
        # _parameters, _buffers and _modules are nn.Module's own registries: reading them costs less than
        # named_parameters().
        call = LayerCall(self.training, self._buffers)
        Y = self.definition.forward(self.backend, self._parameters, X, tuple(self._modules.values()), call)
        if call.updates:
            with torch.no_grad():  # state moves outside the graph, as nn.BatchNorm2d's running statistics do
                for name, value in call.updates.items():
                    self._buffers[name].copy_(value)
        return Y

    def extra_repr(self) -> str:
        shapes = ", ".join(f"{name}={tuple(p.shape)}" for name, p in self.named_parameters(recurse=False))
        return f"{self.definition}, {shapes}"


class BuiltinConv2d(nn.Conv2d):
    """``nn.Conv2d(1, 1, kernel_size, bias=False)``, NCHW as PyTorch's own."""

    def __init__(self, kernel_size: Pair) -> None:
        super().__init__(1, 1, kernel_size, bias=False)

    def forward(self, X: Any) -> Any:
        if not isinstance(X, torch.Tensor):
            X = torch.as_tensor(X, dtype=self.weight.dtype, device=self.weight.device)
        return self._conv_forward(X, self.weight, None)


def _halves(padding: Padding) -> Pair | None:
    """``(rows, columns)`` on each side where ``padding`` is symmetric, else ``None``."""
    top, bottom, left, right = padding
    return (top, left) if top == bottom and left == right else None


def _pad(x: Any, padding: Padding, value: float = 0.0) -> Any:
    top, bottom, left, right = padding
    return F.pad(x, (left, right, top, bottom), value=value)  # F.pad lists the last axis first


class TorchBackend(Backend):
    dtypes = ("float32", "float64")

    def __init__(self, spec: Any, device: str | None = None, dtype: str = "float32") -> None:
        super().__init__(spec, device, dtype)
        self._dtype = getattr(torch, self.dtype.name)  # torch.float32 or torch.float64

    # -- core ------------------------------------------------------------------
    def resolve_device(self, device: str | None) -> str:
        if device is None:
            return str(torch.get_default_device())
        try:
            place = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device: expected a torch device such as 'cpu' or 'cuda', got {device!r} ({exc})"
            ) from None
        if place.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} was asked for, but torch sees no CUDA device here; use 'cpu'")
        return str(place)

    def version(self) -> str:
        return str(torch.__version__)

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (torch.Tensor,)  # nn.Parameter included

    def labels(self, data: np.ndarray) -> Any:
        return torch.from_numpy(np.asarray(data, dtype=np.int64)).to(self.device)

    def one_hot(self, labels: Any, classes: int) -> Any:
        return F.one_hot(labels, classes).to(self._dtype)

    def tensor(self, data: Any) -> Any:
        if isinstance(data, torch.Tensor):
            # The same tensor when nothing changes (this dtype, on this device), so parameters keep their graph.
            return data.to(device=self.device, dtype=self._dtype)
        # One fresh copy, as the book's d2l.tensor (torch.tensor) makes: a tensor never aliases the caller's
        # array, which torch could not do anyway for negative-stride (np.flip), read-only or byte-swapped arrays.
        fresh = torch.from_numpy(np.array(data, dtype=self.dtype, order="C"))
        return fresh if self.device == "cpu" else fresh.to(self.device)

    def is_real(self, x: Any) -> bool:
        return not (x.is_complex() or x.dtype == torch.bool)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    def synchronize(self, y: Any) -> Any:
        # CUDA kernels run asynchronously: wait for the device, which copies nothing. On the CPU every
        # result is finished when its call returns.
        if y.device.type != "cpu":
            torch.accelerator.synchronize(y.device)
        return y

    # -- nn ----------------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, stride: Pair, padding: Padding, groups: int, bias: Any = None) -> Any:
        halves = _halves(padding)
        if halves is None:  # F.conv2d pads symmetrically only: other paddings are zeros padded first
            x, halves = _pad(x, padding), (0, 0)
        return F.conv2d(x, w, bias, stride=stride, padding=halves, groups=groups)

    def pool2d(self, x: Any, window: Pair, stride: Pair, padding: Padding, mode: str) -> Any:
        halves = _halves(padding)
        # PyTorch pools with its own padding only where it is symmetric and up to half the window on each
        # side. Other paddings are padded first: -inf for max pooling, so padding never wins, and zeros for
        # average pooling, which then counts them, as count_include_pad=True does.
        if halves is None or halves[0] > window[0] // 2 or halves[1] > window[1] // 2:
            x, halves = _pad(x, padding, -float("inf") if mode == "max" else 0.0), (0, 0)
        if mode == "max":
            return F.max_pool2d(x, window, stride, halves)
        return F.avg_pool2d(x, window, stride, halves, count_include_pad=True)

    def flip(self, x: Any, axes: tuple[int, ...]) -> Any:
        return torch.flip(x, axes)  # torch slicing takes no negative steps

    def linear(self, x: Any, w: Any, bias: Any = None) -> Any:
        return F.linear(x, w, bias)

    def sigmoid(self, x: Any) -> Any:
        return torch.sigmoid(x)

    def relu(self, x: Any) -> Any:
        return torch.relu(x)

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        return torch.log_softmax(x, dim=axis)

    def concat(self, tensors: Any, axis: int) -> Any:
        return torch.cat(tuple(tensors), dim=axis)

    def mean(self, x: Any, axis: int | tuple[int, ...] | None = None) -> Any:
        return x.mean() if axis is None else x.mean(dim=axis)

    def sqrt(self, x: Any) -> Any:
        return torch.sqrt(x)

    def batch_norm(self, X: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any]:
        # nn.BatchNorm2d's fused kernel. It reports the batch's statistics only by averaging them into running
        # buffers: fresh ones with momentum 1 receive them whole (the variance unbiased, as PyTorch keeps it).
        mean = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
        unbiased = torch.ones(X.shape[1], dtype=X.dtype, device=X.device)
        Y = F.batch_norm(X, mean, unbiased, weight, bias, training=True, momentum=1.0, eps=eps)
        count = X.numel() // X.shape[1]
        return Y, mean, unbiased * ((count - 1) / count)

    # -- chapter ---------------------------------------------------------------
    def corr2d_loop(self, X: Any, K: Any) -> Any:
        """The book's PyTorch tab.

        Autograd records its in-place item assignment ``Y[i, j] = ...`` into a
        fresh ``torch.zeros`` (as ``CopySlices``), so the loop layer *is*
        differentiable in PyTorch, only slow: :func:`convlab.autograd_exercise`
        reports the gradients.
        """
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), device=X.device)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        out_h, out_w = X.shape[0] - h + 1, X.shape[1] - w + 1
        recording = torch.is_grad_enabled() and (X.requires_grad or K.requires_grad)
        if recording or X.device.type != "cpu":
            # In-place addcmul_ into one output-sized buffer, no temporaries; still differentiable, since no
            # backward formula needs the accumulator's old value. On a GPU each pass is one kernel launch.
            Y = X[:out_h, :out_w] * K[0, 0]
            for a in range(h):
                for b in range(w):
                    if a or b:
                        Y.addcmul_(X[a : a + out_h, b : b + out_w], K[a, b])
            return Y
        # Nothing to record, on the CPU: runs of rows that stay in L2 through all their passes (shifted_runs),
        # each pass one fused multiply-add (add_ with alpha). Whole-image passes stream the image from memory
        # once per kernel element, several times slower past 1024x1024. Each run stays under PyTorch's parallel
        # grain (32768 elements), so no pass waits for a thread: on a busy machine a parallel pass of 64K
        # elements took 10x to 60x longer than a serial one of 32K. oneDNN's (banded) convolution, parallel too,
        # beat the runs by up to 3x at 512x512 on a quiet machine, but on a busy one each call, from 8x8 up,
        # waited about 7 ms for its thread (auto_method weighs both).
        flat = X.contiguous().view(-1)
        full = torch.empty(out_h * X.shape[1], dtype=X.dtype)
        weights = K.reshape(-1).tolist()
        offsets, runs = shifted_runs(tuple(X.shape), (h, w), _RUN // X.shape[1])
        for start, length in runs:
            Y = full[start : start + length]
            torch.mul(flat[start : start + length], weights[0], out=Y)
            for offset, k in zip(offsets[1:], weights[1:], strict=True):
                Y.add_(flat[start + offset : start + offset + length], alpha=k)
        return full.view(out_h, X.shape[1])[:, :out_w]

    def auto_method(self, x_shape: Pair, k_shape: Pair) -> str:
        # The runs pass over the image once per kernel element; oneDNN's banded convolution reads it once. Quiet,
        # in `convlab bench` (medians, ms): from 512x512 up with 3x3 and 5x5 oneDNN won (512x512, 3x3: 0.33-0.51
        # against 0.48-0.85; 5x5: 0.42 against 1.2), or tied (2048x2048, 3x3: 8.2 against 8.1); with 2x2 the runs
        # won at every size (2048x2048: 4.5-4.8 against 7.3-35). oneDNN runs on two threads and here some
        # measurements catch each call waiting for the second (1024x1024, 3x3: 7.5 ms against 1.1; on a busy
        # machine about 7 ms a call, above); the runs, serial, never wait. Those medians had PyTorch on one thread
        # (MXNet's import had set it; convlab.core.threads). On two: 512x512, 3x3 oneDNN 0.38-0.42 against 0.45-0.46;
        # with 2x2 oneDNN is bimodal from 1024x1024 (2048x2048: 2.8 ms in one run, 12.2-12.4 in three, against
        # 3.8-4.1), and the runs still win at 512x512 (0.26-0.28 against 0.37-0.39).
        pixels, taps = x_shape[0] * x_shape[1], k_shape[0] * k_shape[1]
        return "native" if pixels >= 512 * 512 and taps >= 9 else "vectorized"

    def corr2d_bands(self, x_shape: Pair, k_shape: Pair) -> int:
        # oneDNN's one-channel convolution takes a slow path past 256x256 pixels; as 16 channels of a depthwise
        # one it ran 5x to 10x faster from 512x512 to 2048x2048.
        return 16 if x_shape[0] * x_shape[1] > 256 * 256 else 1

    # -- modules and training ----------------------------------------------------
    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Module:
        return Module(self, definition, initial, children, state)

    def submodules(self, module: nn.Module) -> tuple[Any, ...]:
        return tuple(module.children())

    def state(self, module: nn.Module) -> dict[str, Any]:
        return dict(module.named_buffers())

    def set_training(self, module: nn.Module, training: bool) -> None:
        module.train(training)  # PyTorch's own switch: model.eval() and cl.nn.set_training agree

    def dropout_mask(self, shape: tuple[int, ...], p: float, counter: Any) -> Any:
        # torch's generator (torch.manual_seed governs it), as nn.Dropout draws: keep with probability 1 - p.
        keep = torch.empty(shape, dtype=self._dtype, device=self.device).bernoulli_(1.0 - p)
        return keep / (1.0 - p)

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        out_size, in_size, *kernel = shapes["weight"]
        bias = "bias" in shapes
        layer = (
            nn.Conv2d(in_size, out_size, kernel, bias=bias) if kind == "conv2d" else nn.Linear(in_size, out_size, bias)
        )
        return {name: p.detach().numpy() for name, p in layer.named_parameters()}

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> BuiltinConv2d:
        layer = BuiltinConv2d(kernel_size).to(self.device, self._dtype)
        if weight is not None:
            with torch.no_grad():
                layer.weight.copy_(self.tensor(weight).reshape(layer.weight.shape))
        return layer

    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        return torch.rand(kernel_size).numpy()  # the book's PyTorch tab: uniform on [0, 1)

    def parameters(self, module: nn.Module) -> dict[str, Any]:
        return dict(module.named_parameters())

    def value_and_grad(self, module: nn.Module, X: Any, Y: Any, loss: Loss) -> tuple[float, dict[str, Any]]:
        # loss.backward() into .grad, reset to None first, as the book's training loop does with zero_grad().
        params = self.parameters(module)
        for p in params.values():
            p.grad = None  # what zero_grad() does, without walking the module tree again
        value = loss(module(X), Y)
        value.backward()
        return value.item(), {name: p.grad for name, p in params.items()}

    def predict(self, module: nn.Module, X: Any) -> Any:
        with torch.no_grad():
            return module(X)

    def sgd_update(self, module: nn.Module, grads: Mapping[str, Any], lr: float) -> None:
        params = self.parameters(module)
        with torch.no_grad():
            for name, grad in grads.items():
                params[name].sub_(grad, alpha=lr)

    # compile="auto" leaves PyTorch eager. On LeNet at batch 128 (2 loaded cores) compiling took 37 s and saved
    # 43 ms a step (138 -> 96 ms), even after 870 steps; but a whole 10-epoch run saved only 5% (305 s against
    # 320 s, evaluation included), and TorchInductor's max-pooling backward differs from eager PyTorch's on some
    # inputs (ReLU LeNet, batch 16: the second loss 0.2% apart; aot_eager, without Inductor, matches exactly).
    compile_break_even_steps = None

    def compiled_train_step(self, module: nn.Module, loss: Loss, lr: float) -> Step:
        """The step as the book's training loop writes it, under ``torch.compile`` (TorchInductor).

        TorchDynamo captures the forward pass and the loss as one graph, which
        AOTAutograd differentiates ahead of time, and the update as another;
        ``backward()`` between them is where the step leaves the graph. The
        parameters are updated in place, so the module stays the one trained.
        """
        params = list(self.parameters(module).values())

        def step(X: Any, Y: Any) -> Any:
            for p in params:
                p.grad = None
            value = loss(module(X), Y)
            value.backward()
            with torch.no_grad():  # what torch.optim.SGD(foreach=True) does, p -= lr * grad for all at once
                torch._foreach_add_(params, [p.grad for p in params], alpha=-lr)
            return value.detach()

        compiled = torch.compile(step)

        def traced_step(X: Any, Y: Any) -> Any:
            with self.tracing():
                return compiled(X, Y)

        return traced_step

    def grad(self, f: Callable[..., Any], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        """``f(*inputs)`` and its gradients; float inputs keep their dtype, others become float64."""
        leaves = []
        for x in inputs:
            array = np.asarray(x)
            dtype = array.dtype.newbyteorder("=") if array.dtype.kind == "f" else np.float64
            fresh = np.array(array, dtype=dtype, order="C")  # torch wraps only native-order, positive strides
            leaves.append(torch.from_numpy(fresh).to(self.device).requires_grad_())
        value = f(*leaves)
        if value.requires_grad:  # else no input reached the value: no gradient for any
            value.backward()
        return value.item(), [None if t.grad is None else self.to_numpy(t.grad) for t in leaves]
