"""The protocol every backend adapter implements.

An adapter translates a few primitives into one framework; everything the
chapter *does* (validation, shape arithmetic, strict convolution, the layers'
forward passes and initial values, the loss, the training loop, divergence
checks) lives in the core and is written once in terms of these primitives.

The primitives, grouped as Keras 3 groups its backends' modules:

* **core**: facts (``version``, ``resolve_device``) and tensors
  (``tensor_types``, ``tensor``, ``to_numpy``, ``is_real``);
* **nn**: ``conv2d`` and ``pool2d`` on NCHW tensors with OIHW weights, and the
  activations and reductions a small CNN needs;
* **chapter**: the book's double loop as that framework's tab writes it
  (``corr2d_loop``, which the documentation quotes), and three speed hooks,
  ``corr2d_vectorized``, ``corr2d_bands`` and ``auto_method``;
* **modules and training**: how a parameter is made and registered in the
  framework's module type, and how modules nest (:meth:`Backend.module`,
  :meth:`Backend.submodules`), the framework's own initial values for a
  layer (:meth:`Backend.framework_initial`), the framework's own conv layer
  (:meth:`Backend.builtin_conv2d`), a kernel drawn as the book's tab draws it
  (:meth:`Backend.book_initial_kernel`), gradients (``value_and_grad``) and
  an update step (``sgd_update``).

The book's own code and each framework's idiomatic code, which only
``convlab bench`` and the documentation run, are not part of the protocol:
they live in the backend's reference module
(:mod:`convlab.backends.reference`), beside its adapter.

The core has checked every argument before it calls a primitive: shapes fit,
stride and padding are positive (or zero) int pairs and quadruples, tensors
belong to this backend.

A backend is one package in :mod:`convlab.backends`: its ``__init__`` holds
only a :class:`~convlab.backends.spec.BackendSpec` (read without importing
the framework), and the adapter module the spec names imports its framework
at its top and defines one subclass of :class:`Backend`. The registry imports
that module when the backend is first selected, so ``import convlab`` stays
free of deep-learning frameworks.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab.backends.spec import BackendSpec

Tensor = Any
"""A native tensor of some backend (``np.ndarray``, ``torch.Tensor``, ...)."""

Pair = tuple[int, int]
"""``(height, width)``: a window, a stride."""

Padding = tuple[int, int, int, int]
"""``(top, bottom, left, right)`` rows and columns of padding."""


FRAMEWORK_LAYERS = ("conv2d", "linear")
"""Layer kinds whose default initial values :meth:`Backend.framework_initial` draws."""

Loss = Callable[[Tensor, Tensor], Tensor]
"""``loss(Y_hat, Y)``: a scalar written by the core in terms of native tensor operators."""

Step = Callable[[Tensor, Tensor], Any]
"""``step(X, Y)``: one SGD step of a module on a batch; returns the batch's loss before the update.

The loss is a float or a 0-d tensor of the backend (``float(loss)`` reads
it), so that a compiled step need not wait for its result.
"""


class CompileUnavailableError(RuntimeError):
    """A backend cannot compile this training step; the message says why (eager steps still work)."""


_tracing: list[Backend] = []
"""The backend whose compiled step is running, innermost last (see :meth:`Backend.tracing`)."""


def _per_channel(X: Tensor) -> tuple[int, ...]:
    """The shape that broadcasts a value per channel over NCHW or NC ``X``.

    ``(C, 1, 1)``, not ``(1, C, 1, 1)``: the same broadcast, which Paddle's CPU kernels run 40x faster.
    """
    return (X.shape[1], 1, 1) if len(X.shape) == 4 else (X.shape[1],)


class LayerCall:
    """What one call of a module hands its definition besides the parameters: the mode and the state.

    ``training`` is the module's mode (:func:`convlab.nn.set_training`);
    ``state`` its non-trainable tensors by name (batch norm's running
    statistics, dropout's step counter), as the framework holds them. A
    definition that changes its state puts the new values in ``updates``;
    the module writes them back where the framework keeps them, outside
    any gradient, once the definition returns.
    """

    __slots__ = ("state", "training", "updates")

    def __init__(self, training: bool = False, state: Mapping[str, Tensor] | None = None) -> None:
        self.training = training
        self.state: Mapping[str, Tensor] = {} if state is None else state
        self.updates: dict[str, Tensor] = {}

    def __repr__(self) -> str:
        return f"LayerCall(training={self.training}, state={sorted(self.state)})"


@dataclass(frozen=True)
class LayerDef:
    """What a layer is, independent of any framework: its parameters' roles and its forward pass.

    Written once in the core (:mod:`convlab.nn`); :meth:`Backend.module` turns a
    definition into a real module of the framework, whose call runs :meth:`forward`
    on that framework's tensors. Definitions are frozen and compare by value, so a
    framework that compiles the forward pass (``jax.jit``) reuses one compilation
    for every layer of the same kind.
    """

    @property
    def title(self) -> str:
        """The layer's name in summaries: its class name without ``Def``."""
        return type(self).__name__.removesuffix("Def")

    def forward(
        self,
        backend: Backend,
        params: Mapping[str, Tensor],
        X: Tensor,
        children: Sequence[Callable[[Tensor], Tensor]] = (),
        call: LayerCall | None = None,
    ) -> Tensor:
        """The layer's output for input ``X`` given its own parameters and its submodules.

        ``params`` are native tensors of ``backend``; ``children`` are the
        submodules of a container, callable on a tensor (empty for a layer);
        ``call`` carries the module's mode and state (``None``: a layer
        without either, such as a framework's own module, in training mode).
        """
        raise NotImplementedError

    def child_names(self, count: int) -> tuple[str, ...]:
        """The names ``count`` submodules are registered under: ``"0"``, ``"1"``, ... as ``nn.Sequential`` names them.

        A block written with :class:`convlab.nn.Module` names them as its attributes (``"conv1"``).
        """
        return tuple(str(index) for index in range(count))


def shifted_runs(
    x_shape: Pair, k_shape: Pair, rows: int, first: int = 0, stop: int | None = None
) -> tuple[list[int], list[tuple[int, int]]]:
    """The geometry of a shift-and-add on the flattened input, in runs of whole output rows.

    On ``X`` flattened row by row, kernel element ``(a, b)`` meets the
    contiguous slice at offset ``a * width + b``:
    ``Y.flat[p] += K[a, b] * X.flat[p + a * width + b]``, where ``Y`` keeps
    full rows of ``width`` elements (its last ``k_w - 1`` columns are junk,
    cropped at the end). One run covers ``rows`` output rows, so an adapter
    that adds every kernel element to one run before the next keeps the run
    in cache through all its passes, rather than streaming the whole image
    from memory once per element.

    Parameters
    ----------
    x_shape, k_shape : (int, int)
        Shapes of the 2-D input and kernel.
    rows : int
        Output rows per run (at least one).
    first, stop : int
        The output rows covered, ``first`` to ``stop`` (default: all).

    Returns
    -------
    offsets : list of int
        ``a * width + b`` for each kernel element, in row-major order.
    runs : list of (int, int)
        ``(start, length)`` of each run in the flattened output. The last
        row's junk is left out, as it would read past the end of ``X``.
    """
    (k_h, k_w), width = k_shape, x_shape[1]
    out_h, rows = x_shape[0] - k_h + 1, max(1, rows)
    stop = out_h if stop is None else stop
    offsets = [a * width + b for a in range(k_h) for b in range(k_w)]
    runs = []
    for r in range(first, stop, rows):
        n = min(rows, stop - r)
        runs.append((r * width, n * width - (k_w - 1 if r + n == out_h else 0)))
    return offsets, runs


DTYPES = ("float32", "float64")
"""The float dtypes a backend may compute in; float32, the book's, is the default."""


_block: contextvars.ContextVar[Backend | None] = contextvars.ContextVar("convlab_block", default=None)
"""The backend of the innermost :func:`convlab.use_backend` block of this context; the registry sets it."""


class Backend(abc.ABC):
    """One framework behind convlab's API, on one device, in one float dtype.

    The registry makes one instance per backend, device and dtype, from the
    backend's :class:`~convlab.backends.spec.BackendSpec`.
    """

    dtypes: tuple[str, ...] = ("float32",)
    """The float dtypes (of :data:`DTYPES`) this backend can compute in.

    A backend lists ``"float64"`` once :meth:`tensor` and :meth:`module` make
    tensors and parameters in :attr:`dtype`; the registry refuses the others,
    so a backend that knows nothing of dtypes never computes in float32 while
    claiming float64.
    """

    scoped_only: bool = False
    """Whether this instance needs :meth:`scope` entered to work (JAX's float64 needs x64 mode).

    :func:`convlab.set_backend` has no block to enter it in, so it refuses such an instance.
    """

    def __init__(self, spec: BackendSpec, device: str | None = None, dtype: str = "float32") -> None:
        self.spec = spec
        self.device = self.resolve_device(device)
        """Where this backend's tensors live, in the framework's words (``"cpu"``, ``"cuda:0"``)."""
        self.dtype = np.dtype(dtype)
        """The NumPy dtype of the floats this backend computes in: float32 (the default) or float64."""

    @property
    def name(self) -> str:
        """Canonical name used by :func:`convlab.set_backend`."""
        return self.spec.name

    def __repr__(self) -> str:
        precision = "" if self.dtype == np.float32 else f" in {self.dtype}"
        return f"<convlab backend {self.name!r} on {self.device!r}{precision}>"

    @staticmethod
    def innermost_block() -> Backend | None:
        """The backend of the innermost :func:`convlab.use_backend` block of this context (``None`` outside any).

        An adapter whose framework converts a layer's input before convlab's
        forward pass sees it (Keras) asks it which dtype a float64 block wants.
        """
        return _block.get()

    @contextlib.contextmanager
    def block(self) -> Any:
        """Make this backend :meth:`innermost_block` and enter its :meth:`scope`, for the registry's ``with`` block."""
        token = _block.set(self)
        try:
            with self.scope():
                yield self
        finally:
            _block.reset(token)

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """A context that :func:`convlab.use_backend` holds open for its block (default: none).

        A framework whose dtype is a mode of the whole framework rather than
        of its tensors (JAX's x64) switches it on here, for the block only,
        so code elsewhere that expects float32 keeps it.
        """
        return contextlib.nullcontext()

    @staticmethod
    def traced() -> Backend | None:
        """The backend whose compiled step is running (``None`` when none is).

        :func:`convlab.get_backend` answers with it: a compiler that traces
        Python bytecode (TorchDynamo, Paddle's SOT) cannot read the context
        variable behind :func:`convlab.use_backend`, and would split the step
        at every layer that asks which backend is active.
        """
        return _tracing[-1] if _tracing else None

    @contextlib.contextmanager
    def tracing(self) -> Any:
        """Make this backend :meth:`traced` and enter its block, for one call of a compiled step.

        Unlike :func:`convlab.use_backend`, this is process-wide for the
        call's duration; a compiled step runs one at a time.
        """
        _tracing.append(self)
        try:
            with self.block():
                yield self
        finally:
            _tracing.pop()

    # -- core: facts -------------------------------------------------------
    @abc.abstractmethod
    def version(self) -> str:
        """The framework's version string."""

    def resolve_device(self, device: str | None) -> str:
        """The device to use for ``device`` (``None``: the framework's default); ``ValueError`` if unknown."""
        if device not in (None, "cpu"):
            raise ValueError(f"device: the {self.spec.name} backend computes on 'cpu' only, got {device!r}")
        return "cpu"

    # -- core: tensors -----------------------------------------------------
    @property
    @abc.abstractmethod
    def tensor_types(self) -> tuple[type, ...]:
        """Types recognised as native tensors of this backend."""

    @abc.abstractmethod
    def tensor(self, data: np.ndarray | Tensor) -> Tensor:
        """A native tensor of :attr:`dtype` on :attr:`device` from a NumPy array or a native tensor.

        A native tensor already of that dtype and device is returned as it is
        (so parameters keep their graph); a cast keeps the gradient where the
        framework tracks one.
        """

    @abc.abstractmethod
    def to_numpy(self, x: Tensor) -> np.ndarray:
        """A NumPy copy (or view) of a native tensor."""

    def labels(self, data: np.ndarray) -> Tensor:
        """Integer class labels (a 1-D int64 NumPy array) as the framework's usual label tensor, on :attr:`device`.

        The default keeps the NumPy array, which suits a framework without
        tensors of its own.
        """
        return np.asarray(data, dtype=np.int64)

    def one_hot(self, labels: Tensor, classes: int) -> Tensor:
        """Rows of ``classes`` zeros (in :attr:`dtype`) with a one at each label of ``labels`` (from :meth:`labels`).

        The training loop's targets: made where the labels are, so a step sends nothing back and forth.
        The default goes through NumPy, which suits a framework without tensors of its own.
        """
        return self.tensor(np.eye(classes, dtype=np.float32)[np.asarray(self.to_numpy(labels))])

    def is_real(self, x: Tensor) -> bool:
        """Whether a native tensor holds real numbers (an int or float dtype, not bool or complex)."""
        return np.dtype(x.dtype).kind in "iuf"

    # -- nn: the batched primitives ----------------------------------------
    @abc.abstractmethod
    def conv2d(
        self, x: Tensor, w: Tensor, stride: Pair, padding: Padding, groups: int, bias: Tensor | None = None
    ) -> Tensor:
        """Cross-correlation of an NCHW ``x`` with OIHW weights ``w``, as every framework's conv.

        ``x`` is zero-padded by ``padding`` (top, bottom, left, right); the
        window moves by ``stride``; with ``groups`` g, input channels
        ``[i C/g, (i + 1) C/g)`` feed output channels ``[i O/g, (i + 1) O/g)``.
        ``bias`` (``(O,)``), when given, is added to each output channel, in
        the same call where the framework fuses it (as its conv layer does).
        """

    @abc.abstractmethod
    def pool2d(self, x: Tensor, window: Pair, stride: Pair, padding: Padding, mode: str) -> Tensor:
        """Max (``mode="max"``) or average (``"avg"``) pooling of each channel of an NCHW ``x``.

        Max pooling pads with ``-inf``, so padding never wins; average pooling
        pads with zeros and divides by the whole window, padding included
        (PyTorch's default).
        """

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        """``x`` with a new shape (a view where the framework can)."""
        return x.reshape(shape)

    def flip(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        """``x`` reversed along ``axes``."""
        index = [slice(None)] * len(x.shape)
        for axis in axes:
            index[axis] = slice(None, None, -1)
        return x[tuple(index)]

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        """Matrix product."""
        return a @ b

    def linear(self, x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
        """``x @ w.T + bias``: ``x`` ``(N, in)``, ``w`` ``(out, in)`` (PyTorch's layout), ``bias`` ``(out,)``."""
        y = self.matmul(x, w.T)
        return y if bias is None else y + bias

    @abc.abstractmethod
    def sigmoid(self, x: Tensor) -> Tensor:
        """``1 / (1 + exp(-x))``, elementwise."""

    @abc.abstractmethod
    def relu(self, x: Tensor) -> Tensor:
        """``max(x, 0)``, elementwise."""

    @abc.abstractmethod
    def log_softmax(self, x: Tensor, axis: int = -1) -> Tensor:
        """``x - logsumexp(x)`` along ``axis``, computed stably."""

    @abc.abstractmethod
    def concat(self, tensors: Sequence[Tensor], axis: int) -> Tensor:
        """The tensors joined along ``axis`` (the core has checked that the other dimensions agree)."""

    def sqrt(self, x: Tensor) -> Tensor:
        """The square root, elementwise."""
        return x**0.5

    def batch_norm(self, X: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
        """Training-mode batch normalisation of ``X`` (NCHW or NC) per channel, axis 1: ``(Y, mean, variance)``.

        ``Y = weight (X - mean) / sqrt(variance + eps) + bias``, with the
        batch's mean and *biased* variance over every axis but 1; ``weight``
        and ``bias`` have one value per channel. ``mean`` and ``variance``
        are returned for the running statistics, which no gradient flows
        through. The core has checked the shapes. The default composes
        primitives; a framework whose own batch-norm layer runs a fused
        kernel (one pass forward, one backward) overrides this to call it.
        """
        axes = (0, 2, 3) if len(X.shape) == 4 else (0,)
        mean = self.mean(X, axes)
        centered = X - self.reshape(mean, _per_channel(X))
        variance = self.mean(centered * centered, axes)
        return self.normalize(X, mean, variance, weight, bias, eps, centered), mean, variance

    def normalize(
        self,
        X: Tensor,
        mean: Tensor,
        variance: Tensor,
        weight: Tensor,
        bias: Tensor,
        eps: float,
        centered: Tensor | None = None,
    ) -> Tensor:
        """``(X - mean) * weight / sqrt(variance + eps) + bias``, each a value per channel (axis 1) of NCHW or NC ``X``.

        Batch norm in evaluation mode, with the running statistics; :meth:`batch_norm`'s default, with the batch's.
        ``centered``, ``X - mean`` where the caller has it, is used as it is: one node for autograd, whose
        gradient then sums in the order the recorded runs were computed in.
        """
        per_channel = _per_channel(X)
        if centered is None:
            centered = X - self.reshape(mean, per_channel)
        scale = self.reshape(weight, per_channel) / self.sqrt(self.reshape(variance, per_channel) + eps)
        return centered * scale + self.reshape(bias, per_channel)

    def from_host(self, function: Callable[..., np.ndarray], shape: tuple[int, ...], *args: Tensor) -> Tensor:
        """``function(*args)`` computed by NumPy on the host, as a tensor of :attr:`dtype` and ``shape``.

        ``args`` are tensors of this backend, handed to ``function`` as NumPy
        arrays; its values must be exact in float32 (the core's are ones and
        zeros). The core draws seeded dropout masks this way, so every
        backend drops the same units. A framework that traces the forward
        pass into a compiled function (``jax.jit``) overrides this with its
        host callback, so the function runs at every call, not once while
        tracing.
        """
        return self.tensor(function(*(np.asarray(self.to_numpy(a)) for a in args)))

    def dropout_mask(self, shape: tuple[int, ...], p: float, counter: Tensor) -> Tensor:
        """A mask of ``shape`` from the framework's own generator: 0 with probability ``p``, else ``1/(1-p)``.

        ``counter`` counts the training calls of the dropout layer that asks
        (a scalar tensor); a framework whose randomness is explicit (JAX)
        derives its key from it, the others ignore it. The default draws from
        a NumPy generator seeded by the operating system, for a framework
        without a generator of its own.
        """

        def draw() -> np.ndarray:
            return ((np.random.default_rng().random(shape) >= p) / (1.0 - p)).astype(self.dtype)

        return self.from_host(draw, shape)

    def sum(self, x: Tensor, axis: int | None = None) -> Tensor:
        """Sum along ``axis`` (all elements when ``None``), as a native tensor."""
        return x.sum() if axis is None else x.sum(axis)

    def mean(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        """Mean along ``axis`` (an int or a tuple of them; all elements when ``None``), as a native tensor."""
        return x.mean() if axis is None else x.mean(axis)

    def argmax(self, x: Tensor, axis: int = -1) -> Tensor:
        """Index of the largest element along ``axis``."""
        return x.argmax(axis)

    # -- chapter: the book's loop and two speed hooks ----------------------
    @abc.abstractmethod
    def corr2d_loop(self, X: Tensor, K: Tensor) -> Tensor:
        """The book's double loop over output pixels (2-D, valid), written as the book's tab writes it."""

    def corr2d_vectorized(self, X: Tensor, K: Tensor) -> Tensor:
        """Shift-and-add (2-D, valid): one scaled, shifted view of ``X`` per kernel element.

        Uses only slicing, ``*`` and ``+``, so it is differentiable wherever
        the framework's operators are, and it keeps one output-sized
        accumulator (plus one output-sized temporary) beside the input. An
        adapter may override it with a faster equivalent.
        """
        h, w = K.shape
        out_h, out_w = X.shape[0] - h + 1, X.shape[1] - w + 1
        Y = X[0:out_h, 0:out_w] * K[0, 0]
        for a in range(h):
            for b in range(w):
                if a or b:
                    Y = Y + X[a : a + out_h, b : b + out_w] * K[a, b]
        return Y

    def auto_method(self, x_shape: Pair, k_shape: Pair) -> str:
        """Which of ``"vectorized"`` / ``"native"`` ``corr2d(method="auto")`` uses for these 2-D shapes."""
        return "vectorized"

    def corr2d_bands(self, x_shape: Pair, k_shape: Pair) -> int:
        """Into how many bands of rows ``corr2d(method="native")`` cuts a 2-D input, for these shapes.

        The bands become the channels of one depthwise convolution, which a
        framework's CPU kernels vectorise across channels; 1, the default,
        calls the framework's convolution on the one-channel image as it is.
        """
        return 1

    # -- modules and training ----------------------------------------------
    @abc.abstractmethod
    def module(
        self,
        definition: LayerDef,
        initial: Mapping[str, np.ndarray],
        children: tuple[Any, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> Any:
        """A module of the framework (``nn.Module``, Keras ``Layer``, NNX ``Module``, Gluon ``Block``).

        It holds one trainable parameter per entry of ``initial`` (name ->
        initial value, in the core's layout), registered so that the
        framework's own optimisers see it; one non-trainable tensor per entry
        of ``state``, as the framework keeps such tensors (a buffer, a
        non-trainable weight, a batch statistic), so no optimiser touches it;
        and the modules ``children`` (made by this backend's :meth:`module`)
        as its submodules, in order, registered under
        ``definition.child_names(len(children))``, so that their parameters
        are the module's too. It has a ``training`` attribute, ``True`` when
        made (PyTorch's default), which :meth:`set_training` changes.

        Calling it on ``X`` returns ``definition.forward(self_backend, params,
        X, children, call)`` with ``params`` its own parameters by name, as
        tensors that the framework's autograd tracks, ``children`` the
        submodules, callable, and ``call`` a :class:`LayerCall` of its mode and
        state; the module then writes each of ``call.updates`` into its state,
        outside any gradient. The module keeps ``definition`` and ``backend``
        (this backend) as attributes of those names.
        """

    @abc.abstractmethod
    def submodules(self, module: Any) -> tuple[Any, ...]:
        """The ``children`` a module made by :meth:`module` holds, in order (empty for a layer)."""

    @abc.abstractmethod
    def state(self, module: Any) -> dict[str, Tensor]:
        """The module's non-trainable state by name, live, named as :meth:`parameters` names parameters.

        ``"running_mean"`` of a batch-norm layer; ``"1.running_var"`` of the
        second submodule's. Empty for a module without state.
        """

    def set_training(self, module: Any, training: bool) -> None:
        """Put ``module`` and its submodules in training (``True``) or evaluation mode.

        The default sets each one's ``training`` attribute, which the module
        passes to its definition; a framework with its own mode switch
        (``nn.Module.train``) overrides this to use it.
        """
        module.training = training
        for child in self.submodules(module):
            self.set_training(child, training)

    @abc.abstractmethod
    def framework_initial(self, kind: str, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        """Initial values by the framework's own default initialisers for a layer ``kind`` (:data:`FRAMEWORK_LAYERS`).

        ``shapes`` gives each parameter's shape in the core's layout
        (``"weight"``: OIHW for ``"conv2d"``, ``(out, in)`` for ``"linear"``;
        ``"bias"``: ``(out,)``, absent without a bias). The values are those a
        new layer of the framework's own class of that shape starts from
        (``torch.nn.Conv2d``, ``keras.layers.Dense``...), in the core's layout.
        A backend without layers of its own draws what PyTorch's would.
        """

    @abc.abstractmethod
    def builtin_conv2d(self, kernel_size: Pair, weight: np.ndarray | None) -> Any:
        """The framework's own conv layer: one channel in and out, no bias, on one NCHW image of one channel.

        Its input is ``(1, 1, H, W)`` and its output ``(1, 1, H - k_h + 1,
        W - k_w + 1)``: :func:`~convlab.train.kernel.train_kernel` reshapes the
        chapter's 2-D image and target once, before its loop, as the book's
        tabs do. A framework whose layer is NHWC transposes around it.

        ``weight`` (``kernel_size``) is the initial kernel; ``None`` keeps the
        framework's own initialiser.
        """

    @abc.abstractmethod
    def book_initial_kernel(self, kernel_size: Pair) -> np.ndarray:
        """A kernel drawn by the initialiser the book's tab for this framework uses.

        The hand-written layer's ``init="framework"`` starts from it; it is
        not :meth:`framework_initial`, the defaults of the framework's own
        layer classes.
        """

    @abc.abstractmethod
    def parameters(self, module: Any) -> dict[str, Tensor]:
        """The module's trainable parameters by name, live, in the framework's layout.

        A module's own parameters keep their names (``"weight"``, ``"bias"``);
        those of its ``i``-th submodule are prefixed ``"i."``, recursively
        (``"0.weight"``, ``"3.1.bias"``), as PyTorch names them.
        """

    @abc.abstractmethod
    def value_and_grad(self, module: Any, X: Tensor, Y: Tensor, loss: Loss) -> tuple[float, dict[str, Tensor | None]]:
        """``loss(module(X), Y)`` and its gradient w.r.t. each parameter, by the framework's autograd.

        A gradient the framework reports as missing is ``None``; errors the
        framework raises while differentiating propagate unchanged. ``loss``
        compares equal for equal losses, so a compiled step can be reused.
        """

    def predict(self, module: Any, X: Tensor) -> Tensor:
        """``module(X)`` for evaluation, without recording anything for gradients (``torch.no_grad()``)."""
        return module(X)

    @abc.abstractmethod
    def sgd_update(self, module: Any, grads: Mapping[str, Tensor], lr: float) -> None:
        """``param -= lr * grad`` for every parameter of ``module``, in place."""

    def train_step(self, module: Any, loss: Loss, lr: float) -> Step:
        """An eager SGD step of ``module``: :meth:`value_and_grad`, then :meth:`sgd_update`."""

        def step(X: Tensor, Y: Tensor) -> float:
            value, grads = self.value_and_grad(module, X, Y, loss)
            self.sgd_update(module, grads, lr)
            return value

        return step

    compile_break_even_steps: int | None = None
    """Steps after which a compiled LeNet step has repaid its compilation (``None``: it never does, or none exists).

    ``cl.train_classifier(compile="auto")`` compiles a run at least this
    long; ``convlab bench`` measures the compile time and the time a step
    saves, from which the figure comes.
    """

    def compiled_train_step(self, module: Any, loss: Loss, lr: float) -> Step:
        """:meth:`train_step` compiled whole (forward, loss, backward, update) by the framework's own compiler.

        The result computes what :meth:`train_step` does, to float rounding,
        and leaves the module's parameters and state as that would. A
        framework may compile lazily, at the first call: that call can then
        raise what the compiler raises. The default has no compiler.

        Raises
        ------
        CompileUnavailableError
            Where the backend or this module cannot be compiled, with the reason.
        """
        raise CompileUnavailableError(f"the {self.name} backend has no compiled training step")

    def compiled_predict(self, module: Any) -> Callable[[Tensor], Tensor]:
        """:meth:`predict` of ``module`` in evaluation mode, compiled by the framework's own compiler.

        For a run whose steps are compiled, evaluation then costs as little
        per batch. The module's mode at the first call is the one compiled:
        call it only with the module in evaluation mode, as
        :func:`convlab.accuracy` does. The default has no compiler.

        Raises
        ------
        CompileUnavailableError
            Where the backend or this module cannot be compiled, with the reason.
        """
        raise CompileUnavailableError(f"the {self.name} backend has no compiled prediction")

    @abc.abstractmethod
    def grad(self, f: Callable[..., Tensor], *inputs: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        """``f(*inputs)`` (a scalar) and its gradient w.r.t. each input, as NumPy arrays (``None``: no gradient).

        The inputs become tensors of this backend, in the inputs' own float
        dtype where the framework has it; :func:`convlab.gradcheck` uses this.
        """

    def synchronize(self, y: Tensor) -> Tensor:
        """Wait until ``y`` is computed, at (almost) no cost, and return it (asynchronous frameworks override)."""
        return y
