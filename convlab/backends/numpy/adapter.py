"""The NumPy backend: the reference every other backend is tested against.

NumPy has no autograd and no layers, so this backend brings its own:
:mod:`convlab.backends.numpy.autograd` (a small reverse-mode autograd over
arrays, one backward rule per primitive) and :class:`Module` (parameters
as arrays, the forward pass from the core's layer definition). Outside
:meth:`NumpyBackend.value_and_grad` and :meth:`NumpyBackend.grad` everything
computes on plain arrays and returns plain arrays. Its "compiled" training
step is the eager one reusing its memory from step to step
(:meth:`NumpyBackend.compiled_train_step`).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerCall, LayerDef, Loss, Padding, Pair, Step, shifted_runs
from convlab.backends.numpy import autograd
from convlab.backends.numpy.autograd import Tensor

_BLOCK = 1 << 16
"""Elements per row block of the shift-and-add: 256 KiB of float32, so the block stays in L2."""
_PARALLEL_MIN = 1 << 19
"""Output elements per thread below which splitting the work costs more than it saves."""


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="convlab-numpy")


class Module:
    """A layer on NumPy: its parameters and state as arrays, its submodules, its forward pass from the core.

    Parameters, state and submodules are attributes too (``layer.weight``,
    ``bn.running_mean``, ``block.conv1``), as in the frameworks' modules.
    """

    def __init__(
        self,
        definition: LayerDef,
        backend: Backend,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.definition = definition
        self.backend = backend
        self.params = {name: np.array(value, dtype=backend.dtype) for name, value in initial.items()}
        self.buffers = {name: np.array(value, dtype=backend.dtype) for name, value in (state or {}).items()}
        self.children = children
        self.named_children = dict(zip(definition.child_names(len(children)), children, strict=True))
        self.training = True

    def named_parameters(self) -> dict[str, np.ndarray]:
        """Own parameters by name, then each submodule's, prefixed with its name (``"0."``, ``"conv1."``)."""
        if not self.children:
            return self.params
        named = dict(self.params)
        for prefix, child in self.named_children.items():
            named.update({f"{prefix}.{name}": value for name, value in child.named_parameters().items()})
        return named

    def named_state(self) -> dict[str, np.ndarray]:
        """Own state by name, then each submodule's, named as :meth:`named_parameters` names parameters."""
        named = dict(self.buffers)
        for prefix, child in self.named_children.items():
            named.update({f"{prefix}.{name}": value for name, value in child.named_state().items()})
        return named

    def __getattr__(self, name: str) -> Any:
        for registry in ("params", "buffers", "named_children"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __call__(self, X: Any) -> Any:
        return self._run(self.params, X, self.children)

    def forward(self, params: Mapping[str, Any], X: Any) -> Any:
        """The output for ``X`` with ``params`` in place of :meth:`named_parameters` (Tensors while differentiating)."""
        if not self.children:
            return self._run(params, X, ())
        own = {name: params[name] for name in self.params}
        children = tuple(
            Bound(child, {name: params[f"{prefix}.{name}"] for name in child.named_parameters()})
            for prefix, child in self.named_children.items()
        )
        return self._run(own, X, children)

    def _run(self, params: Mapping[str, Any], X: Any, children: tuple[Any, ...]) -> Any:
        call = LayerCall(self.training, self.buffers)
        Y = self.definition.forward(self.backend, params, X, children, call)
        for name, value in call.updates.items():
            self.buffers[name][...] = autograd.value_of(value)  # in place, outside the graph, as torch's buffers
        return Y

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}={value.shape}" for name, value in self.params.items())
        return f"Module({self.definition}, {shapes})"


class Bound:
    """A module with other parameters in place of its own (Tensors while differentiating), callable as the module.

    Its submodules are bound too, so a block's ``forward`` that walks a
    submodule's children (DenseNet's dense block) walks the bound ones.
    """

    __slots__ = ("module", "params")

    def __init__(self, module: Module, params: Mapping[str, Any]) -> None:
        self.module, self.params = module, params

    @property
    def definition(self) -> LayerDef:
        return self.module.definition

    @property
    def children(self) -> tuple[Bound, ...]:
        return tuple(
            Bound(child, {name: self.params[f"{prefix}.{name}"] for name in child.named_parameters()})
            for prefix, child in self.module.named_children.items()
        )

    def __call__(self, X: Any) -> Any:
        return self.module.forward(self.params, X)


@dataclass(frozen=True)
class BuiltinConv2dDef(LayerDef):
    """Names NumPy's built-in conv layer in summaries; :meth:`BuiltinConv2d.forward` computes it."""

    @property
    def title(self) -> str:
        return "Conv2D"


class BuiltinConv2d(Module):
    """NumPy's stand-in for a framework's own conv layer: one channel in and out, no bias, NCHW.

    Like ``nn.Conv2d``, it calls its convolution directly, without the core's argument checks: its
    input is the training loop's own tensor. The convolution is the autograd's 2-D ``corr2d`` on the
    one image's one channel; the 2-D weight is the kernel, as the other backends' is once reshaped.
    """

    def __init__(self, backend: Backend, weight: np.ndarray) -> None:
        super().__init__(BuiltinConv2dDef(), backend, {"weight": weight})

    def __call__(self, X: Any) -> Any:
        return self.forward(self.params, X)

    def forward(self, params: Mapping[str, Any], X: Any) -> Any:
        image = np.asarray(X, dtype=self.backend.dtype)[0, 0]
        Y = autograd.corr2d(image, params["weight"])
        return autograd.reshape(Y, (1, 1, *autograd.value_of(Y).shape))


class NumpyBackend(Backend):
    dtypes = ("float32", "float64")

    def version(self) -> str:
        return np.__version__

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (np.ndarray, Tensor)

    def tensor(self, data: Any) -> Any:
        if isinstance(data, Tensor):  # inside value_and_grad: keep the graph (and gradcheck's float64)
            return data
        return np.asarray(data, dtype=self.dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    # -- nn ----------------------------------------------------------------
    def conv2d(self, x: Any, w: Any, stride: Pair, padding: Padding, groups: int, bias: Any = None) -> Any:
        return autograd.conv2d(x, w, stride, padding, groups, bias)

    def pool2d(self, x: Any, window: Pair, stride: Pair, padding: Padding, mode: str) -> Any:
        return autograd.pool2d(x, window, stride, padding, mode)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        return autograd.reshape(x, shape)

    def flip(self, x: Any, axes: tuple[int, ...]) -> Any:
        return autograd.getitem(x, tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim)))

    def matmul(self, a: Any, b: Any) -> Any:
        return autograd.matmul(a, b)

    def linear(self, x: Any, w: Any, bias: Any = None) -> Any:
        return autograd.linear(x, w, bias)

    def batch_norm(self, X: Any, weight: Any, bias: Any, eps: float) -> tuple[Any, Any, Any]:
        return autograd.batch_norm(X, weight, bias, (0, 2, 3) if len(X.shape) == 4 else (0,), eps)

    def sigmoid(self, x: Any) -> Any:
        return autograd.sigmoid(x)

    def relu(self, x: Any) -> Any:
        return autograd.relu(x)

    def log_softmax(self, x: Any, axis: int = -1) -> Any:
        return autograd.log_softmax(x, axis)

    def sum(self, x: Any, axis: int | None = None) -> Any:
        return autograd.sum(x, axis)

    def mean(self, x: Any, axis: int | tuple[int, ...] | None = None) -> Any:
        return autograd.mean(x, axis)

    def concat(self, tensors: Any, axis: int) -> Any:
        return autograd.concat(tensors, axis)

    def argmax(self, x: Any, axis: int = -1) -> Any:
        return autograd.argmax(x, axis)

    # -- chapter -----------------------------------------------------------
    def corr2d_loop(self, X: np.ndarray, K: np.ndarray) -> np.ndarray:
        h, w = K.shape
        Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=np.float32)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        if isinstance(X, Tensor) or isinstance(K, Tensor):  # differentiating: the primitive has the backward rule
            return autograd.corr2d(X, K)
        # The core's shift-and-add, fused and cache-blocked on the flattened input (see `shifted_runs`).
        # One einsum adds all k_h * k_w scaled slices of a run; order="F" makes it loop over pixels
        # innermost, as a SIMD multiply-add (one pass per kernel element, no temporaries; the default
        # order runs a k_h * k_w-term dot per pixel, ~30x slower). Large images are split into one band
        # of rows per core: einsum releases the GIL. It beat the native matrix product at every size
        # `convlab bench` tries, 8x8 up (1.3x there, more on larger images), so auto keeps the base's choice.
        h, w = K.shape
        W = X.shape[1]
        out_h, out_w = X.shape[0] - h + 1, W - w + 1
        flat = np.ascontiguousarray(X, dtype=self.dtype).ravel()
        K = np.asarray(K, dtype=self.dtype)
        full = np.empty(out_h * W, self.dtype)
        rows = max(1, min(out_h, _BLOCK // W))

        def band(first: int, stop: int) -> None:
            for start, m in shifted_runs((X.shape[0], W), (h, w), rows, first, stop)[1]:
                shifted = np.lib.stride_tricks.as_strided(
                    flat[start:], (h, w, m), (W * flat.itemsize, flat.itemsize, flat.itemsize), writeable=False
                )
                np.einsum("ab,abp->p", K, shifted, out=full[start : start + m], order="F")

        bands = min(os.cpu_count() or 1, max(1, out_h * W // _PARALLEL_MIN), out_h)
        edges = [out_h * i // bands for i in range(bands + 1)]
        others = [_pool().submit(band, edges[i], edges[i + 1]) for i in range(1, bands)]
        band(edges[0], edges[1])
        for other in others:
            other.result()
        return full.reshape(out_h, W)[:, :out_w]

    # -- modules and training ----------------------------------------------
    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Module:
        return Module(definition, self, initial, children, state)

    def submodules(self, module: Module | Bound) -> tuple[Any, ...]:
        return module.children

    def state(self, module: Module) -> dict[str, np.ndarray]:
        return module.named_state()

    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        # NumPy has no layers of its own: unseeded, as PyTorch's defaults (Kaiming-uniform with a = sqrt(5)),
        # which come down to U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight and the bias alike.
        fan_in = int(np.prod(shapes["weight"][1:]))
        bound = 1.0 / np.sqrt(fan_in)
        rng = np.random.default_rng()
        return {name: rng.uniform(-bound, bound, shape).astype(np.float32) for name, shape in shapes.items()}

    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> Module:
        return BuiltinConv2d(self, self.book_initial_kernel(kernel_size) if weight is None else weight)

    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        return np.random.default_rng().random(kernel_size, dtype=np.float32)  # the book's PyTorch tab: torch.rand

    def parameters(self, module: Module) -> dict[str, np.ndarray]:
        return dict(module.named_parameters())

    def value_and_grad(self, module: Module, X: Any, Y: Any, loss: Loss) -> tuple[float, dict[str, Any]]:
        params = module.named_parameters()
        names = list(params)

        def objective(*values: Any) -> Any:
            return loss(module.forward(dict(zip(names, values, strict=True)), X), Y)

        value, grads = autograd.value_and_grad(objective, *params.values())
        return value, dict(zip(names, grads, strict=True))

    def sgd_update(self, module: Module, grads: Mapping[str, np.ndarray], lr: float) -> None:
        params = module.named_parameters()  # the arrays themselves, updated in place
        for name, grad in grads.items():
            params[name] -= lr * grad

    compile_break_even_steps = 1
    """The compiled step costs nothing to build and its first call is an eager step: it pays from the first."""

    def compiled_train_step(self, module: Module, loss: Loss, lr: float) -> Step:
        """:meth:`train_step`, its large arrays in memory reused from one step to the next.

        NumPy has no compiler; what a step repeats that can be saved is its
        allocations. An eager step maps a few MiB afresh every time (glibc
        hands large freed blocks back to the system), and the kernel faults
        in and zeroes every page: on LeNet at batch 128, about a thousand page
        faults a step. This step runs inside :func:`autograd.reusing` with a
        :class:`autograd.Workspace` of its own that outlives it, so after the
        first step the same pages serve every step. The losses and parameters
        are those of :meth:`train_step`, bit for bit; the workspace keeps
        about one step's worth of those arrays between steps.
        """
        workspaces = threading.local()  # one per thread: a workspace serves one step at a time
        eager = self.train_step(module, loss, lr)

        def step(X: Any, Y: Any) -> float:
            workspace = getattr(workspaces, "workspace", None)
            if workspace is None:
                workspace = workspaces.workspace = autograd.Workspace()
            with autograd.reusing(workspace):
                value = eager(X, Y)
            workspace.release_unused()  # a smaller last batch's arrays go, once the full batches' are back
            return value

        return step

    def grad(self, f: Callable[..., Any], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        return autograd.value_and_grad(f, *inputs)
