"""The figure of d2l 7.4, multiple input channels: the book's figure 7.4.1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from convlab.core import ops
from convlab.core.convert import to_numpy
from convlab.plot import _style as style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# -- what the figure draws: each channel's correlation and their sum, computed by convlab ------------


def _channel_correlations(Xa: np.ndarray, Ka: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`convlab.corr2d_multi_in` of ``(X, K)``, and :func:`convlab.corr2d` of each channel with its kernel.

    Both on the active backend; ``corr2d_multi_in`` checks that the channels and sizes fit.
    """
    X32, K32 = Xa.astype(np.float32), Ka.astype(np.float32)
    output = style._array(to_numpy(ops.corr2d_multi_in(X32, K32)), "Y")
    partials = [style._array(to_numpy(ops.corr2d(x, k)), "Y") for x, k in zip(X32, K32, strict=True)]
    return output, partials


# -- the figure ----------------------------------------------------------------------


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
    style._check_title(title)
    Xa, Ka = style._array(X, "X", ndim=3), style._array(K, "K", ndim=3)
    output, partials = _channel_correlations(Xa, Ka)

    plt = style._pyplot()
    c, (h, w), (k_h, k_w) = Xa.shape[0], Xa.shape[1:], Ka.shape[1:]
    widths = [w, 0.8, k_w, 0.8, output.shape[1], 0.9, output.shape[1]]
    cell = 0.5
    fig = plt.figure(figsize=(cell * sum(widths) + 0.8, c * (cell * h + 0.6) + 1.0), layout="constrained")
    grid = fig.add_gridspec(c, 7, width_ratios=widths)
    plain = style._plain_cells()
    for row in range(c):
        panels = (
            (0, f"input {row}", Xa[row], (k_h, k_w), f"input channel {row}"),
            (2, f"kernel {row}", Ka[row], (k_h, k_w), f"kernel {row}"),
            (4, f"channel {row}", partials[row], (1, 1), f"input {row} ⋆ kernel {row}"),
        )
        for column, label, values, window, heading in panels:
            ax = fig.add_subplot(grid[row, column], label=label)
            style._heatmap(ax, values, cmap=plain, vmin=0, vmax=1, fontsize=12, indices=False)
            style._window(ax, 0, 0, *window)
            ax.set_title(heading, fontsize=10)
        for column, sign in ((1, "⋆"), (3, "=")):
            style._sign(fig, grid[row, column], sign, label=f"sign {row} {column}", fontsize=24)
    style._sign(fig, grid[:, 5], "Σ →", label="sign sum", fontsize=22)
    out_ax = fig.add_subplot(grid[:, 6], label="output")
    style._heatmap(out_ax, output, cmap=plain, vmin=0, vmax=1, fontsize=12, indices=False)
    style._window(out_ax, 0, 0, 1, 1)
    out_ax.set_title("output", fontsize=10)

    if k_h * k_w <= 9 and c <= 3:
        groups = [style._products(Xa[r, :k_h, :k_w].ravel(), Ka[r].ravel()) for r in range(c)]
        caption = " + ".join(f"({g})" for g in groups) + f" = {style.format_value(output[0, 0])}"
    else:
        caption = f"first output: the sum of {c} × {k_h * k_w} products = {style.format_value(output[0, 0])}"
    fig.supxlabel(caption, fontsize=11).set_gid("equation")
    if title:
        fig.suptitle(title, fontsize=12)
    return fig
