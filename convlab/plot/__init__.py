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

One module per section of the book: ``conv_layer`` (7.2), ``padding``
(7.3), ``channels`` (7.4) and ``lenet`` (7.6), and ``files``, which writes
the chapter's figures as files; their shared cells, windows and colours are
in ``_style``. The figures draw what convlab computes: one that needs
numbers it was not given gets them from convlab's own functions (``corr2d``,
``pad``, ``train_kernel``, the model's layers) on the active backend.

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

# Re-exported beside __all__ (``x as x``): the files' names, the cells' number format, and pyplot, which the
# examples use to close their figures.
from convlab.plot._style import _pyplot as _pyplot
from convlab.plot._style import format_value as format_value
from convlab.plot.channels import multi_channel_figure
from convlab.plot.conv_layer import correlation_figure, edge_map, kernel_comparison, loss_curves
from convlab.plot.files import CHAPTER_FIGURES as CHAPTER_FIGURES
from convlab.plot.files import TEACHING_FIGURES as TEACHING_FIGURES
from convlab.plot.files import save_chapter_figures, save_teaching_figures
from convlab.plot.lenet import activations, training_curves
from convlab.plot.padding import animation_html, save_gif, sliding_window_animation, sliding_window_figure

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
