"""What every figure of :mod:`convlab.plot` shares: pyplot, the colours, the cells and windows, the input checks.

matplotlib is imported inside the functions that draw, never at import time,
so that ``import convlab.plot`` stays as light as ``import convlab``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from convlab.core.convert import as_real_array

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.gridspec import SubplotSpec
    from matplotlib.patches import Rectangle

_CELL_COLOR = "#dbe9f6"  # the plain cells of the correlation figures
_WINDOW_COLOR = "#f4a259"  # the window under the highlighted output: fill ...
_WINDOW_EDGE = "#c0392b"  # ... and border
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")

_LAYOUTS = {2: "(height, width)", 3: "(channels, height, width)"}


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


# -- the figures' inputs -------------------------------------------------------------


def _array(x: Any, name: str, ndim: int = 2) -> np.ndarray:
    """``x`` (a list, an array or a tensor of any backend) as a finite, non-empty ``ndim``-D float array.

    ``ndim`` is 2 for a matrix (height, width) or 3 for channels of them.
    """
    array = as_real_array(x, name).astype(np.float64)
    if array.ndim != ndim or 0 in array.shape:
        raise ValueError(f"{name}: expected a non-empty {ndim}-D array {_LAYOUTS[ndim]}, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got {array}")
    return array


def _check_title(title: Any) -> None:
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title: expected a string, got {title!r}")


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


# -- cells, windows and signs ----------------------------------------------------------


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


def _products(xs: Any, ks: Any) -> str:
    """``x0×k0 + x1×k1 + ...``: a sum of products as the book's captions write it."""
    return " + ".join(f"{format_value(x)}×{format_value(k)}" for x, k in zip(xs, ks, strict=True))


def _plain_cells() -> ListedColormap:
    """One colour for every cell: the correlation figures show numbers, not magnitudes."""
    from matplotlib.colors import ListedColormap

    return ListedColormap([_CELL_COLOR])


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

    corner = (left - 0.5, top - 0.5)
    shade = ax.add_patch(
        Rectangle(corner, width, height, facecolor=_WINDOW_COLOR, alpha=0.55, edgecolor="none", zorder=2)
    )
    edge = {"edgecolor": _WINDOW_EDGE, "linewidth": 3, "zorder": 3, "gid": "window", "clip_on": False}
    outline = ax.add_patch(Rectangle(corner, width, height, fill=False, **edge))
    return shade, outline


def _sign(fig: Figure, where: SubplotSpec, sign: str, label: str, fontsize: float) -> Axes:
    """An empty panel with ``sign`` (``⋆``, ``=``...) in its middle, between the panels of an equation."""
    op = fig.add_subplot(where, label=label)
    op.axis("off")
    op.text(0.5, 0.5, sign, ha="center", va="center", fontsize=fontsize, transform=op.transAxes)
    return op


def _symmetric_range(*arrays: np.ndarray) -> float:
    bound = max(float(np.abs(a).max()) for a in arrays)
    return bound if bound > 0 else 1.0
