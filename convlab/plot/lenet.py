"""The figures of d2l 7.6, LeNet: its training curves and what its layers see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab.core.convert import as_real_array
from convlab.nn.layers import module_backend
from convlab.plot._style import _MARKERS, _pyplot
from convlab.train.records import ClassifierResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convlab.backends.base import Backend

# -- what the figures draw: runs checked, images checked, and the one forward pass ---------------------


def _runs(results: Any) -> dict[str, ClassifierResult]:
    """``{name: run}`` from one :class:`~convlab.ClassifierResult`, or a sequence or mapping of them."""
    if isinstance(results, ClassifierResult):
        runs = {results.backend: results}
    elif isinstance(results, Mapping):
        runs = {str(name): run for name, run in results.items()}
    elif isinstance(results, Sequence) and not isinstance(results, (str, bytes)):
        runs = {run.backend if isinstance(run, ClassifierResult) else str(i): run for i, run in enumerate(results)}
    else:
        raise TypeError(f"results: expected a ClassifierResult or a list or dict of them, got {type(results).__name__}")
    for name, run in runs.items():
        if not isinstance(run, ClassifierResult) or not run.step_losses:
            raise TypeError(f"results[{name!r}]: expected a ClassifierResult with steps, got {run!r}"[:200])
    return runs


def _images(images: Any) -> np.ndarray:
    """``images`` as ``(N, 1, H, W)``: a channel axis is added to ``(N, H, W)``."""
    pictures = as_real_array(images, "images")
    if pictures.ndim == 3:
        pictures = pictures[:, None]
    if pictures.ndim != 4 or not len(pictures):
        raise ValueError(f"images: expected (N, 1, H, W) or (N, H, W) images, got shape {pictures.shape}")
    return pictures


def _layer_outputs(
    backend: Backend, children: Sequence[Any], pictures: np.ndarray, wanted: list[int]
) -> list[np.ndarray]:
    """Run ``pictures`` through the model's layers, up to the last one wanted; the outputs of those wanted."""
    X, maps = backend.tensor(pictures), {}
    for index, child in enumerate(children[: max(wanted) + 1]):
        X = backend.predict(child, X)
        if index in wanted:
            maps[index] = np.asarray(backend.to_numpy(X), dtype=np.float64)
    return [maps[index] for index in wanted]


# -- the figures ---------------------------------------------------------------------


def training_curves(results: Any, title: str | None = "LeNet on Fashion-MNIST") -> Figure:
    """The book's figure of a classifier's training: loss per step, accuracy per epoch, one colour per run.

    Parameters
    ----------
    results : ClassifierResult, or a sequence or mapping of them
        What :func:`convlab.train_classifier` returns; several runs (one per
        backend, say) share the axes, labelled by their backend or by the
        mapping's keys.
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, labelled ``"loss"`` (train loss per step, with the
        epochs' means as markers) and ``"accuracy"`` (train and validation
        accuracy per epoch); each line's label names its run.

    Examples
    --------
    >>> import convlab as cl
    >>> from convlab import plot
    >>> run = cl.ClassifierResult([2.3, 2.2, 2.1, 2.0], [2.25, 2.05], [0.1, 0.2], [0.1, 0.3], 1e3, "numpy")
    >>> fig = plot.training_curves(run)
    >>> [axis.get_label() for axis in fig.axes]
    ['loss', 'accuracy']
    >>> plot._pyplot().close(fig)
    """
    runs = _runs(results)
    plt = _pyplot()
    fig = plt.figure(figsize=(10.0, 3.8), layout="constrained")
    loss_axis, accuracy_axis = fig.add_subplot(1, 2, 1, label="loss"), fig.add_subplot(1, 2, 2, label="accuracy")
    for k, (name, run) in enumerate(runs.items()):
        color = f"C{k}"
        steps = np.arange(1, len(run.step_losses) + 1)
        per_epoch = len(run.step_losses) / len(run.train_loss)
        loss_axis.plot(steps, run.step_losses, color=color, linewidth=0.8, alpha=0.6, label=name)
        ends = per_epoch * np.arange(1, len(run.train_loss) + 1)
        loss_axis.plot(ends, run.train_loss, color=color, marker=_MARKERS[k % len(_MARKERS)], linestyle="none")
        epochs = np.arange(1, len(run.val_acc) + 1)
        accuracy_axis.plot(epochs, run.val_acc, color=color, marker=_MARKERS[k % len(_MARKERS)], label=f"{name} val")
        accuracy_axis.plot(epochs, run.train_acc, color=color, linestyle="--", label=f"{name} train")
    loss_axis.set(xlabel="step", ylabel="cross-entropy (per step; markers: epoch means)")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    for axis in (loss_axis, accuracy_axis):
        axis.grid(True, alpha=0.35)
    accuracy_axis.legend(frameon=False, fontsize=8)
    if len(runs) > 1:
        loss_axis.legend(title="backend", frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def activations(
    model: Any, images: Any, layers: Sequence[int] = (1, 4), titles: Sequence[str] | None = None
) -> tuple[Figure, list[np.ndarray]]:
    """Each image's activations after the given layers of a ``cl.nn.Sequential``, one map per channel.

    Parameters
    ----------
    model : cl.nn.Sequential
        The network (LeNet: layer 1 is the first sigmoid, 4 the second).
    images : array_like
        ``(N, 1, H, W)`` or ``(N, H, W)`` images, a few.
    layers : sequence of int
        Indices of the layers whose outputs are drawn (``(N, C, H, W)`` outputs).
    titles : sequence of str, optional
        A name per image (its class).

    Returns
    -------
    (matplotlib.figure.Figure, list of numpy.ndarray)
        The figure (a row per image and layer: the image, then each channel's
        map, axes labelled ``"image i"`` and ``"layer l, channel c"``) and
        the activations of each layer in ``layers``, as NumPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab as cl
    >>> from convlab import plot
    >>> fig, (first,) = plot.activations(cl.models.lenet(seed=0), np.zeros((1, 28, 28)), layers=(1,))
    >>> first.shape
    (1, 6, 28, 28)
    >>> plot._pyplot().close(fig)
    """
    backend = module_backend(model, "model")
    children = backend.submodules(model)
    pictures = _images(images)
    wanted = [int(index) for index in layers]
    if not wanted or any(not 0 <= index < len(children) for index in wanted):
        raise ValueError(f"layers: expected indices of the model's {len(children)} layers, got {list(layers)}")
    names = list(titles) if titles is not None else [f"image {i}" for i in range(len(pictures))]
    if len(names) != len(pictures):
        raise ValueError(f"titles: expected one per image ({len(pictures)}), got {len(names)}")
    outputs = _layer_outputs(backend, children, pictures, wanted)

    columns = 1 + max(out.shape[1] for out in outputs)
    rows = len(pictures) * len(wanted)
    plt = _pyplot()
    fig = plt.figure(figsize=(1.3 * columns, 1.45 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, columns)
    for i, name in enumerate(names):
        for j, (index, out) in enumerate(zip(wanted, outputs, strict=True)):
            row = i * len(wanted) + j
            axis = fig.add_subplot(grid[row, 0], label=f"image {i}")
            axis.imshow(pictures[i, 0], cmap="gray")
            axis.set_title(f"{name}" if j == 0 else "", fontsize=8)
            axis.set_ylabel(f"layer {index}", fontsize=8)
            for c in range(out.shape[1]):
                channel = fig.add_subplot(grid[row, 1 + c], label=f"layer {index}, channel {c}")
                channel.imshow(out[i, c], cmap="viridis")
                channel.set_xticks([])
                channel.set_yticks([])
            axis.set_xticks([])
            axis.set_yticks([])
    fig.suptitle(f"activations after layers {', '.join(map(str, wanted))}", fontsize=10)
    return fig, outputs
