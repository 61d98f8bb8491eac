"""The layers of ``cl.nn``: one frozen definition per kind, and the factories that make them modules."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab._api import export
from convlab.backends.base import Backend, LayerCall, LayerDef, Padding, Pair, Tensor
from convlab.core.checks import check_count, check_fits, check_kernel_size, check_padding, check_seed, check_stride
from convlab.core.convert import as_native, describe
from convlab.core.memory import check_size
from convlab.core.registry import get_backend

Children = Sequence[Callable[[Tensor], Tensor]]
Call = LayerCall | None


def in_active_precision(
    backend: Backend, params: Mapping[str, Tensor], X: Any
) -> tuple[Backend, Mapping[str, Tensor], Any]:
    """The backend, parameters and input a layer made on ``backend`` computes with now.

    A layer computes with its own backend, whatever backend is active, except
    in one case: inside a :func:`convlab.use_backend` block of the same
    framework and device in another dtype (``cl.gradcheck``'s float64), it
    computes in that block's dtype, with its parameters and a tensor input
    cast there. The casts are the framework's own, so gradients still reach
    the layer's parameters. Anywhere else nothing changes: same backend, same
    tensors, same numbers.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> layer = cl.nn.Linear(2, 1, seed=0)
    >>> X = np.ones((1, 2), dtype=np.float32)
    >>> with cl.use_backend("numpy", dtype="float64"):
    ...     print(layer(X).dtype)
    float64
    >>> layer(X).dtype
    dtype('float32')
    """
    active = get_backend()
    if (
        active is backend
        or active.dtype == backend.dtype
        or active.name != backend.name
        or active.device != backend.device
    ):
        return backend, params, X
    cast = {name: active.tensor(value) for name, value in params.items()}
    return active, cast, active.tensor(X) if isinstance(X, active.tensor_types) else X


def input_tensor(backend: Backend, X: Any, layer: str) -> Tensor:
    """``X`` as a tensor of the layer's backend: its own float tensors pass as they are, other data is converted.

    NumPy's own float64 arrays pass too, as NumPy's autograd differentiates in them (``cl.gradcheck``).
    """
    if isinstance(X, backend.tensor_types) and (not isinstance(X, np.ndarray) or X.dtype.kind == "f"):
        return X
    return as_native(X, f"{layer}: X", backend)


def _check_input(layer: str, X: Tensor, expected: str, ndim: int, channels: int | None = None) -> None:
    shape = tuple(X.shape)
    if len(shape) != ndim or (channels is not None and shape[1] != channels):
        raise ValueError(f"{layer}: expected an input of shape {expected}, got {describe(X)}")


@dataclass(frozen=True)
class Conv2dDef(LayerDef):
    """Cross-correlation of NCHW input with OIHW ``weight``, plus a per-channel ``bias``."""

    in_channels: int
    out_channels: int
    kernel_size: Pair
    stride: Pair
    padding: Padding

    def forward(
        self, backend: Backend, params: Mapping[str, Tensor], X: Tensor, children: Children = (), call: Call = None
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, "Conv2d")
        _check_input("Conv2d", X, f"(N, {self.in_channels}, H, W), in_channels={self.in_channels}", 4, self.in_channels)
        top, bottom, left, right = self.padding
        check_fits((X.shape[2] + top + bottom, X.shape[3] + left + right), self.kernel_size, "kernel_size", padded=True)
        return backend.conv2d(X, params["weight"], self.stride, self.padding, 1, bias=params.get("bias"))


@dataclass(frozen=True)
class Pool2dDef(LayerDef):
    """Max or average pooling of each channel (max pads with ``-inf``; average counts padded zeros)."""

    mode: str
    kernel_size: Pair
    stride: Pair
    padding: Padding

    @property
    def title(self) -> str:
        return "MaxPool2d" if self.mode == "max" else "AvgPool2d"

    def forward(
        self, backend: Backend, params: Mapping[str, Tensor], X: Tensor, children: Children = (), call: Call = None
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, self.title)
        _check_input(self.title, X, "(N, C, H, W)", 4)
        top, bottom, left, right = self.padding
        check_fits((X.shape[2] + top + bottom, X.shape[3] + left + right), self.kernel_size, "kernel_size", padded=True)
        return backend.pool2d(X, self.kernel_size, self.stride, self.padding, self.mode)


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's windows of adaptive pooling: output ``i`` pools ``[floor(i size/out), ceil((i + 1) size/out))``."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


@dataclass(frozen=True)
class AdaptiveAvgPool2dDef(LayerDef):
    """Average pooling to a fixed ``(height, width)`` whatever the input's, with PyTorch's windows."""

    output_size: Pair

    @property
    def title(self) -> str:
        return "AdaptiveAvgPool2d"

    def forward(
        self, backend: Backend, params: Mapping[str, Tensor], X: Tensor, children: Children = (), call: Call = None
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, self.title)
        _check_input(self.title, X, "(N, C, H, W)", 4)
        (height, width), (out_h, out_w) = X.shape[2:], self.output_size
        if (out_h, out_w) == (1, 1):  # global pooling: a mean, whose float64 gradient is exact on every framework
            return backend.reshape(backend.mean(X, (2, 3)), (X.shape[0], X.shape[1], 1, 1))
        if height % out_h == 0 and width % out_w == 0:  # equal windows: one pooling call
            window = (height // out_h, width // out_w)
            return backend.pool2d(X, window, window, (0, 0, 0, 0), "avg")
        cell = (X.shape[0], X.shape[1], 1, 1)
        rows = [
            backend.concat(
                [
                    backend.reshape(backend.mean(X[:, :, top:bottom, left:right], (2, 3)), cell)
                    for left, right in adaptive_windows(width, out_w)
                ],
                3,
            )
            for top, bottom in adaptive_windows(height, out_h)
        ]
        return backend.concat(rows, 2)


@dataclass(frozen=True)
class LinearDef(LayerDef):
    """``X @ weight.T + bias`` on ``(N, in_features)`` input; ``weight`` is ``(out_features, in_features)``."""

    in_features: int
    out_features: int

    @property
    def title(self) -> str:
        return "Linear"

    def forward(
        self, backend: Backend, params: Mapping[str, Tensor], X: Tensor, children: Children = (), call: Call = None
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, "Linear")
        _check_input("Linear", X, f"(N, {self.in_features}), in_features={self.in_features}", 2, self.in_features)
        return backend.linear(X, params["weight"], params.get("bias"))


@dataclass(frozen=True)
class ActivationDef(LayerDef):
    """An elementwise nonlinearity: ``"sigmoid"`` or ``"relu"``."""

    function: str

    @property
    def title(self) -> str:
        return {"sigmoid": "Sigmoid", "relu": "ReLU"}[self.function]

    def forward(
        self, backend: Backend, params: Mapping[str, Tensor], X: Tensor, children: Children = (), call: Call = None
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, self.title)
        return backend.sigmoid(X) if self.function == "sigmoid" else backend.relu(X)


@dataclass(frozen=True)
class FlattenDef(LayerDef):
    """``(N, C, H, W)`` (or any ``(N, ...)``) to ``(N, C H W)``."""

    @property
    def title(self) -> str:
        return "Flatten"

    def forward(
        self, backend: Backend, params: Mapping[str, Tensor], X: Tensor, children: Children = (), call: Call = None
    ) -> Tensor:
        backend, params, X = in_active_precision(backend, params, X)
        X = input_tensor(backend, X, "Flatten")
        if len(X.shape) < 2:
            raise ValueError(f"Flatten: expected an input of shape (N, ...) with at least 2 axes, got {describe(X)}")
        return backend.reshape(X, (X.shape[0], math.prod(X.shape[1:])))


@dataclass(frozen=True)
class SequentialDef(LayerDef):
    """Its submodules applied in order."""

    @property
    def title(self) -> str:
        return "Sequential"

    def forward(
        self, backend: Backend, params: Mapping[str, Tensor], X: Tensor, children: Children = (), call: Call = None
    ) -> Tensor:
        for index, child in enumerate(children):
            try:
                X = child(X)
            except LayerInputError as exc:  # from deeper down: add this level's index to its path
                exc.path.insert(0, str(index))
                raise
            except ValueError as exc:  # a layer refused its input: say which layer, and what it got
                raise LayerInputError([str(index)], _title(child), tuple(X.shape), str(exc)) from exc
        return X


class LayerInputError(ValueError):
    """A layer of a model refused its input; the message names the layer by its path, as ``cl.parameters`` does."""

    def __init__(self, path: list[str], title: str, shape: tuple[int, ...], reason: str) -> None:
        super().__init__(reason)
        self.path, self.title, self.shape, self.reason = path, title, shape, reason

    def __str__(self) -> str:
        return f"layer {'.'.join(self.path)} ({self.title}), given an input of shape {self.shape}: {self.reason}"


def _title(child: Any) -> str:
    definition = getattr(child, "definition", None)  # NumPy's gradient pass hands bound modules: they have it too
    return definition.title if isinstance(definition, LayerDef) else type(child).__name__


def xavier_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Glorot and Bengio's uniform initialiser: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape).astype(np.float32)


_SIZE_ARGUMENTS = {
    "conv2d": ("Conv2d", "in_channels, out_channels and kernel_size"),
    "linear": ("Linear", "in_features and out_features"),
}


def _initial(
    kind: str, shapes: dict[str, tuple[int, ...]], fan_in: int, fan_out: int, seed: int | None, backend: Backend
) -> dict[str, np.ndarray]:
    for name, shape in shapes.items():
        check_size(*_SIZE_ARGUMENTS[kind], shape, shape, name)
    if seed is None:
        values = backend.framework_initial(kind, shapes)
        return {name: np.asarray(values[name], dtype=np.float32).reshape(shape) for name, shape in shapes.items()}
    rng = np.random.default_rng(check_seed(seed))
    initial = {"weight": xavier_uniform(shapes["weight"], fan_in, fan_out, rng)}
    if "bias" in shapes:
        initial["bias"] = np.zeros(shapes["bias"], dtype=np.float32)
    return initial


@export(pinned=True, namespace="nn")
def Conv2d(  # noqa: N802 - the frameworks' class name
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    bias: bool = True,
    seed: int | None = None,
) -> Any:
    """A 2-D convolutional layer (cross-correlation) as a module of the active framework.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    kernel_size : int or (int, int)
        Height and width of the kernel.
    stride : int or (int, int)
        Step of the window.
    padding : int, (p_h, p_w) or (top, bottom, left, right)
        Zero padding; any width is supported, also beyond the kernel.
    bias : bool
        Add a learned bias per output channel.
    seed : int, optional
        Draw the initial values with NumPy from this seed (Xavier-uniform
        weight, zero bias), identical on every backend; ``None`` keeps the
        framework's own initialiser.

    Returns
    -------
    layer
        A module of the active framework with parameters ``weight``
        ``(out_channels, in_channels, k_h, k_w)`` and ``bias``
        ``(out_channels,)``, called on ``(N, in_channels, H, W)`` tensors.

    Examples
    --------
    >>> import convlab as cl
    >>> conv = cl.nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False, seed=0)
    >>> conv.weight.shape
    (1, 1, 1, 2)
    >>> import numpy as np
    >>> cl.nn.Conv2d(1, 6, 5, padding=2, seed=0)(np.zeros((2, 1, 28, 28))).shape
    (2, 6, 28, 28)
    """
    size = check_kernel_size(kernel_size)
    definition = Conv2dDef(
        check_count(in_channels, "in_channels"), check_count(out_channels, "out_channels"), size,
        check_stride(stride), check_padding(padding),
    )  # fmt: skip
    receptive = size[0] * size[1]
    shapes = {"weight": (definition.out_channels, definition.in_channels, *size)}
    if bias:
        shapes["bias"] = (definition.out_channels,)
    backend = get_backend()
    fans = definition.in_channels * receptive, definition.out_channels * receptive
    return backend.module(definition, _initial("conv2d", shapes, *fans, seed, backend))


def _pool(mode: str, kernel_size: Any, stride: Any, padding: Any) -> Any:
    size = check_kernel_size(kernel_size)
    definition = Pool2dDef(mode, size, size if stride is None else check_stride(stride), check_padding(padding))
    return get_backend().module(definition, {})


@export(pinned=True, namespace="nn")
def MaxPool2d(kernel_size: Any, stride: Any = None, padding: Any = 0) -> Any:  # noqa: N802 - the frameworks' name
    """Max pooling of each channel; the stride defaults to the window, as in the frameworks.

    Padding is ``-inf``, so it never wins; any width is supported (PyTorch
    allows at most half the window).

    Examples
    --------
    >>> import convlab as cl
    >>> import numpy as np
    >>> X = cl.tensor(np.arange(16).reshape(1, 1, 4, 4))
    >>> cl.to_numpy(cl.nn.MaxPool2d(3)(X))
    array([[[[10.]]]], dtype=float32)
    >>> cl.to_numpy(cl.nn.MaxPool2d(3, padding=1, stride=2)(X))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    return _pool("max", kernel_size, stride, padding)


@export(pinned=True, namespace="nn")
def AvgPool2d(kernel_size: Any, stride: Any = None, padding: Any = 0) -> Any:  # noqa: N802 - the frameworks' name
    """Average pooling of each channel; padded zeros count in the average (PyTorch's default).

    Examples
    --------
    >>> import convlab as cl
    >>> import numpy as np
    >>> cl.to_numpy(cl.nn.AvgPool2d(2)(np.arange(16).reshape(1, 1, 4, 4)))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    return _pool("avg", kernel_size, stride, padding)


@export(pinned=True, namespace="nn")
def AdaptiveAvgPool2d(output_size: Any) -> Any:  # noqa: N802 - the frameworks' name
    """Average pooling to ``output_size`` whatever the input's height and width (PyTorch's windows).

    ``AdaptiveAvgPool2d(1)`` is global average pooling, NiN's and ResNet's
    head.

    Examples
    --------
    >>> import convlab as cl
    >>> import numpy as np
    >>> X = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    >>> cl.to_numpy(cl.nn.AdaptiveAvgPool2d(1)(X))
    array([[[[12.]]]], dtype=float32)
    >>> cl.to_numpy(cl.nn.AdaptiveAvgPool2d(2)(X))[0, 0]  # windows rows/columns [0, 3) and [2, 5)
    array([[ 6.,  8.],
           [16., 18.]], dtype=float32)
    """
    return get_backend().module(AdaptiveAvgPool2dDef(check_kernel_size(output_size, "output_size")), {})


@export(pinned=True, namespace="nn")
def Linear(in_features: int, out_features: int, bias: bool = True, seed: int | None = None) -> Any:  # noqa: N802
    """A fully connected layer, ``X @ weight.T + bias``, as a module of the active framework.

    ``weight`` is ``(out_features, in_features)``, as in PyTorch. ``seed``
    as in :func:`Conv2d`.

    Examples
    --------
    >>> import convlab as cl
    >>> import numpy as np
    >>> cl.nn.Linear(400, 120, seed=0)(np.zeros((3, 400))).shape
    (3, 120)
    """
    definition = LinearDef(check_count(in_features, "in_features"), check_count(out_features, "out_features"))
    shapes = {"weight": (definition.out_features, definition.in_features)}
    if bias:
        shapes["bias"] = (definition.out_features,)
    backend = get_backend()
    initial = _initial("linear", shapes, definition.in_features, definition.out_features, seed, backend)
    return backend.module(definition, initial)


@export(pinned=True, namespace="nn")
def Sigmoid() -> Any:  # noqa: N802 - the frameworks' name
    """The logistic sigmoid, elementwise, as a module of the active framework."""
    return get_backend().module(ActivationDef("sigmoid"), {})


@export(pinned=True, namespace="nn")
def ReLU() -> Any:  # noqa: N802 - the frameworks' name
    """``max(x, 0)``, elementwise, as a module of the active framework."""
    return get_backend().module(ActivationDef("relu"), {})


@export(pinned=True, namespace="nn")
def Flatten() -> Any:  # noqa: N802 - the frameworks' name
    """``(N, C, H, W)`` to ``(N, C H W)``, as a module of the active framework."""
    return get_backend().module(FlattenDef(), {})


@export(pinned=True, namespace="nn")
def Sequential(*layers: Any) -> Any:  # noqa: N802 - the frameworks' name
    """The layers applied in order, as one module of the active framework that holds them as submodules.

    The layers must be convlab layers made on the active backend; they are
    not copied: training the sequence trains them.

    Examples
    --------
    >>> import convlab as cl
    >>> net = cl.nn.Sequential(cl.nn.Flatten(), cl.nn.Linear(4, 2, seed=0), cl.nn.Sigmoid())
    >>> sorted(cl.parameters(net))
    ['1.bias', '1.weight']
    """
    backend = get_backend()
    for index, layer in enumerate(layers):
        definition = getattr(layer, "definition", None)
        if not isinstance(definition, LayerDef):
            raise TypeError(
                f"Sequential: layer {index}: expected a convlab layer (cl.nn.Conv2d, ...), got {type(layer).__name__}"
            )
        owner = getattr(layer, "backend", None)
        if owner is not backend:
            raise ValueError(
                f"Sequential: layer {index} ({definition.title}) was made on {owner!r}, but the active backend is "
                f"{backend!r}; make every layer on one backend"
            )
    return backend.module(SequentialDef(), {}, tuple(layers))


def module_backend(module: Any, name: str = "module") -> Backend:
    """The backend a convlab layer or model was made on; ``TypeError`` naming ``name`` for anything else."""
    backend = getattr(module, "backend", None)
    if not isinstance(getattr(module, "definition", None), LayerDef) or not isinstance(backend, Backend):
        raise TypeError(
            f"{name}: expected a convlab {name} (cl.nn.Conv2d, cl.Conv2D, cl.models.lenet(), ...), "
            f"got {type(module).__name__}"
        )
    return backend


@export
def parameters(module: Any) -> dict[str, Any]:
    """A convlab module's trainable parameters by name (``"weight"``, ``"0.bias"``), live tensors of its framework.

    The framework's own ways see the same parameters (``module.parameters()``
    in PyTorch, ``trainable_weights`` in Keras, ``nnx.state(module, nnx.Param)``...).
    """
    return module_backend(module).parameters(module)
