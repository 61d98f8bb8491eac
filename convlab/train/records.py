"""Saved training runs: :class:`ClassifierResult` to and from JSON, and the runs shipped with convlab."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convlab._api import export
from convlab._text import table
from convlab.core.registry import backend_info


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


RECORDS = Path(__file__).parents[1] / "records"
"""Where :func:`recorded_runs` reads: one folder per experiment, one saved run per backend."""


@export
def recorded_runs(experiment: str = "lenet") -> dict[str, ClassifierResult]:
    """Training runs recorded with ``convlab train --json``, one per backend, as the docs show them.

    A full run of 10 epochs takes minutes per backend, too long for every
    build of the docs, so the runs are recorded once and shipped; each
    run's :attr:`~ClassifierResult.metadata` holds its date, command,
    versions and wall time. The test suite checks that a record still
    starts with the losses the current code computes.

    Parameters
    ----------
    experiment : str
        ``"lenet"`` (the book's sigmoid LeNet), ``"lenet-compiled"`` (the
        same, each step compiled whole: ``--compile on``), ``"lenet-relu-max"`` (the
        section's first exercise), ``"bn_lenet"`` (d2l §8.5 at the book's
        settings) or a §8 network at ``size="mini"`` (``"alexnet"``,
        ``"vgg"``, ``"googlenet"``, ``"densenet"``...: five epochs on
        PyTorch and NumPy, the first 200 steps on the other backends).

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
