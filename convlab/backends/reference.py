"""What a backend may add beside its adapter: the book's code and the framework's idiomatic code, run as written.

The core never calls any of it. ``convlab bench`` times convlab against these
functions, and :func:`convlab.shape_report` sets each book tab beside convlab's
answer. A backend's :class:`~convlab.backends.spec.BackendSpec` names its
reference module (``reference="convlab.backends.torch.reference"``); that module
defines any of the functions of :class:`ReferenceModule`, as module-level
functions that take the backend first. :func:`load_reference` imports it and
:func:`reference_function` picks one function out, ``None`` where the backend
has no reference module or its module lacks that function: the reports then
say :data:`NOT_PROVIDED`.

A built-in backend's reference module also keeps the facts about that
framework which the test suites check convlab against, beside the code they
describe:

* ``AUTOGRAD_OUTCOME``: ``(outcome, text)``, what
  :func:`convlab.autograd_exercise` reports for the book's loop layer on that
  framework (``"gradient"``, ``"no gradient"`` or ``"error"``), and a text its
  detail contains;
* ``BOOK_TAB_SHAPES``: the 7.3 tabs whose output shape is not convlab's, by
  example: the ``(height, width)`` the tab gives on the book's 8x8 input;
* ``BOOK_TAB_ZERO_PADDING``: the 7.5 tabs that pad zeros themselves and then
  pool without padding, by example: the ``(top, bottom, left, right)`` zeros
  they pad. A pooling tab not listed pads as convlab does (``-inf``, on the
  sides the example says), so its results are convlab's.

and, for chapter 8 (:func:`convlab.modern_report`):

* ``BATCH_NORM_MOMENTUM``: the momentum, in convlab's (PyTorch's)
  convention, the weight of the batch's statistics, that reproduces the
  running mean of the framework's batch norm at its defaults (Keras' 0.99,
  the old value's weight, is 0.01);
* ``BATCH_NORM_RUNNING_VAR``: ``"unbiased"`` or ``"biased"``, which of the
  batch's variances the framework's running variance averages (convlab's,
  as PyTorch's, the unbiased one);
* ``BOOK_STEM_POOL_PADDING``: the padding of the book's stem max pooling
  (window 3, stride 2): ``(top, bottom, left, right)`` never picked by the
  maximum, or ``"same"`` (TensorFlow's, which pads ``(0, 1)`` on an even
  size and ``(1, 1)`` on an odd one).

This module imports no framework; a reference module imports its own.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from convlab.backends.base import Backend, Pair
from convlab.backends.spec import BackendSpec


@dataclass(frozen=True)
class BookTab:
    """What one of the book's framework tabs computes for an example, by running the tab's own calls."""

    output: np.ndarray
    """The tab's result, as NCHW (a framework that computes NHWC is transposed back)."""
    code: str
    """The tab's call, as the book writes it."""
    note: str = ""
    """Why the tab's result can differ from convlab's (empty where it computes the same thing)."""


@dataclass(frozen=True)
class FrameworkRun:
    """What a framework's own layer computes at the framework's defaults, by running it."""

    outputs: Mapping[str, np.ndarray]
    """What was measured, by name (``"running_mean"``, ``"training"``...), as NumPy arrays."""
    code: str
    """The layer as the framework's users make it, and how it was called."""
    note: str = ""
    """What the framework does (its conventions), as the run showed it."""


BOOK_EXAMPLES = (
    "conv 3, padding 1",
    "conv (5, 3), padding (2, 1)",
    "conv 3, padding 1, stride 2",
    "conv (3, 5), padding (0, 1), stride (3, 4)",
    "max-pool 3",
    "max-pool 3, padding 1, stride 2",
    "max-pool (2, 3), padding (0, 1), stride (2, 3)",
)
"""The examples of d2l 7.3 (a one-channel conv layer on an 8x8 input) and 7.5 (max pooling), by name."""

NOT_PROVIDED = "not provided"
"""What the benchmark's tables and the shape report show where a backend's reference module has no such function."""


class ReferenceModule(Protocol):
    """The functions a backend's reference module may define, each optional, each taking the backend first.

    A module defines those its framework has (NumPy, with no layers and no
    book tab, defines only :meth:`book_train_kernel`). Each is a plain
    module-level function: ``book_tab(backend, example, X)``. A module whose
    idiomatic training steps are compiled whole, as a framework's users
    write them (JAX's ``nnx.jit``), sets ``IDIOMATIC_STEP_COMPILED = True``:
    the benchmark then holds convlab's compiled step to them, not to an
    eager step.
    """

    def book_train_kernel(
        self, backend: Backend, X: np.ndarray, Y: np.ndarray, kernel_size: Pair, lr: float, num_epochs: int
    ) -> list[float]:
        """The book's kernel-training loop as this framework's tab writes it, from a zero kernel; its losses.

        Parameters
        ----------
        backend : Backend
            The backend whose device the loop runs on.
        X, Y : numpy.ndarray
            The image and the map the kernel should make of it (2-D, float32).
        kernel_size : tuple of int
            The kernel's ``(height, width)``.
        lr : float
            The learning rate.
        num_epochs : int
            Iterations of the loop.

        Returns
        -------
        list of float
            The loss of each iteration. ``convlab bench`` times
            ``train_kernel`` against this loop.
        """

    def book_tab(self, backend: Backend, example: str, X: np.ndarray) -> BookTab | None:
        """The book's tab for this framework on one of :data:`BOOK_EXAMPLES`, run on ``X`` (NCHW float32).

        It makes the layer or the padding and pooling calls exactly
        as the tab writes them (``tf.pad`` then ``MaxPool2D(padding="valid")``
        where the tab does that), on ``X`` in the framework's layout; a conv
        layer keeps its random initial weights, as in the book, so only its
        output shape is meaningful.

        Returns
        -------
        BookTab or None
            What the tab computed, its code and why it differs from convlab
            where it can; ``None``: the book has no tab for this example (a
            framework without any, as NumPy, leaves the function out). Not
            used by convlab's own computations: :func:`convlab.shape_report`
            sets it beside them.
        """

    def book_stem_pool(self, backend: Backend, X: np.ndarray) -> BookTab | None:
        """The max pooling of d2l's stems (GoogLeNet, ResNet, DenseNet: window 3, stride 2) as the tab writes it.

        PyTorch's tab writes ``nn.MaxPool2d(kernel_size=3, stride=2,
        padding=1)``, TensorFlow's ``MaxPool2D(pool_size=3, strides=2,
        padding='same')``; it runs on ``X`` (NCHW float32) in the framework's
        layout.

        Returns
        -------
        BookTab or None
            The pooled ``X`` (NCHW) and the tab's call; ``None``: the book has
            no such tab.
        """

    def framework_batch_norm(self, backend: Backend, batches: Sequence[np.ndarray]) -> FrameworkRun | None:
        """The framework's own 2-D batch norm at its defaults, trained one step on each of ``batches``.

        A step does to the layer what a training step does: a forward pass in
        training mode, and the backward pass where the framework moves its
        running statistics only then (Gluon).

        Parameters
        ----------
        batches : sequence of numpy.ndarray
            NCHW float32 batches with the same channels, converted to the
            framework's default layout.

        Returns
        -------
        FrameworkRun or None
            Outputs ``running_mean`` and ``running_var``, each ``(steps, C)``:
            the running statistics after each step; the note says the
            framework's momentum and which variance it averages. ``None``: the
            framework has no batch norm layer.
        """

    def framework_dropout(self, backend: Backend, X: np.ndarray, p: float) -> FrameworkRun | None:
        """The framework's own dropout layer with drop probability ``p``, at its other defaults, on ``X`` (float32).

        Returns
        -------
        FrameworkRun or None
            Outputs ``training`` (one call in training mode) and
            ``evaluation`` (one call in evaluation mode), shaped as ``X``.
            ``None``: the framework has no dropout layer.
        """

    def framework_conv2d_step(
        self, backend: Backend, in_channels: int, out_channels: int, kernel_size: int, padding: int, x: np.ndarray
    ) -> Callable[[], Any] | None:
        """One forward and backward pass of the framework's own conv layer, as its users write it.

        The layer (``torch.nn.Conv2d``, ``keras.layers.Conv2D``...) has a bias
        and the framework's defaults; ``x`` (NCHW) is converted once, to the
        framework's own default layout, before the closure is returned.

        Returns
        -------
        callable or None
            A call differentiates ``sum(layer(x))`` with respect to the
            layer's parameters and waits for the result; ``None``: the
            framework has no conv layer. ``convlab bench`` times
            ``cl.nn.Conv2d`` against it.
        """

    def idiomatic_lenet_step(
        self, backend: Backend, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
    ) -> Callable[[], float] | None:
        """One SGD step of d2l's LeNet written the framework's own idiomatic way.

        The network starts from ``weights`` (``cl.parameters`` of
        ``cl.models.lenet()``: dotted names, the core's layouts); ``X``
        (NCHW float32) and ``y`` (int labels) are converted once, to the
        framework's default layout.

        Returns
        -------
        callable or None
            A call trains one step on that batch and returns its loss, as a
            float; ``None``: the framework has no idiomatic LeNet.
            ``convlab bench`` times ``train_classifier``'s step against it.
        """

    def idiomatic_modern_step(
        self, backend: Backend, model: str, weights: Mapping[str, np.ndarray], lr: float, X: np.ndarray, y: np.ndarray
    ) -> Callable[[], float] | None:
        """One SGD step of one of d2l §8's networks written the framework's own idiomatic way.

        ``model`` names a function of :mod:`convlab.models`: ``"bn_lenet"``
        (the book's size, 28x28) or a mini network (``"alexnet"``, ``"vgg"``,
        ``"nin"``, ``"googlenet"``, ``"resnet18"``, ``"densenet"`` at
        ``size="mini"``). The network is built from the framework's own layers
        and blocks as the book's tab for that framework writes them, in
        training mode (batch norm on the batch's statistics, the framework's
        own dropout), and starts from ``weights`` (``cl.parameters`` of the
        convlab model: dotted names, the core's layouts). ``X`` (NCHW
        float32) and ``y`` (int labels) are converted once, to the
        framework's default layout.

        Returns
        -------
        callable or None
            A call trains one step on that batch (mean softmax cross-entropy,
            plain SGD at ``lr``) and returns its loss, as a float; ``None``:
            the framework has no idiomatic copy of ``model``. ``convlab
            bench`` times ``train_classifier``'s step against it.
        """


REFERENCE_FUNCTIONS = (
    "book_train_kernel",
    "book_tab",
    "book_stem_pool",
    "framework_batch_norm",
    "framework_dropout",
    "framework_conv2d_step",
    "idiomatic_lenet_step",
    "idiomatic_modern_step",
)
"""The names of :class:`ReferenceModule`'s functions, which :func:`reference_function` looks up."""


def load_reference(spec_or_backend: BackendSpec | Backend) -> ModuleType | None:
    """The reference module a backend's spec names, imported; ``None`` where the spec names none.

    Parameters
    ----------
    spec_or_backend : BackendSpec or Backend
        The backend, or its spec. The module imports the framework: call this
        once the registry has loaded the backend, so that its rules on the
        order of framework imports have run.

    Returns
    -------
    module or None
        The module (see :class:`ReferenceModule`), or ``None`` for a backend
        without one (a third-party backend need not have one).
    """
    spec = spec_or_backend if isinstance(spec_or_backend, BackendSpec) else spec_or_backend.spec
    return None if spec.reference is None else importlib.import_module(spec.reference)


def reference_function(backend: Backend, name: str) -> Callable[..., Any] | None:
    """``name``, one of :data:`REFERENCE_FUNCTIONS`, from ``backend``'s reference module, with ``backend`` bound.

    Returns
    -------
    callable or None
        ``functools.partial(function, backend)``, called with the function's
        other arguments; ``None`` where the backend has no reference module or
        its module does not define ``name``: a report says :data:`NOT_PROVIDED`.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`REFERENCE_FUNCTIONS`.
    """
    if name not in REFERENCE_FUNCTIONS:
        raise ValueError(f"name: expected one of {', '.join(map(repr, REFERENCE_FUNCTIONS))}, got {name!r}")
    function = getattr(load_reference(backend), name, None)
    return None if function is None else functools.partial(function, backend)
