"""The chapter's figures as files: what ``convlab demo --plot DIR`` writes."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import numpy as np

from convlab.chapter import kernels
from convlab.core import ops
from convlab.core.convert import to_numpy
from convlab.core.registry import use_backend
from convlab.data import edge_image, fig_correlation
from convlab.plot._style import _pyplot
from convlab.plot.channels import multi_channel_figure
from convlab.plot.conv_layer import correlation_figure, edge_map, kernel_comparison, loss_curves
from convlab.plot.padding import _animation_figure, save_gif, sliding_window_animation
from convlab.train.kernel import TrainResult, train_kernel

CHAPTER_FIGURES = ("correlation.png", "edge-map.png", "loss-curve.png", "learned-kernel.png")
"""The files :func:`save_chapter_figures` writes, in order."""

TEACHING_FIGURES = ("padding.gif", "stride.gif", "multi-channel.png")
"""The files :func:`save_teaching_figures` writes, in order."""

# -- what the figures draw: the chapter, run on one backend ------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _ChapterRun:
    X: np.ndarray
    K: np.ndarray
    Y: np.ndarray
    """``corr2d(X, K)``: the chapter's first figure."""
    image: np.ndarray
    edges: np.ndarray
    """``corr2d(image, [[1, -1]])``."""
    learned: TrainResult
    """The ``[[1, -1]]`` kernel learned back from ``image`` and ``edges``."""
    error: float
    """The largest difference between the learned kernel and the true one."""
    backend: str
    """The name of the backend that computed it all."""


def _run_chapter(backend: str) -> _ChapterRun:
    """The chapter, computed on ``backend`` as ``convlab demo`` does (built-in layer, lr 3e-2, 10 epochs from zeros)."""
    with use_backend(backend) as active:
        X, K = fig_correlation()
        Y = to_numpy(ops.corr2d(X, K))
        image = edge_image()
        edges = to_numpy(ops.corr2d(image, kernels.edge()))
        learned = train_kernel(image, edges, kernel_size=(1, 2), lr=3e-2, num_epochs=10, verbose=False)
        name = active.name
    error = float(np.abs(learned.kernel - kernels.edge()).max())
    return _ChapterRun(X, K, Y, image, edges, learned, error, name)


def _output_directory(directory: Any) -> pathlib.Path:
    """``directory`` as a path: a folder, or nothing yet (it is made once the figures are drawn)."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory: expected a path, got {directory!r}")
    out = pathlib.Path(directory)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"directory: {str(out)!r} exists and is not a directory")
    return out


# -- the files -----------------------------------------------------------------------


def save_chapter_figures(directory: str | os.PathLike[str], backend: str = "numpy") -> list[pathlib.Path]:
    """Run the chapter on ``backend`` and write its figures as PNG files in ``directory``.

    Writes, in this order, :data:`CHAPTER_FIGURES`: ``correlation.png`` (the
    first figure, computed with ``corr2d``), ``edge-map.png`` (the 6x8 image
    and its edges), ``loss-curve.png`` (learning the ``[[1, -1]]`` kernel:
    built-in layer, lr 3e-2, 10 epochs from zeros, as ``convlab demo``) and
    ``learned-kernel.png`` (the learned kernel beside the true one).

    Parameters
    ----------
    directory : str or path
        Where to write; made (with its parents) if missing.
    backend : str
        The backend that computes everything, e.g. ``"torch"``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ValueError
        Unknown backend.
    convlab.BackendNotInstalledError
        The backend's framework is not installed.

    Examples
    --------
    >>> import tempfile
    >>> from convlab import plot
    >>> paths = plot.save_chapter_figures(tempfile.mkdtemp(), backend="numpy")
    >>> [path.name for path in paths]
    ['correlation.png', 'edge-map.png', 'loss-curve.png', 'learned-kernel.png']
    """
    out = _output_directory(directory)
    plt = _pyplot()  # before the chapter runs: without matplotlib there is nothing to run it for
    run = _run_chapter(backend)
    name = run.backend
    figures = [
        correlation_figure(run.X, run.K, run.Y),
        edge_map(run.image, run.edges, titles=("image X (6×8)", "corr2d(X, [[1, -1]])")),
        loss_curves(run.learned.losses, title=f"learning the kernel on {name}: loss per epoch"),
        kernel_comparison(run.learned.kernel, kernels.edge()),
    ]
    figures[0].suptitle(f"cross-correlation ({name})", fontsize=12)
    figures[3].suptitle(f"learned kernel after 10 epochs on {name} (largest difference {run.error:.3g})", fontsize=11)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for fig, filename in zip(figures, CHAPTER_FIGURES, strict=True):
            path = out / filename
            fig.savefig(path, dpi=150, facecolor="white")
            paths.append(path)
    finally:
        for fig in figures:
            plt.close(fig)
    return paths


def save_teaching_figures(directory: str | os.PathLike[str], backend: str = "numpy") -> list[pathlib.Path]:
    """Draw the book's figures 7.3.1, 7.3.2 and 7.4.1 on ``backend`` and write them in ``directory``.

    Writes, in this order, :data:`TEACHING_FIGURES`: ``padding.gif`` (the
    3x3 input of the first figure, zero padding 1, its 2x2 kernel: 16
    frames), ``stride.gif`` (the same with stride 3 down and 2 across: 4
    frames) and ``multi-channel.png`` (two input channels, two kernels,
    their correlations and the sum).

    Parameters
    ----------
    directory : str or path
        Where to write; made (with its parents) if missing.
    backend : str
        The backend that computes the values drawn, e.g. ``"torch"``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> from convlab import plot
    >>> paths = plot.save_teaching_figures(tempfile.mkdtemp())  # doctest: +SKIP
    >>> [path.name for path in paths]  # doctest: +SKIP
    ['padding.gif', 'stride.gif', 'multi-channel.png']
    """
    out = _output_directory(directory)
    plt = _pyplot()
    # Drawn inside the block: these figures take their numbers from convlab's pad and corr2d on the active backend.
    with use_backend(backend) as active:
        X, K = fig_correlation()
        name = active.name
        animations = [
            sliding_window_animation(X, K, padding=1, title=f"zero padding 1: a 3×3 input gives a 4×4 output ({name})"),
            sliding_window_animation(X, K, padding=1, stride=(3, 2), title=f"padding 1, stride (3, 2) ({name})"),
        ]
        channels = multi_channel_figure(
            np.stack([X, X + 1]), np.stack([K, K + 1]), title=f"two input channels, one output channel ({name})"
        )
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for animation, filename in zip(animations, TEACHING_FIGURES[:2], strict=True):
            paths.append(save_gif(animation, out / filename))
        path = out / TEACHING_FIGURES[2]
        channels.savefig(path, dpi=150, facecolor="white")
        paths.append(path)
    finally:
        for animation in animations:
            plt.close(_animation_figure(animation))
        plt.close(channels)
    return paths
