"""Training and inspecting an image classifier, as d2l §7.6 does with LeNet: one loop for every backend."""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convlab._api import export
from convlab._checks import check_positive
from convlab._convert import to_numpy
from convlab._registry import use_backend
from convlab._text import table
from convlab.backends.base import Backend
from convlab.layers import LayerDef, SoftmaxCrossEntropy


def _backend_of(model: Any) -> Backend:
    backend = getattr(model, "backend", None)
    if not isinstance(getattr(model, "definition", None), LayerDef) or not isinstance(backend, Backend):
        raise TypeError(f"model: expected a convlab model (cl.models.lenet(), cl.nn.Sequential...), got {type(model)}")
    return backend


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
    backend = _backend_of(model)
    shape = tuple(int(check_positive(n, "input_shape", integer=True)) for n in input_shape)
    X = backend.tensor(np.zeros(shape, dtype=np.float32))
    layers = backend.submodules(model) or (model,)
    rows = []
    for layer in layers:
        X = backend.predict(layer, X)
        rows.append((layer.definition.title, tuple(int(n) for n in X.shape)))
    if verbose:
        width = max(len(name) for name, _ in rows) + len(" output shape:")
        for name, out in rows:
            print(f"{name + ' output shape:':<{width}} {out}")
    return rows


@export
@dataclass
class ClassifierResult:
    """What :func:`train_classifier` measured."""

    step_losses: list[float]
    """The mean cross-entropy of each minibatch, before its update."""
    train_loss: list[float]
    """Per epoch: the mean of its step losses."""
    train_acc: list[float]
    """Per epoch: the accuracy, after the epoch, on its last (at most) :data:`TRAIN_ACC_BATCHES` batches."""
    val_acc: list[float]
    """Per epoch: the accuracy on the validation split after the epoch."""
    examples_per_sec: float
    """Training examples per second over all epochs (evaluation excluded)."""
    backend: str
    """The backend that trained."""
    model: Any = field(repr=False, default=None)
    """The trained model (not saved by :meth:`save`)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Facts about the run that :meth:`save` keeps beside the figures: ``convlab lenet`` records the
    date, the command, the versions and the settings."""

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the run (every field but :attr:`model`) to ``path`` as JSON; :meth:`load` reads it back.

        Step losses keep 7 significant digits, all that float32 has.
        """
        record: dict[str, Any] = {name: getattr(self, name) for name in _SAVED_FIELDS}
        record["step_losses"] = [float(f"{loss:.7g}") for loss in self.step_losses]
        # One line per field: the metadata stays readable, and the losses do not take a line each.
        lines = [f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in record.items()]
        Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClassifierResult:
        """Read a run written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not such a run: not JSON, a field missing, or
            per-epoch lists of different lengths.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> import convlab as cl
        >>> run = cl.ClassifierResult([2.3, 2.1], [2.2], [0.2], [0.3], 1e3, "numpy", metadata={"epochs": 1})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     run.save(pathlib.Path(folder) / "run.json")
        ...     cl.ClassifierResult.load(pathlib.Path(folder) / "run.json") == run
        True
        """
        try:
            record = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(
                f"path: expected a run saved by ClassifierResult.save, {path} is not JSON ({error})"
            ) from None
        if not isinstance(record, dict):
            raise ValueError(f"path: expected a JSON object in {path}, got a {type(record).__name__}")
        missing = [name for name in _SAVED_FIELDS if name not in record]
        if missing:
            raise ValueError(f"path: {path} is not a saved run: it lacks {', '.join(missing)}")
        epochs = {name: len(record[name]) for name in ("train_loss", "train_acc", "val_acc")}
        if len(set(epochs.values())) != 1:
            raise ValueError(f"path: {path} has per-epoch lists of different lengths: {epochs}")
        return cls(**{name: record[name] for name in _SAVED_FIELDS})


_SAVED_FIELDS = ("step_losses", "train_loss", "train_acc", "val_acc", "examples_per_sec", "backend", "metadata")


RECORDS = Path(__file__).parent / "records"
"""Where :func:`recorded_runs` reads: one folder per experiment, one saved run per backend."""


@export
def recorded_runs(experiment: str = "lenet") -> dict[str, ClassifierResult]:
    """Full training runs recorded with ``convlab lenet --json``, one per backend, as the docs show them.

    A full run of 10 epochs takes minutes per backend, too long for every
    build of the docs, so the runs are recorded once and shipped; each
    run's :attr:`~ClassifierResult.metadata` holds its date, command,
    versions and wall time. The test suite checks that a record still
    starts with the losses the current code computes.

    Parameters
    ----------
    experiment : str
        ``"lenet"`` (the book's sigmoid LeNet) or ``"lenet-relu-max"``
        (the section's first exercise).

    Returns
    -------
    dict of str to ClassifierResult
        By backend name, in the order of :func:`convlab.backend_info`.

    Examples
    --------
    >>> import convlab as cl
    >>> runs = cl.recorded_runs("lenet")
    >>> runs["numpy"].metadata["epochs"], len(runs["numpy"].val_acc)
    (10, 10)
    """
    folder = RECORDS / experiment
    known = sorted(path.name for path in RECORDS.iterdir() if path.is_dir())
    if experiment not in known:
        raise ValueError(f"experiment: expected one of {known}, got {experiment!r}")
    from convlab._registry import backend_info

    order = {info.name: index for index, info in enumerate(backend_info())}
    paths = sorted(folder.glob("*.json"), key=lambda path: (order.get(path.stem, len(order)), path.stem))
    return {path.stem: ClassifierResult.load(path) for path in paths}


@export
def format_runs(runs: Mapping[str, ClassifierResult]) -> str:
    """A text table of runs: final accuracies, speed, wall time, versions and date, one row per run.

    Parameters
    ----------
    runs : mapping of str to ClassifierResult
        As :func:`recorded_runs` returns; the keys label the rows. Wall
        time, versions and date come from each run's metadata (blank where
        it lacks them).

    Examples
    --------
    >>> import convlab as cl
    >>> run = cl.ClassifierResult([2.3, 2.1], [2.2], [0.2], [0.3], 1e3, "numpy", metadata={"seconds": 60.0})
    >>> print(cl.format_runs({"numpy": run}))
    run    version  date  val acc  train acc  examples/s  wall time
    numpy                   0.300      0.200        1000       60 s
    """
    rows = [["run", "version", "date", "val acc", "train acc", "examples/s", "wall time"]]
    for name, run in runs.items():
        facts = run.metadata
        seconds = facts.get("seconds")
        rows.append([
            name, str(facts.get("framework_version", "")), str(facts.get("date", "")),
            f"{run.val_acc[-1]:.3f}", f"{run.train_acc[-1]:.3f}", f"{run.examples_per_sec:.0f}",
            "" if seconds is None else f"{seconds:.0f} s",
        ])  # fmt: skip
    return table(rows, left=3)  # the figures align on their last digit


TRAIN_ACC_BATCHES = 80
"""Training batches kept for :attr:`ClassifierResult.train_acc` (80 x 128: about 10,000 images)."""


def accuracy(model: Any, batches: Iterable[tuple[Any, Any]], max_batches: int | None = None) -> float:
    """The fraction of examples whose largest logit is the label, over ``batches`` (at most ``max_batches``)."""
    backend = _backend_of(model)
    correct = total = 0
    for index, (X, y) in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        predicted = to_numpy(backend.argmax(backend.predict(model, X), axis=1))
        labels = to_numpy(y)
        correct += int((predicted == labels).sum())
        total += len(labels)
    return correct / total if total else float("nan")


def _progress(total: int | None, verbose: bool, backend: str) -> Any:
    from tqdm.auto import tqdm  # notebook-aware: a widget in Jupyter, text in a terminal

    return tqdm(total=total, disable=not verbose, desc=f"LeNet on {backend}", unit="step", leave=False)


@export
def train_classifier(
    model: Any,
    data: Any,
    num_epochs: int = 10,
    lr: float = 0.1,
    *,
    max_batches: int | None = None,
    verbose: bool = True,
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

    Returns
    -------
    ClassifierResult
    """
    backend = _backend_of(model)
    epochs = int(check_positive(num_epochs, "num_epochs", integer=True))
    lr = float(check_positive(lr, "lr"))
    limit = None if max_batches is None else int(check_positive(max_batches, "max_batches", integer=True))
    loss = SoftmaxCrossEntropy(backend)
    result = ClassifierResult([], [], [], [], 0.0, backend.name, model)
    steps_per_epoch = _steps(data, limit)
    eye = np.eye(model_classes(model), dtype=np.float32)
    seen, training_time = 0, 0.0
    progress = _progress(None if steps_per_epoch is None else steps_per_epoch * epochs, verbose, backend.name)
    # The model's backend is active throughout, so that the data's batches are its tensors.
    with use_backend(backend.name, device=backend.device), progress as bar:
        for epoch in range(epochs):
            first = len(result.step_losses)
            visited: deque = deque(maxlen=TRAIN_ACC_BATCHES)
            start = time.perf_counter()
            for index, (X, y) in enumerate(data.train_dataloader()):
                if limit is not None and index >= limit:
                    break
                labels = to_numpy(y)
                Y = backend.tensor(eye[labels])
                value, grads = backend.value_and_grad(model, X, Y, loss)
                backend.sgd_update(model, grads, lr)
                result.step_losses.append(value)
                seen += len(labels)
                visited.append((X, y))
                bar.update(1)
            training_time += time.perf_counter() - start
            result.train_loss.append(float(np.mean(result.step_losses[first:])))
            result.train_acc.append(accuracy(model, visited))
            result.val_acc.append(accuracy(model, data.val_dataloader(), limit))
            if verbose:
                bar.write(
                    f"epoch {epoch + 1}: train loss {result.train_loss[-1]:.3f}, "
                    f"train acc {result.train_acc[-1]:.3f}, val acc {result.val_acc[-1]:.3f}"
                )
    result.examples_per_sec = seen / training_time if training_time else float("nan")
    return result


def model_classes(model: Any) -> int:
    """The number of logits: the last layer's output features."""
    backend = _backend_of(model)
    last = (backend.submodules(model) or (model,))[-1]
    classes = getattr(last.definition, "out_features", None)
    if classes is None:
        raise ValueError(f"model: expected a model ending in a Linear layer, got one ending in {last.definition.title}")
    return classes


def _steps(data: Any, limit: int | None) -> int | None:
    """Steps per epoch, from the data's size (asking for a loader could draw a new order)."""
    try:
        steps = math.ceil(data.num_train / data.batch_size)
    except (AttributeError, TypeError):
        return limit
    return steps if limit is None else min(steps, limit)


def add_arguments(parser: Any) -> None:
    """The options of ``convlab lenet``."""
    parser.add_argument("--backend", help="the backend to train on (default: $CONVLAB_BACKEND, else numpy)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: 10)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1, the book's)")
    parser.add_argument("--batch-size", type=int, default=128, help="minibatch size (default: 128, the book's)")
    parser.add_argument("--max-batches", type=int, help="at most this many batches per epoch (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and batch order (default: 0)")
    parser.add_argument(
        "--activation", choices=("sigmoid", "relu"), default="sigmoid", help="LeNet's activation (default: sigmoid)"
    )
    parser.add_argument("--pooling", choices=("avg", "max"), default="avg", help="LeNet's pooling (default: avg)")
    parser.add_argument("--data", metavar="DIR", help="the Fashion-MNIST files (default: the usual places)")
    parser.add_argument("--plot", metavar="DIR", help="write the training curves as a PNG into DIR")
    parser.add_argument(
        "--json", metavar="PATH", help="save the run (losses, accuracies, timing, versions) as ClassifierResult.save"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")


def _command(args: Any, backend: str) -> str:
    """The ``convlab lenet`` command that repeats this run (where the output goes aside)."""
    words = ["convlab", "lenet", "--backend", backend, "--epochs", str(args.epochs), "--lr", str(args.lr)]
    words += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    words += ["--activation", args.activation, "--pooling", args.pooling]
    if args.max_batches is not None:
        words += ["--max-batches", str(args.max_batches)]
    return " ".join(words)


def main(args: Any) -> int:
    """``convlab lenet``: d2l §7.6's LeNet on Fashion-MNIST on one backend; returns the exit status."""
    import datetime
    import platform

    from convlab import __version__, models
    from convlab._registry import get_backend
    from convlab.data import FashionMNIST

    with use_backend(args.backend or get_backend().name) as backend:
        data = FashionMNIST(batch_size=args.batch_size, root=args.data, seed=args.seed)
        model = models.lenet(seed=args.seed, activation=args.activation, pooling=args.pooling)
        if not args.quiet:
            layer_summary(model)
        start = time.perf_counter()
        result = train_classifier(
            model, data, args.epochs, args.lr, max_batches=args.max_batches, verbose=not args.quiet
        )
        seconds = time.perf_counter() - start
    print(
        f"{backend.name}: train loss {result.train_loss[-1]:.3f}, train acc {result.train_acc[-1]:.3f}, "
        f"val acc {result.val_acc[-1]:.3f}; {result.examples_per_sec:.0f} examples/s, {seconds:.1f} s in all"
    )
    if args.json:
        result.metadata.update(
            command=_command(args, backend.name),
            date=datetime.date.today().isoformat(),
            seconds=round(seconds, 1),
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            max_batches=args.max_batches,
            seed=args.seed,
            activation=args.activation,
            pooling=args.pooling,
            framework_version=backend.version(),
            convlab_version=__version__,
            python=platform.python_version(),
        )
        result.save(args.json)
        print(f"results written to {args.json}")
    if args.plot:
        from convlab.plot import training_curves

        Path(args.plot).mkdir(parents=True, exist_ok=True)
        path = Path(args.plot) / f"lenet-{result.backend}.png"
        training_curves(result).savefig(path)
        print(f"curves written to {path}")
    return 0
