"""Training and inspecting an image classifier, as d2l §7.6 does with LeNet: one loop for every backend."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import numpy as np

from convlab._api import export
from convlab.core.checks import check_positive
from convlab.core.convert import to_numpy
from convlab.core.registry import use_backend
from convlab.nn.layers import module_backend
from convlab.nn.losses import SoftmaxCrossEntropy
from convlab.nn.modes import evaluating, set_training
from convlab.train.records import ClassifierResult
from convlab.train.steps import Prediction, TrainingStep, check_compile, wants_compiled


@export
def layer_summary(model: Any, input_shape: tuple[int, ...] = (1, 1, 28, 28), verbose: bool = True) -> list[tuple]:
    """Each layer's name and output shape for a zero input of ``input_shape``, as the book's ``layer_summary``.

    The rows are the same on every backend (the frameworks' own summaries
    differ: Keras hides activations, JAX prints ``PjitFunction``).

    Parameters
    ----------
    model : module
        A ``cl.nn.Sequential`` (its layers are listed) or any convlab layer.
    input_shape : tuple of int
        NCHW shape of the input.
    verbose : bool
        Print the rows, one per layer, as the book does.

    Returns
    -------
    list of (str, tuple of int)
        ``(layer name, output shape)`` per layer.

    Examples
    --------
    >>> import convlab as cl
    >>> rows = cl.layer_summary(cl.models.lenet(seed=0))  # doctest: +NORMALIZE_WHITESPACE
    Conv2d output shape:     (1, 6, 28, 28)
    Sigmoid output shape:    (1, 6, 28, 28)
    AvgPool2d output shape:  (1, 6, 14, 14)
    Conv2d output shape:     (1, 16, 10, 10)
    Sigmoid output shape:    (1, 16, 10, 10)
    AvgPool2d output shape:  (1, 16, 5, 5)
    Flatten output shape:    (1, 400)
    Linear output shape:     (1, 120)
    Sigmoid output shape:    (1, 120)
    Linear output shape:     (1, 84)
    Sigmoid output shape:    (1, 84)
    Linear output shape:     (1, 10)
    """
    backend = module_backend(model, "model")
    shape = tuple(int(check_positive(n, "input_shape", integer=True)) for n in input_shape)
    X = backend.tensor(np.zeros(shape, dtype=np.float32))
    layers = backend.submodules(model) or (model,)
    rows = []
    with evaluating(model):  # a batch of one: batch norm in training mode would have no variance
        for layer in layers:
            X = backend.predict(layer, X)
            rows.append((layer.definition.title, tuple(int(n) for n in X.shape)))
    if verbose:
        width = max(len(name) for name, _ in rows) + len(" output shape:")
        for name, out in rows:
            print(f"{name + ' output shape:':<{width}} {out}")
    return rows


TRAIN_ACC_BATCHES = 80
"""Training batches kept for :attr:`ClassifierResult.train_acc` (80 x 128: about 10,000 images)."""


def accuracy(
    model: Any,
    batches: Iterable[tuple[Any, Any]],
    max_batches: int | None = None,
    predict: Callable[[Any], Any] | None = None,
) -> float:
    """The fraction of examples whose largest logit is the label, over ``batches`` (at most ``max_batches``).

    ``predict(X)`` gives the logits, with the model in evaluation mode
    (default: the backend's eager :meth:`~convlab.backends.base.Backend.predict`).
    """
    backend = module_backend(model, "model")
    if predict is None:
        predict = partial(backend.predict, model)
    correct = total = 0
    with evaluating(model):  # batch norm's running statistics, no dropout: what the model has learnt
        for index, (X, y) in enumerate(batches):
            if max_batches is not None and index >= max_batches:
                break
            predicted = to_numpy(backend.argmax(predict(X), axis=1))
            labels = to_numpy(y)
            correct += int((predicted == labels).sum())
            total += len(labels)
    return correct / total if total else float("nan")


def _progress(total: int | None, verbose: bool, backend: str) -> Any:
    from tqdm.auto import tqdm  # notebook-aware: a widget in Jupyter, text in a terminal

    return tqdm(total=total, disable=not verbose, desc=f"training on {backend}", unit="step", leave=False)


@export
def train_classifier(
    model: Any,
    data: Any,
    num_epochs: int = 10,
    lr: float = 0.1,
    *,
    max_batches: int | None = None,
    verbose: bool = True,
    compile: bool | str = "auto",
) -> ClassifierResult:
    """Minibatch SGD on the mean softmax cross-entropy, as the book's ``Trainer`` fits a classifier.

    The model trains on its own backend with that framework's autograd
    (:meth:`~convlab.backends.base.Backend.value_and_grad`), in the order
    ``data`` gives, which for :class:`convlab.data.FashionMNIST` is the same
    on every backend.

    Parameters
    ----------
    model : module
        A convlab model (``cl.models.lenet()``) that returns logits.
    data
        Has ``train_dataloader()`` and ``val_dataloader()`` yielding ``(X, y)``
        (NCHW images, integer labels), as :class:`convlab.data.FashionMNIST`.
    num_epochs : int
        Passes over the training data.
    lr : float
        Learning rate.
    max_batches : int, optional
        At most this many batches per epoch, for training and for each
        accuracy (quick runs and CI, as d2l-java's ``DATASET_LIMIT``).
    verbose : bool
        Show a progress bar (notebook-aware) and a line per epoch.
    compile : {"auto", True, False}
        Run each step compiled whole (forward, loss, backward and update) by
        the framework's own compiler: ``torch.compile``, ``tf.function``
        with XLA, ``jax.jit``... (:meth:`~convlab.backends.base.Backend.compiled_train_step`);
        NumPy, without a compiler, runs its eager step in memory reused from
        step to step, the same losses bit for bit.
        ``"auto"`` compiles where the run is long enough for the compile
        time to pay (:attr:`~convlab.backends.base.Backend.compile_break_even_steps`);
        a step that cannot compile runs eagerly and says why, once. The
        losses agree with eager steps to float rounding.

    Returns
    -------
    ClassifierResult
        Its ``metadata["compiled"]`` says whether the steps ran compiled.
    """
    backend = module_backend(model, "model")
    epochs = int(check_positive(num_epochs, "num_epochs", integer=True))
    lr = float(check_positive(lr, "lr"))
    limit = None if max_batches is None else int(check_positive(max_batches, "max_batches", integer=True))
    compile = check_compile(compile)
    loss = SoftmaxCrossEntropy(backend)
    result = ClassifierResult([], [], [], [], 0.0, backend.name, model)
    steps_per_epoch = _steps(data, limit)
    total_steps = None if steps_per_epoch is None else steps_per_epoch * epochs
    step = TrainingStep(backend, model, loss, lr, wants_compiled(backend, compile, total_steps))
    predict = Prediction(backend, model, step.compiled)
    classes = model_classes(model)
    seen, training_time = 0, 0.0
    progress = _progress(None if steps_per_epoch is None else steps_per_epoch * epochs, verbose, backend.name)
    # The model's backend is active throughout, so that the data's batches are its tensors.
    with use_backend(backend.name, device=backend.device, dtype=backend.dtype.name), progress as bar:
        for epoch in range(epochs):
            set_training(model, True)
            losses: list[Any] = []  # read once the epoch ends: a compiled step need not wait for its loss
            visited: deque = deque(maxlen=TRAIN_ACC_BATCHES)
            start = time.perf_counter()
            for index, (X, y) in enumerate(data.train_dataloader()):
                if limit is not None and index >= limit:
                    break
                if not isinstance(y, backend.tensor_types):  # labels given as a list or NumPy: once, to the device
                    y = backend.labels(np.asarray(to_numpy(y), dtype=np.int64))
                Y = backend.one_hot(y, classes)  # on the labels' device: nothing comes back to NumPy
                losses.append(step(X, Y))
                seen += int(y.shape[0])
                visited.append((X, y))
                bar.update(1)
            epoch_losses = [float(value) for value in losses]
            training_time += time.perf_counter() - start
            result.step_losses.extend(epoch_losses)
            result.train_loss.append(float(np.mean(epoch_losses)))
            result.train_acc.append(accuracy(model, visited, predict=predict))
            result.val_acc.append(accuracy(model, data.val_dataloader(), limit, predict))
            if verbose:
                bar.write(
                    f"epoch {epoch + 1}: train loss {result.train_loss[-1]:.3f}, "
                    f"train acc {result.train_acc[-1]:.3f}, val acc {result.val_acc[-1]:.3f}"
                )
    result.examples_per_sec = seen / training_time if training_time else float("nan")
    result.metadata["compiled"] = step.compiled
    return result


def model_classes(model: Any) -> int:
    """The number of logits: the last layer's output features."""
    backend = module_backend(model, "model")

    def last_width(module: Any) -> int | None:
        # The last layer that sets a width: a Linear's out_features, or (NiN's head) a convolution's out_channels
        # followed by pooling and flattening.
        for child in reversed(backend.submodules(module)):
            width = last_width(child)
            if width is not None:
                return width
        definition = module.definition
        return getattr(definition, "out_features", None) or getattr(definition, "out_channels", None)

    classes = last_width(model)
    if classes is None:
        raise ValueError(
            f"model: expected a model ending in a Linear or Conv2d layer (its width is the number of classes), "
            f"got a {model.definition.title} without either"
        )
    return classes


def _steps(data: Any, limit: int | None) -> int | None:
    """Steps per epoch, from the data's size (asking for a loader could draw a new order)."""
    try:
        steps = math.ceil(data.num_train / data.batch_size)
    except (AttributeError, TypeError):
        return limit
    return steps if limit is None else min(steps, limit)
