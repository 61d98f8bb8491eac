"""The figures of d2l 7.2, convolutions for images: a cross-correlation, an edge map, learning a kernel."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab.core import ops
from convlab.core.checks import check_fits
from convlab.core.convert import to_numpy
from convlab.plot._style import (
    _LINESTYLES,
    _MARKERS,
    _array,
    _axes,
    _heatmap,
    _plain_cells,
    _products,
    _pyplot,
    _sign,
    _symmetric_range,
    _window,
    format_value,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# -- what the figures draw: the one output they compute, and their inputs checked -----------------


def _correlation_output(Xa: np.ndarray, Ka: np.ndarray, Y: Any) -> np.ndarray:
    """``Y`` checked against ``X ⋆ K``'s shape, or, when ``None``, ``corr2d(X, K)`` on the active backend."""
    check_fits(Xa.shape, Ka.shape)
    if Y is None:
        # Looked up on the module at each call, so that the figure shows whatever corr2d computes now.
        return _array(to_numpy(ops.corr2d(Xa.astype(np.float32), Ka.astype(np.float32))), "Y")
    expected = (Xa.shape[0] - Ka.shape[0] + 1, Xa.shape[1] - Ka.shape[1] + 1)
    Ya = _array(Y, "Y")
    if Ya.shape != expected:
        raise ValueError(
            f"Y: expected shape {expected} (X {Xa.shape} cross-correlated with K {Ka.shape}), got {Ya.shape}"
        )
    return Ya


def _curves(curves: Any) -> dict[str | None, np.ndarray]:
    """``{label: losses}`` from a list of losses or a mapping of them."""
    if isinstance(curves, Mapping):
        items: list[tuple[str | None, Any, str]] = [
            (str(name), values, f"curves[{name!r}]") for name, values in curves.items()
        ]
        if not items:
            raise ValueError("curves: expected at least one curve, got an empty mapping")
    elif isinstance(curves, (str, bytes)) or not isinstance(curves, (Sequence, np.ndarray)):
        raise TypeError(f"curves: expected a list of losses or a dict of them, got {type(curves).__name__}")
    else:
        items = [(None, curves, "curves")]
    result: dict[str | None, np.ndarray] = {}
    for label, values, name in items:
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            raise TypeError(f"{name}: expected a list of losses (numbers), got {type(values).__name__}")
        if not all(isinstance(v, (numbers.Real, np.floating, np.integer)) for v in values):
            raise TypeError(f"{name}: expected a list of losses (numbers), got {list(values)!r}"[:200])
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"{name}: expected a non-empty list of losses, got {list(values)!r}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name}: expected finite losses, got {array}")
        result[label] = array
    return result


# -- the figures ---------------------------------------------------------------------


def correlation_figure(X: Any, K: Any, Y: Any = None, ax: Any = None) -> Figure:
    """Input, kernel and output of a cross-correlation, with every value written in its cell.

    Like the chapter's first figure: the window of ``X`` under the first
    output element, the kernel and that output element ``Y[0, 0]`` are
    outlined, and the sum of products that gives ``Y[0, 0]`` is written
    below.

    Parameters
    ----------
    X : array_like
        The 2-D input (a list, a NumPy array or a tensor of any backend).
    K : array_like
        The 2-D kernel, no larger than ``X``.
    Y : array_like, optional
        The output; computed with :func:`convlab.corr2d` on the active backend
        when omitted. Must have shape ``(n_h - k_h + 1, n_w - k_w + 1)``.
    ax : sequence of three matplotlib Axes, optional
        Where to draw the input, kernel and output. By default a new figure,
        with the ``⋆`` and ``=`` signs between the panels, is made.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from convlab import data, plot
    >>> fig = plot.correlation_figure(*data.fig_correlation())
    >>> output = next(a for a in fig.axes if a.get_label() == "output")
    >>> [t.get_text() for t in output.texts if t.get_gid() == "cell"]
    ['19', '25', '37', '43']
    >>> plot._pyplot().close(fig)
    """
    Xa, Ka = _array(X, "X"), _array(K, "K")
    Ya = _correlation_output(Xa, Ka, Y)
    axes = _axes(ax, 3)

    plt = _pyplot()
    if axes is None:
        widths = [Xa.shape[1], 0.9, Ka.shape[1], 0.9, Ya.shape[1]]
        height = max(Xa.shape[0], Ka.shape[0], Ya.shape[0])
        cell = 0.62  # inches per cell
        fig = plt.figure(figsize=(cell * sum(widths) + 0.4, cell * height + 1.1), layout="constrained")
        grid = fig.add_gridspec(1, 5, width_ratios=widths)
        axes = [fig.add_subplot(grid[0, k]) for k in (0, 2, 4)]
        for k, sign in ((1, "⋆"), (3, "=")):
            _sign(fig, grid[0, k], sign, label=f"sign {k}", fontsize=34)
        show_equation = True
    else:
        fig = axes[0].figure
        show_equation = False

    plain = _plain_cells()
    kh, kw = Ka.shape
    for a, values, label, title, window in (
        (axes[0], Xa, "input", "Input", (kh, kw)),
        (axes[1], Ka, "kernel", "Kernel", (kh, kw)),
        (axes[2], Ya, "output", "Output", (1, 1)),
    ):
        a.set_label(label)
        _heatmap(a, values, cmap=plain, vmin=0, vmax=1, fontsize=15, indices=False)
        _window(a, 0, 0, *window)
        a.set_title(f"{title} {values.shape[0]}×{values.shape[1]}", fontsize=12)

    if show_equation and kh * kw <= 9:
        terms = _products(Xa[:kh, :kw].ravel(), Ka.ravel())
        fig.supxlabel(f"first output: {terms} = {format_value(Ya[0, 0])}", fontsize=11)
    return fig


def edge_map(X: Any, Y: Any, ax: Any = None, titles: Sequence[str] | None = None, annotate: bool = True) -> Figure:
    """An image beside its edge map: the image in grey levels, the edges in red (+) and blue (-).

    Parameters
    ----------
    X : array_like
        The 2-D image; 1 is white and 0 black, as in the chapter.
    Y : array_like
        Its cross-correlation with an edge detector, such as ``corr2d(X, [[1, -1]])``;
        no larger than ``X``.
    ax : sequence of two matplotlib Axes, optional
        Where to draw ``X`` and ``Y``; a new figure by default.
    titles : pair of str, optional
        Titles of the two panels.
    annotate : bool
        Write every value in its cell.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import convlab as cl
    >>> import convlab.plot
    >>> X = cl.data.edge_image()
    >>> fig = convlab.plot.edge_map(X, cl.corr2d(X, cl.kernels.edge()))
    >>> [a.get_label() for a in fig.axes[:2]]
    ['input', 'output']
    >>> convlab.plot._pyplot().close(fig)
    """
    Xa, Ya = _array(X, "X"), _array(Y, "Y")
    if Ya.shape[0] > Xa.shape[0] or Ya.shape[1] > Xa.shape[1]:
        raise ValueError(f"Y: expected an edge map no larger than the image X {Xa.shape}, got shape {Ya.shape}")
    if titles is None:
        titles = (f"image X ({Xa.shape[0]}×{Xa.shape[1]})", f"edge map Y ({Ya.shape[0]}×{Ya.shape[1]})")
    if isinstance(titles, str) or len(titles) != 2 or not all(isinstance(t, str) for t in titles):
        raise TypeError(f"titles: expected two strings, got {titles!r}")
    axes = _axes(ax, 2)
    plt = _pyplot()
    if axes is None:
        cell = 0.5  # inches per cell; both panels get cells of this size
        widths = [Xa.shape[1], Ya.shape[1], 0.3]
        rows = max(Xa.shape[0], Ya.shape[0])
        fig = plt.figure(figsize=(cell * sum(widths) + 2.0, cell * rows + 1.0), layout="constrained")
        grid = fig.add_gridspec(1, 3, width_ratios=widths)
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
        colorbar_ax = fig.add_subplot(grid[0, 2], label="colorbar")
    else:
        fig = axes[0].figure
        colorbar_ax = None

    axes[0].set_label("input")
    lo, hi = min(0.0, Xa.min()), max(1.0, Xa.max())
    _heatmap(axes[0], Xa, cmap="gray", vmin=lo, vmax=hi, annotate=annotate, fontsize=10)
    axes[0].set_title(titles[0], fontsize=12)

    axes[1].set_label("output")
    bound = _symmetric_range(Ya)
    image = _heatmap(axes[1], Ya, cmap="RdBu_r", vmin=-bound, vmax=bound, annotate=annotate, fontsize=10)
    axes[1].set_title(titles[1], fontsize=12)
    if colorbar_ax is None:
        fig.colorbar(image, ax=axes[1], shrink=0.8, ticks=[-bound, 0, bound], label="edge strength")
    else:
        fig.colorbar(image, cax=colorbar_ax, ticks=[-bound, 0, bound], label="edge strength")
    return fig


def loss_curves(
    curves: dict[str, list[float]] | list[float],
    logy: bool = True,
    ax: Any = None,
    title: str | None = "loss while learning the kernel",
) -> Figure:
    """The loss of every training iteration, for one run or one run per backend.

    Parameters
    ----------
    curves : list of float, or dict of str to list of float
        ``TrainResult.losses`` of one run, or ``{backend name: losses}``.
        Iteration ``i`` (from 1) is plotted at ``x = i``.
    logy : bool
        Logarithmic loss axis (the loss falls by orders of magnitude); losses
        that are exactly zero are then left out of the plot.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.
    title : str, optional
        The axes' title.

    Returns
    -------
    matplotlib.figure.Figure
        Its lines carry the curves' names as labels (``line.get_label()``).

    Examples
    --------
    >>> from convlab import plot
    >>> fig = plot.loss_curves({"numpy": [4.0, 1.0, 0.25], "torch": [4.0, 1.0, 0.25]})
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['numpy', 'torch']
    >>> plot._pyplot().close(fig)
    """
    data = _curves(curves)
    if not isinstance(logy, bool):
        raise TypeError(f"logy: expected a bool, got {logy!r}")
    axes = _axes(ax, 1)
    plt = _pyplot()
    if axes is None:
        fig = plt.figure(figsize=(6.0, 3.8), layout="constrained")
        axis = fig.add_subplot(label="loss")
    else:
        axis = axes[0]
        fig = axis.figure
        axis.set_label("loss")
    several = len(data) > 1
    for k, (label, losses) in enumerate(data.items()):
        epochs = np.arange(1, losses.size + 1)
        axis.plot(
            epochs,
            losses,
            marker=_MARKERS[k % len(_MARKERS)],
            linestyle=_LINESTYLES[k % len(_LINESTYLES)] if several else "-",
            markersize=max(3.0, 8.0 - 1.2 * k) if several else 5.0,
            linewidth=1.6,
            label=label if label is not None else "loss",
            alpha=0.9 if several else 1.0,
        )
    if logy:
        axis.set_yscale("log", nonpositive="mask")
    longest = max(losses.size for losses in data.values())
    if longest <= 20:
        axis.set_xticks(np.arange(1, longest + 1))
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss (sum of squared errors)")
    axis.grid(True, which="major", alpha=0.35)
    if title:
        axis.set_title(title, fontsize=12)
    if several:
        axis.legend(title="backend", frameon=False)
    return fig


def kernel_comparison(learned: Any, true: Any, ax: Any = None) -> Figure:
    """A learned kernel beside the true one, on one colour scale, with their values.

    Parameters
    ----------
    learned : array_like
        The learned kernel, e.g. ``TrainResult.kernel``.
    true : array_like
        The kernel that made the data, of the same shape.
    ax : sequence of two matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from convlab import plot
    >>> fig = plot.kernel_comparison([[0.99, -0.99]], [[1, -1]])
    >>> learned = next(a for a in fig.axes if a.get_label() == "learned")
    >>> [t.get_text() for t in learned.texts if t.get_gid() == "cell"]
    ['0.99', '-0.99']
    >>> plot._pyplot().close(fig)
    """
    La, Ta = _array(learned, "learned"), _array(true, "true")
    if La.shape != Ta.shape:
        raise ValueError(f"learned: expected the shape of true {Ta.shape}, got {La.shape}")
    axes = _axes(ax, 2)
    plt = _pyplot()
    if axes is None:
        h, w = Ta.shape
        cell = 1.0
        fig = plt.figure(figsize=(2 * cell * w + 2.2, cell * h + 1.6), layout="constrained")
        axes = list(fig.subplots(1, 2))
    else:
        fig = axes[0].figure
    bound = _symmetric_range(La, Ta)
    for a, values, label, title in ((axes[0], La, "learned", "learned kernel"), (axes[1], Ta, "true", "true kernel")):
        a.set_label(label)
        image = _heatmap(a, values, cmap="RdBu_r", vmin=-bound, vmax=bound, fontsize=14)
        a.set_title(title, fontsize=12)
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.suptitle(f"largest difference: {np.abs(La - Ta).max():.3g}", fontsize=11)
    return fig
