"""The figures of d2l 7.3, padding and stride: the sliding window, as a still figure or an animation."""

from __future__ import annotations

import dataclasses
import numbers
import os
import pathlib
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab.core import ops
from convlab.core import padding as padding_ops
from convlab.core.checks import check_padding, check_positive, check_stride
from convlab.core.convert import to_numpy
from convlab.plot._style import (
    _array,
    _check_title,
    _heatmap,
    _plain_cells,
    _products,
    _pyplot,
    _sign,
    _window,
    format_value,
)

if TYPE_CHECKING:
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

_PADDING_COLOR = "#eeeeee"  # padded cells: grey and hatched, so they never look like input
_PADDING_HATCH = "//"
_PADDING_TEXT = "0.45"

# -- what the figures draw: one padded, strided correlation, computed by convlab ---------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _PaddedCorrelation:
    input: np.ndarray
    kernel: np.ndarray
    padded: np.ndarray
    """The input with its padding, as :func:`convlab.pad` makes it."""
    output: np.ndarray
    padding: tuple[int, int, int, int]
    stride: tuple[int, int]
    mode: str


def _padded_correlation(X: Any, K: Any, padding: Any, stride: Any, mode: str) -> _PaddedCorrelation:
    """``X`` padded and cross-correlated with ``K``, by :func:`convlab.pad` and :func:`convlab.corr2d` (active backend).

    ``padding_ops.pad`` and ``ops.corr2d`` are looked up at each call, so that the
    figures show whatever convlab computes now, never numbers of their own.
    """
    Xa, Ka = _array(X, "X"), _array(K, "K")
    X32, K32 = Xa.astype(np.float32), Ka.astype(np.float32)
    padded = _array(to_numpy(padding_ops.pad(X32, padding, mode)), "X")  # pad checks padding and mode
    padding, stride = check_padding(padding), check_stride(stride)
    if mode == "zeros":  # corr2d's own zero padding
        Y = ops.corr2d(X32, K32, padding=padding, stride=stride)
    else:
        Y = ops.corr2d(padded.astype(np.float32), K32, stride=stride)
    return _PaddedCorrelation(Xa, Ka, padded, _array(to_numpy(Y), "Y"), padding, stride, mode)


def _frame_index(frame: Any, frames: int) -> int:
    if not isinstance(frame, numbers.Integral) or isinstance(frame, bool):
        raise TypeError(f"frame: expected an int, got {frame!r}")
    if not 0 <= frame < frames:
        raise ValueError(f"frame: expected 0 <= frame < {frames} (one frame per output element), got {frame}")
    return int(frame)


def _check_interval(interval: Any) -> int:
    """A positive number of milliseconds."""
    return int(check_positive(interval, "interval", integer=True))


def _animation_figure(animation: Any) -> Figure:
    from matplotlib.animation import Animation

    if not isinstance(animation, Animation):
        raise TypeError(f"animation: expected a matplotlib animation, got {type(animation).__name__}")
    return animation._fig  # matplotlib keeps the figure it animates here, and offers no public accessor


# -- the drawing ---------------------------------------------------------------------------------


class _SlidingWindow:
    """Input (padded), kernel and output of one padded, strided correlation, drawn at one output at a time.

    :meth:`draw` moves the highlights to output ``k`` (row-major), so the
    static figure and every frame of the animation come from the same code.
    """

    def __init__(self, values: _PaddedCorrelation) -> None:
        self.values = values
        self.frames = values.output.size
        """One frame per output element, row by row."""

    def window(self, k: int) -> tuple[int, int]:
        """The top-left cell, in the padded input, of the window under output ``k``."""
        i, j = divmod(k, self.values.output.shape[1])
        return i * self.values.stride[0], j * self.values.stride[1]

    def equation(self, k: int) -> str:
        """The sum of products that makes output ``k``, as the book's captions write it."""
        i, j = divmod(k, self.values.output.shape[1])
        top, left = self.window(k)
        kernel = self.values.kernel
        k_h, k_w = kernel.shape
        value = format_value(self.values.output[i, j])
        if k_h * k_w > 9:
            return f"output[{i}, {j}]: the sum of {k_h * k_w} products = {value}"
        patch = self.values.padded[top : top + k_h, left : left + k_w]
        return f"output[{i}, {j}] = {_products(patch.ravel(), kernel.ravel())} = {value}"

    def build(self, title: str | None = None) -> Figure:
        _check_title(title)
        plt = _pyplot()
        from matplotlib.patches import Rectangle

        padded, kernel, output = self.values.padded, self.values.kernel, self.values.output
        padding, stride = self.values.padding, self.values.stride
        widths = [padded.shape[1], 0.9, kernel.shape[1], 0.9, output.shape[1]]
        rows = max(padded.shape[0], kernel.shape[0], output.shape[0])
        cell = 0.55  # inches per cell
        fig = plt.figure(figsize=(cell * sum(widths) + 0.6, cell * rows + 1.5), layout="constrained")
        grid = fig.add_gridspec(1, 5, width_ratios=widths)
        axes = [fig.add_subplot(grid[0, k], label=label) for k, label in ((0, "input"), (2, "kernel"), (4, "output"))]
        for k, sign in ((1, "⋆"), (3, "=")):
            _sign(fig, grid[0, k], sign, label=f"sign {k}", fontsize=30)

        plain = _plain_cells()
        top, _, left, _ = padding
        h, w = self.values.input.shape
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
        if padding != (0, 0, 0, 0):  # where the input itself lies
            source.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5), w, h, fill=False, linestyle="--", linewidth=2, zorder=4, gid="input-region"
                )
            )
        kind = {"zeros": "zero", "reflect": "reflect", "edge": "edge"}[self.values.mode]
        padded_words = f"\n{kind} padding {padding}" if padding != (0, 0, 0, 0) else ""
        source.set_title(f"input {h}×{w}{padded_words}", fontsize=11)
        _heatmap(kernel_ax, kernel, cmap=plain, vmin=0, vmax=1, fontsize=13, indices=False)
        _window(kernel_ax, 0, 0, *kernel.shape)
        kernel_ax.set_title(f"kernel {kernel.shape[0]}×{kernel.shape[1]}", fontsize=11)
        _heatmap(output_ax, output, cmap=plain, vmin=0, vmax=1, annotate=False, indices=False)
        self.output_texts = [
            output_ax.text(j, i, format_value(v), ha="center", va="center", fontsize=13, gid="cell")
            for (i, j), v in np.ndenumerate(output)
        ]
        output_ax.set_title(f"output {output.shape[0]}×{output.shape[1]}\nstride {stride}", fontsize=11)
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
        i, j = divmod(k, self.values.output.shape[1])
        for patch in self.input_window:
            patch.set_xy((left - 0.5, top - 0.5))
        for patch in self.output_window:
            patch.set_xy((j - 0.5, i - 0.5))
        for index, text in enumerate(self.output_texts):
            text.set_visible(index <= k)
        self.caption.set_text(self.equation(k))
        return [*self.input_window, *self.output_window, *self.output_texts, self.caption]


# -- the figures ---------------------------------------------------------------------


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
    drawing = _SlidingWindow(_padded_correlation(X, K, padding, stride, mode))
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
    drawing = _SlidingWindow(_padded_correlation(X, K, padding, stride, mode))
    fig = drawing.build(title)
    drawing.draw(drawing.frames - 1)  # the longest caption and every output shown: lay the figure out once, for all
    fig.canvas.draw()
    # Frames only move highlights and change texts, so the layout above serves them all. Without a layout
    # engine (None, not "none", which keeps a placeholder) savefig also skips its extra layout pass per frame.
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    return FuncAnimation(fig, drawing.draw, frames=drawing.frames, interval=interval, blit=False, repeat=True)


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

    _animation_figure(animation)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {path!r}")
    check_positive(fps, "fps")
    check_positive(dpi, "dpi", integer=True)
    target = pathlib.Path(path)
    animation.save(target, writer=PillowWriter(fps=fps), dpi=dpi, savefig_kwargs={"facecolor": "white"})
    return target
