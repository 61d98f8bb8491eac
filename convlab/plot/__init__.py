"""The chapter's figures, drawn with matplotlib.

The figure functions return a :class:`matplotlib.figure.Figure`,
:func:`sliding_window_animation` a :class:`matplotlib.animation.FuncAnimation`
(shown in notebooks by :func:`animation_html`, written by :func:`save_gif`);
all work without a display (the Agg backend is chosen when no display is
available and no backend was picked). matplotlib is imported only when a
figure is drawn, so ``import convlab`` stays light; install it with
``pip install "convlab[plot]"``.

The figures carry labels that make them easy to inspect programmatically:
the panels' axes are labelled (``ax.get_label()``: ``"input"``, ``"kernel"``,
``"output"``, ``"learned"``, ``"true"``, ``"loss"``, ``"channel 0"``...), the
numbers written in the cells are texts with ``gid="cell"``, the highlighted
windows are rectangles with ``gid="window"``, padded cells rectangles with
``gid="padding"``, and a caption holding a sum of products has
``gid="equation"``.

Examples
--------
>>> import convlab as cl
>>> from convlab import plot
>>> fig = plot.correlation_figure(*cl.data.fig_correlation())  # the chapter's first figure
>>> fig.savefig("correlation.png")  # doctest: +SKIP
>>> plot.save_chapter_figures("figures", backend="torch")  # doctest: +SKIP
[PosixPath('figures/correlation.png'), PosixPath('figures/edge-map.png'), ...]
>>> plot._pyplot().close(fig)
"""

from __future__ import annotations

import numbers
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.animation import FuncAnimation
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

__all__ = [
    "activations",
    "animation_html",
    "correlation_figure",
    "edge_map",
    "kernel_comparison",
    "loss_curves",
    "multi_channel_figure",
    "save_chapter_figures",
    "save_gif",
    "save_teaching_figures",
    "sliding_window_animation",
    "sliding_window_figure",
    "training_curves",
]

CHAPTER_FIGURES = ("correlation.png", "edge-map.png", "loss-curve.png", "learned-kernel.png")
"""The files :func:`save_chapter_figures` writes, in order."""

TEACHING_FIGURES = ("padding.gif", "stride.gif", "multi-channel.png")
"""The files :func:`save_teaching_figures` writes, in order."""

_CELL_COLOR = "#dbe9f6"  # the plain cells of the correlation figure
_WINDOW_COLOR = "#f4a259"  # the first output's window: fill ...
_WINDOW_EDGE = "#c0392b"  # ... and border
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")


# -- helpers -----------------------------------------------------------------------


def _pyplot() -> Any:
    """``matplotlib.pyplot``, on the Agg backend when there is no display to draw on."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dev dependency
        raise ImportError(
            f'convlab.plot needs matplotlib ({exc}); install it with: pip install "convlab[plot]"'
        ) from exc
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        headless = sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        )
        if headless:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _matrix(x: Any, name: str) -> np.ndarray:
    """``x`` (a list, an array or a tensor of any backend) as a finite 2-D float array."""
    from convlab.core.convert import as_real_array

    array = as_real_array(x, name).astype(np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name}: expected a non-empty 2-D array (height, width), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got {array}")
    return array


def _axes(ax: Any, count: int, name: str = "ax") -> list[Axes] | None:
    """``count`` matplotlib Axes from ``ax`` (``None``: the caller makes a figure)."""
    if ax is None:
        return None
    from matplotlib.axes import Axes

    group = [ax] if isinstance(ax, Axes) else ax
    try:
        group = list(group)
    except TypeError:
        group = []
    if len(group) != count or not all(isinstance(a, Axes) for a in group):
        what = "a matplotlib Axes" if count == 1 else f"a sequence of {count} matplotlib Axes"
        raise TypeError(f"{name}: expected {what}, got {ax!r}")
    return group


def format_value(value: float) -> str:
    """A cell's number as the book writes it: ``19`` for whole numbers, else three significant digits.

    Examples
    --------
    >>> format_value(19.0), format_value(-0.98931), format_value(-0.0), format_value(1234.5)
    ('19', '-0.989', '0', '1234')
    """
    value = float(value)
    if abs(value - round(value)) <= 1e-6 * max(1.0, abs(value)):
        return str(round(value))  # an int: no "-0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _text_color(rgba: Sequence[float]) -> str:
    """Black on light cells, white on dark ones."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _grid(ax: Axes, shape: tuple[int, int], indices: bool = True) -> None:
    """Cell borders (and row/column indices) for a ``shape`` heatmap drawn with ``imshow``."""
    h, w = shape
    ax.set_xticks(np.arange(w) if indices else [])
    ax.set_yticks(np.arange(h) if indices else [])
    # Two line collections rather than a grid on minor ticks: ticks are re-laid out on every draw,
    # which made each frame of an animation several times slower.
    style = {"colors": "black", "linewidth": 1.0, "zorder": 1.5}
    ax.vlines(np.arange(0.5, w - 1, 1), -0.5, h - 0.5, **style)
    ax.hlines(np.arange(0.5, h - 1, 1), -0.5, w - 0.5, **style)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.tick_params(which="both", length=0, labelsize=8, labelcolor="0.45")
    for spine in ax.spines.values():
        spine.set_linewidth(1.2)


def _heatmap(
    ax: Axes,
    values: np.ndarray,
    *,
    cmap: Any,
    vmin: float,
    vmax: float,
    annotate: bool = True,
    fontsize: float = 14,
    indices: bool = True,
) -> Any:
    """Draw ``values`` as cells coloured by ``cmap``, the numbers written in them."""
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    _grid(ax, values.shape, indices)
    if annotate:
        for (i, j), value in np.ndenumerate(values):
            color = _text_color(image.cmap(image.norm(value)))
            ax.text(j, i, format_value(value), ha="center", va="center", fontsize=fontsize, color=color, gid="cell")
    return image


def _window(ax: Axes, top: int, left: int, height: int, width: int) -> tuple[Rectangle, Rectangle]:
    """Outline (and lightly shade) the cells ``[top:top+height, left:left+width]``; the shade and the outline."""
    from matplotlib.patches import Rectangle

    shade = ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5),
            width,
            height,
            facecolor=_WINDOW_COLOR,
            alpha=0.55,
            edgecolor="none",
            zorder=2,
        )
    )
    outline = ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5),
            width,
            height,
            fill=False,
            edgecolor=_WINDOW_EDGE,
            linewidth=3,
            zorder=3,
            gid="window",
            clip_on=False,
        )
    )
    return shade, outline


def _symmetric_range(*arrays: np.ndarray) -> float:
    bound = max(float(np.abs(a).max()) for a in arrays)
    return bound if bound > 0 else 1.0


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
    >>> import convlab as cl
    >>> from convlab import plot
    >>> fig = plot.correlation_figure(*cl.data.fig_correlation())
    >>> output = next(a for a in fig.axes if a.get_label() == "output")
    >>> [t.get_text() for t in output.texts if t.get_gid() == "cell"]
    ['19', '25', '37', '43']
    >>> plot._pyplot().close(fig)
    """
    from convlab.core.checks import check_fits

    Xa, Ka = _matrix(X, "X"), _matrix(K, "K")
    check_fits(Xa.shape, Ka.shape)
    expected = (Xa.shape[0] - Ka.shape[0] + 1, Xa.shape[1] - Ka.shape[1] + 1)
    if Y is None:
        from convlab.core.convert import to_numpy
        from convlab.core.ops import corr2d

        Ya = _matrix(to_numpy(corr2d(Xa.astype(np.float32), Ka.astype(np.float32))), "Y")
    else:
        Ya = _matrix(Y, "Y")
        if Ya.shape != expected:
            raise ValueError(
                f"Y: expected shape {expected} (X {Xa.shape} cross-correlated with K {Ka.shape}), got {Ya.shape}"
            )
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
            op = fig.add_subplot(grid[0, k], label=f"sign {k}")
            op.axis("off")
            op.text(0.5, 0.5, sign, ha="center", va="center", fontsize=34, transform=op.transAxes)
        show_equation = True
    else:
        fig = axes[0].figure
        show_equation = False

    from matplotlib.colors import ListedColormap

    plain = ListedColormap([_CELL_COLOR])
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
        terms = " + ".join(f"{format_value(Xa[a, b])}×{format_value(Ka[a, b])}" for a in range(kh) for b in range(kw))
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
    >>> from convlab import plot
    >>> X = cl.data.edge_image()
    >>> fig = plot.edge_map(X, cl.corr2d(X, cl.kernels.edge()))
    >>> [a.get_label() for a in fig.axes[:2]]
    ['input', 'output']
    >>> plot._pyplot().close(fig)
    """
    Xa, Ya = _matrix(X, "X"), _matrix(Y, "Y")
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
    La, Ta = _matrix(learned, "learned"), _matrix(true, "true")
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


# -- padding and stride (d2l 7.3): the sliding window, animated ------------------------------------

_PADDING_COLOR = "#eeeeee"  # padded cells: grey and hatched, so they never look like input
_PADDING_HATCH = "//"
_PADDING_TEXT = "0.45"


class _SlidingWindow:
    """Input (padded), kernel and output of one padded, strided correlation, drawn at one output at a time.

    The values come from convlab: the padded input from :func:`convlab.pad`
    and the output from :func:`convlab.corr2d`, both on the active backend.
    :meth:`draw` moves the highlights to output ``k`` (row-major), so the
    static figure and every frame of the animation come from the same code.
    """

    def __init__(self, X: Any, K: Any, padding: Any, stride: Any, mode: str) -> None:
        from convlab.core.checks import check_padding, check_stride
        from convlab.core.convert import to_numpy
        from convlab.core.ops import corr2d, pad

        Xa, Ka = _matrix(X, "X"), _matrix(K, "K")
        X32, K32 = Xa.astype(np.float32), Ka.astype(np.float32)
        self.padded = _matrix(to_numpy(pad(X32, padding, mode)), "X")  # pad checks padding and mode
        self.padding, self.stride = check_padding(padding), check_stride(stride)
        if mode == "zeros":  # corr2d's own zero padding
            Y = corr2d(X32, K32, padding=padding, stride=stride)
        else:
            Y = corr2d(self.padded.astype(np.float32), K32, stride=stride)
        self.input, self.kernel, self.output, self.mode = Xa, Ka, _matrix(to_numpy(Y), "Y"), mode
        self.frames = self.output.size
        """One frame per output element, row by row."""

    def window(self, k: int) -> tuple[int, int]:
        """The top-left cell, in the padded input, of the window under output ``k``."""
        i, j = divmod(k, self.output.shape[1])
        return i * self.stride[0], j * self.stride[1]

    def equation(self, k: int) -> str:
        """The sum of products that makes output ``k``, as the book's captions write it."""
        i, j = divmod(k, self.output.shape[1])
        top, left = self.window(k)
        k_h, k_w = self.kernel.shape
        patch = self.padded[top : top + k_h, left : left + k_w]
        value = format_value(self.output[i, j])
        if k_h * k_w > 9:
            return f"output[{i}, {j}]: the sum of {k_h * k_w} products = {value}"
        terms = " + ".join(
            f"{format_value(x)}×{format_value(w)}" for x, w in zip(patch.ravel(), self.kernel.ravel(), strict=True)
        )
        return f"output[{i}, {j}] = {terms} = {value}"

    def build(self, title: str | None = None) -> Figure:
        if title is not None and not isinstance(title, str):
            raise TypeError(f"title: expected a string, got {title!r}")
        plt = _pyplot()
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Rectangle

        padded, kernel, output = self.padded, self.kernel, self.output
        widths = [padded.shape[1], 0.9, kernel.shape[1], 0.9, output.shape[1]]
        rows = max(padded.shape[0], kernel.shape[0], output.shape[0])
        cell = 0.55  # inches per cell
        fig = plt.figure(figsize=(cell * sum(widths) + 0.6, cell * rows + 1.5), layout="constrained")
        grid = fig.add_gridspec(1, 5, width_ratios=widths)
        axes = [fig.add_subplot(grid[0, k], label=label) for k, label in ((0, "input"), (2, "kernel"), (4, "output"))]
        for k, sign in ((1, "⋆"), (3, "=")):
            op = fig.add_subplot(grid[0, k], label=f"sign {k}")
            op.axis("off")
            op.text(0.5, 0.5, sign, ha="center", va="center", fontsize=30, transform=op.transAxes)

        plain = ListedColormap([_CELL_COLOR])
        top, _, left, _ = self.padding
        h, w = self.input.shape
        source, kernel_ax, output_ax = axes
        _heatmap(source, padded, cmap=plain, vmin=0, vmax=1, annotate=False, indices=False)
        for (i, j), value in np.ndenumerate(padded):
            inside = top <= i < top + h and left <= j < left + w
            if not inside:
                source.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        facecolor=_PADDING_COLOR,
                        hatch=_PADDING_HATCH,
                        edgecolor="0.7",
                        linewidth=0,
                        zorder=1,
                        gid="padding",
                    )
                )
            color = "black" if inside else _PADDING_TEXT
            source.text(j, i, format_value(value), ha="center", va="center", fontsize=13, color=color, gid="cell")
        if self.padding != (0, 0, 0, 0):  # where the input itself lies
            source.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5), w, h, fill=False, linestyle="--", linewidth=2, zorder=4, gid="input-region"
                )
            )
        kind = {"zeros": "zero", "reflect": "reflect", "edge": "edge"}[self.mode]
        padded_words = f"\n{kind} padding {self.padding}" if self.padding != (0, 0, 0, 0) else ""
        source.set_title(f"input {h}×{w}{padded_words}", fontsize=11)
        _heatmap(kernel_ax, kernel, cmap=plain, vmin=0, vmax=1, fontsize=13, indices=False)
        _window(kernel_ax, 0, 0, *kernel.shape)
        kernel_ax.set_title(f"kernel {kernel.shape[0]}×{kernel.shape[1]}", fontsize=11)
        _heatmap(output_ax, output, cmap=plain, vmin=0, vmax=1, annotate=False, indices=False)
        self.output_texts = [
            output_ax.text(j, i, format_value(v), ha="center", va="center", fontsize=13, gid="cell")
            for (i, j), v in np.ndenumerate(output)
        ]
        output_ax.set_title(f"output {output.shape[0]}×{output.shape[1]}\nstride {self.stride}", fontsize=11)
        self.input_window = _window(source, 0, 0, *kernel.shape)
        self.output_window = _window(output_ax, 0, 0, 1, 1)
        self.caption = fig.supxlabel("", fontsize=11)
        self.caption.set_gid("equation")
        if title:
            fig.suptitle(title, fontsize=12)
        self.figure = fig
        return fig

    def draw(self, k: int) -> list[Any]:
        """Highlight output ``k`` and its window; show the outputs computed so far."""
        top, left = self.window(k)
        i, j = divmod(k, self.output.shape[1])
        for patch in self.input_window:
            patch.set_xy((left - 0.5, top - 0.5))
        for patch in self.output_window:
            patch.set_xy((j - 0.5, i - 0.5))
        for index, text in enumerate(self.output_texts):
            text.set_visible(index <= k)
        self.caption.set_text(self.equation(k))
        return [*self.input_window, *self.output_window, *self.output_texts, self.caption]


def _frame_index(frame: Any, frames: int) -> int:
    if not isinstance(frame, numbers.Integral) or isinstance(frame, bool):
        raise TypeError(f"frame: expected an int, got {frame!r}")
    if not 0 <= frame < frames:
        raise ValueError(f"frame: expected 0 <= frame < {frames} (one frame per output element), got {frame}")
    return int(frame)


def sliding_window_figure(
    X: Any, K: Any, *, padding: Any = 0, stride: Any = 1, mode: str = "zeros", frame: int = 0, title: str | None = None
) -> Figure:
    """One step of a padded, strided cross-correlation: output ``frame`` and the input window it reads.

    The panels are the padded input (padded cells grey and hatched, the
    input itself outlined with a dashed line), the kernel and the output;
    the window under output ``frame`` (counted row by row) is outlined in
    the input, the outputs up to it are written, and the caption gives its
    sum of products. The padded input is :func:`convlab.pad`'s and the
    output :func:`convlab.corr2d`'s, on the active backend.

    Parameters
    ----------
    X, K : array_like
        The 2-D input and kernel (lists, arrays or tensors of any backend).
    padding : int, (p_h, p_w) or (top, bottom, left, right)
    stride : int or (s_h, s_w)
    mode : {"zeros", "reflect", "edge"}
        How :func:`convlab.pad` fills the padding; ``corr2d`` itself pads with zeros.
    frame : int
        Which output element, from 0 to ``out_h * out_w - 1``.
    title : str, optional
        A title above the panels.

    Returns
    -------
    matplotlib.figure.Figure
        Axes labelled ``"input"``, ``"kernel"``, ``"output"``; padded cells
        are rectangles with ``gid="padding"``, the windows ``gid="window"``,
        the caption has ``gid="equation"``.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab import plot
    >>> X, K = np.arange(9.0).reshape(3, 3), np.arange(4.0).reshape(2, 2)
    >>> fig = plot.sliding_window_figure(X, K, padding=1, stride=(3, 2), frame=1)  # the book's figure 7.3.2
    >>> fig.get_supxlabel()
    'output[0, 1] = 0×0 + 0×1 + 1×2 + 2×3 = 8'
    >>> plot._pyplot().close(fig)
    """
    drawing = _SlidingWindow(X, K, padding, stride, mode)
    index = _frame_index(frame, drawing.frames)
    fig = drawing.build(title)
    drawing.draw(index)
    return fig


def sliding_window_animation(
    X: Any,
    K: Any,
    *,
    padding: Any = 0,
    stride: Any = 1,
    mode: str = "zeros",
    interval: int = 900,
    title: str | None = None,
) -> FuncAnimation:
    """:func:`sliding_window_figure` for every output element in turn, as an animation.

    Frame ``k`` is ``sliding_window_figure(..., frame=k)``. Show it in a
    notebook with :func:`animation_html`, write it with :func:`save_gif`.

    Parameters
    ----------
    X, K, padding, stride, mode, title
        As for :func:`sliding_window_figure`.
    interval : int
        Milliseconds between frames.

    Returns
    -------
    matplotlib.animation.FuncAnimation

    Examples
    --------
    >>> import numpy as np
    >>> from convlab import plot
    >>> X, K = np.arange(9.0).reshape(3, 3), np.arange(4.0).reshape(2, 2)
    >>> animation = plot.sliding_window_animation(X, K, padding=1, stride=(3, 2))  # the book's figure 7.3.2
    >>> html = plot.animation_html(animation)  # one frame per output element
    >>> html.count("data:image/png;base64")
    4
    """
    import matplotlib
    from matplotlib.animation import FuncAnimation

    interval = _check_interval(interval)
    drawing = _SlidingWindow(X, K, padding, stride, mode)
    fig = drawing.build(title)
    drawing.draw(drawing.frames - 1)  # the longest caption and every output shown: lay the figure out once, for all
    fig.canvas.draw()
    # Frames only move highlights and change texts, so the layout above serves them all. Without a layout
    # engine (None, not "none", which keeps a placeholder) savefig also skips its extra layout pass per frame.
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    return FuncAnimation(fig, drawing.draw, frames=drawing.frames, interval=interval, blit=False, repeat=True)


def _check_interval(interval: Any) -> int:
    """A positive number of milliseconds."""
    from convlab.core.checks import check_positive

    return int(check_positive(interval, "interval", integer=True))


def _animation_figure(animation: Any) -> Figure:
    from matplotlib.animation import Animation

    if not isinstance(animation, Animation):
        raise TypeError(f"animation: expected a matplotlib animation, got {type(animation).__name__}")
    return animation._fig  # matplotlib keeps the figure it animates here, and offers no public accessor


def animation_html(animation: Any, close: bool = True) -> str:
    """The animation as self-contained HTML with JavaScript controls (no ffmpeg needed).

    Parameters
    ----------
    animation : matplotlib.animation.Animation
    close : bool
        Close the animation's figure afterwards, so that a notebook does not
        also show its last frame as a still image.

    Returns
    -------
    str
        Display it in Jupyter with ``IPython.display.HTML(html)``.
    """
    fig = _animation_figure(animation)
    html = animation.to_jshtml()
    if close:
        _pyplot().close(fig)
    return html


def save_gif(animation: Any, path: str | os.PathLike[str], fps: float = 1.25, dpi: int = 100) -> pathlib.Path:
    """Write the animation as an animated GIF (with Pillow, which matplotlib needs anyway).

    Parameters
    ----------
    animation : matplotlib.animation.Animation
    path : str or path
        The file to write; its folder must exist.
    fps : float
        Frames per second.
    dpi : int
        Resolution of each frame.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.animation import PillowWriter

    from convlab.core.checks import check_positive

    _animation_figure(animation)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {path!r}")
    check_positive(fps, "fps")
    check_positive(dpi, "dpi", integer=True)
    target = pathlib.Path(path)
    animation.save(target, writer=PillowWriter(fps=fps), dpi=dpi, savefig_kwargs={"facecolor": "white"})
    return target


# -- channels (d2l 7.4): the book's figure 7.4.1 ----------------------------------------------------------


def _channels_of(x: Any, name: str) -> np.ndarray:
    from convlab.core.convert import as_real_array

    array = as_real_array(x, name).astype(np.float64)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name}: expected a non-empty 3-D array (channels, height, width), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got {array}")
    return array


def multi_channel_figure(X: Any, K: Any, title: str | None = None) -> Figure:
    """Cross-correlation with several input channels, as the book's figure 7.4.1.

    One row per channel: the input channel, its kernel and their
    cross-correlation; on the right, the sum of the rows, which is the
    output. The first window of every channel and the first output are
    outlined, and the caption writes out the sum that makes the first
    output. The rows are :func:`convlab.corr2d` of each channel and the
    output :func:`convlab.corr2d_multi_in`, both on the active backend.

    Parameters
    ----------
    X : array_like
        ``(c, h, w)``.
    K : array_like
        ``(c, k_h, k_w)``: one kernel per input channel.
    title : str, optional
        A title above the panels.

    Returns
    -------
    matplotlib.figure.Figure
        Axes labelled ``"input 0"``, ``"kernel 0"``, ``"channel 0"`` (that
        channel's correlation), ... and ``"output"``; the caption has
        ``gid="equation"``.

    Examples
    --------
    >>> import numpy as np
    >>> from convlab import plot
    >>> X = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    >>> K = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)])
    >>> fig = plot.multi_channel_figure(X, K)
    >>> fig.get_supxlabel()
    '(0×0 + 1×1 + 3×2 + 4×3) + (1×1 + 2×2 + 4×3 + 5×4) = 56'
    >>> plot._pyplot().close(fig)
    """
    from convlab.core.convert import to_numpy
    from convlab.core.ops import corr2d, corr2d_multi_in

    if title is not None and not isinstance(title, str):
        raise TypeError(f"title: expected a string, got {title!r}")
    Xa, Ka = _channels_of(X, "X"), _channels_of(K, "K")
    X32, K32 = Xa.astype(np.float32), Ka.astype(np.float32)
    output = _matrix(to_numpy(corr2d_multi_in(X32, K32)), "Y")  # checks that the channels and sizes fit
    partials = [_matrix(to_numpy(corr2d(x, k)), "Y") for x, k in zip(X32, K32, strict=True)]

    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    c, (h, w), (k_h, k_w) = Xa.shape[0], Xa.shape[1:], Ka.shape[1:]
    widths = [w, 0.8, k_w, 0.8, output.shape[1], 0.9, output.shape[1]]
    cell = 0.5
    fig = plt.figure(figsize=(cell * sum(widths) + 0.8, c * (cell * h + 0.6) + 1.0), layout="constrained")
    grid = fig.add_gridspec(c, 7, width_ratios=widths)
    plain = ListedColormap([_CELL_COLOR])
    for row in range(c):
        panels = (
            (0, f"input {row}", Xa[row], (k_h, k_w), f"input channel {row}"),
            (2, f"kernel {row}", Ka[row], (k_h, k_w), f"kernel {row}"),
            (4, f"channel {row}", partials[row], (1, 1), f"input {row} ⋆ kernel {row}"),
        )
        for column, label, values, window, heading in panels:
            ax = fig.add_subplot(grid[row, column], label=label)
            _heatmap(ax, values, cmap=plain, vmin=0, vmax=1, fontsize=12, indices=False)
            _window(ax, 0, 0, *window)
            ax.set_title(heading, fontsize=10)
        for column, sign in ((1, "⋆"), (3, "=")):
            op = fig.add_subplot(grid[row, column], label=f"sign {row} {column}")
            op.axis("off")
            op.text(0.5, 0.5, sign, ha="center", va="center", fontsize=24, transform=op.transAxes)
    total = fig.add_subplot(grid[:, 5], label="sign sum")
    total.axis("off")
    total.text(0.5, 0.5, "Σ →", ha="center", va="center", fontsize=22, transform=total.transAxes)
    out_ax = fig.add_subplot(grid[:, 6], label="output")
    _heatmap(out_ax, output, cmap=plain, vmin=0, vmax=1, fontsize=12, indices=False)
    _window(out_ax, 0, 0, 1, 1)
    out_ax.set_title("output", fontsize=10)

    if k_h * k_w <= 9 and c <= 3:
        groups = [
            " + ".join(
                f"{format_value(x)}×{format_value(v)}"
                for x, v in zip(Xa[r, :k_h, :k_w].ravel(), Ka[r].ravel(), strict=True)
            )
            for r in range(c)
        ]
        caption = " + ".join(f"({g})" for g in groups) + f" = {format_value(output[0, 0])}"
    else:
        caption = f"first output: the sum of {c} × {k_h * k_w} products = {format_value(output[0, 0])}"
    fig.supxlabel(caption, fontsize=11).set_gid("equation")
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


# -- the chapter's figures as files ----------------------------------------------------


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
    import convlab as cl

    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory: expected a path, got {directory!r}")
    out = pathlib.Path(directory)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"directory: {str(out)!r} exists and is not a directory")
    plt = _pyplot()
    with cl.use_backend(backend) as active:
        X, K = cl.data.fig_correlation()
        Y = cl.to_numpy(cl.corr2d(X, K))
        image = cl.data.edge_image()
        edges = cl.to_numpy(cl.corr2d(image, cl.kernels.edge()))
        result = cl.train_kernel(image, edges, kernel_size=(1, 2), lr=3e-2, num_epochs=10, verbose=False)
        name = active.name

    figures = [
        correlation_figure(X, K, Y),
        edge_map(image, edges, titles=("image X (6×8)", "corr2d(X, [[1, -1]])")),
        loss_curves(result.losses, title=f"learning the kernel on {name}: loss per epoch"),
        kernel_comparison(result.kernel, cl.kernels.edge()),
    ]
    figures[0].suptitle(f"cross-correlation ({name})", fontsize=12)
    error = np.abs(result.kernel - cl.kernels.edge()).max()
    figures[3].suptitle(f"learned kernel after 10 epochs on {name} (largest difference {error:.3g})", fontsize=11)
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
    import convlab as cl

    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory: expected a path, got {directory!r}")
    out = pathlib.Path(directory)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"directory: {str(out)!r} exists and is not a directory")
    plt = _pyplot()
    with cl.use_backend(backend) as active:
        X, K = cl.data.fig_correlation()
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


# -- LeNet (7.6) -------------------------------------------------------------------


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
    from convlab.train.records import ClassifierResult

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
    from convlab.core.convert import as_real_array
    from convlab.nn.layers import module_backend

    backend = module_backend(model, "model")
    children = backend.submodules(model)
    pictures = as_real_array(images, "images")
    if pictures.ndim == 3:
        pictures = pictures[:, None]
    if pictures.ndim != 4 or not len(pictures):
        raise ValueError(f"images: expected (N, 1, H, W) or (N, H, W) images, got shape {pictures.shape}")
    wanted = [int(index) for index in layers]
    if not wanted or any(not 0 <= index < len(children) for index in wanted):
        raise ValueError(f"layers: expected indices of the model's {len(children)} layers, got {list(layers)}")
    names = list(titles) if titles is not None else [f"image {i}" for i in range(len(pictures))]
    if len(names) != len(pictures):
        raise ValueError(f"titles: expected one per image ({len(pictures)}), got {len(names)}")
    X, maps = backend.tensor(pictures), {}
    for index, child in enumerate(children[: max(wanted) + 1]):
        X = backend.predict(child, X)
        if index in wanted:
            maps[index] = np.asarray(backend.to_numpy(X), dtype=np.float64)
    outputs = [maps[index] for index in wanted]
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
