"""convlab.plot: the chapter's figures hold the chapter's numbers and are written as real PNG files."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt

import convlab as cl
from convlab import plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def panel(fig, label):
    matches = [ax for ax in fig.axes if ax.get_label() == label]
    assert len(matches) == 1, f"expected one axes labelled {label!r}, got {[a.get_label() for a in fig.axes]}"
    return matches[0]


def cells(ax):
    return [t.get_text() for t in ax.texts if t.get_gid() == "cell"]


def windows(ax):
    return [(p.get_xy(), p.get_width(), p.get_height()) for p in ax.patches if p.get_gid() == "window"]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND", f"{path.name} is truncated"
    return width, height


# -- the correlation figure ----------------------------------------------------------------


def test_correlation_figure_writes_the_books_numbers():
    X, K = cl.data.fig_correlation()
    fig = plot.correlation_figure(X, K)
    assert cells(panel(fig, "input")) == [str(v) for v in range(9)]
    assert cells(panel(fig, "kernel")) == ["0", "1", "2", "3"]
    assert cells(panel(fig, "output")) == ["19", "25", "37", "43"]
    caption = fig.supxlabel_text if hasattr(fig, "supxlabel_text") else fig._supxlabel
    assert caption.get_text().endswith("0×0 + 1×1 + 3×2 + 4×3 = 19")


def test_correlation_figure_highlights_the_first_window():
    X, K = cl.data.fig_correlation()
    fig = plot.correlation_figure(X, K)
    # imshow puts cell (i, j) at x = j, y = i, so cell borders sit at half-integers.
    assert windows(panel(fig, "input")) == [((-0.5, -0.5), 2, 2)]
    assert windows(panel(fig, "kernel")) == [((-0.5, -0.5), 2, 2)]
    assert windows(panel(fig, "output")) == [((-0.5, -0.5), 1, 1)]


def test_correlation_figure_window_follows_the_kernel_shape():
    X = np.arange(20, dtype=np.float32).reshape(4, 5)
    K = np.array([[1, 0, -1], [2, 0, -2]], dtype=np.float32)
    fig = plot.correlation_figure(X, K)
    assert windows(panel(fig, "input")) == [((-0.5, -0.5), 3, 2)]  # width 3, height 2
    expected = cl.to_numpy(cl.corr2d(X, K))
    assert cells(panel(fig, "output")) == [plot.format_value(v) for v in expected.ravel()]
    assert len(cells(panel(fig, "output"))) == 3 * 3


def test_correlation_figure_uses_a_given_output_and_axes():
    X, K = cl.data.fig_correlation()
    fig, axes = plt.subplots(1, 3)
    assert plot.correlation_figure(X, K, Y=[[1, 2], [3, 4.5]], ax=axes) is fig
    assert cells(axes[2]) == ["1", "2", "3", "4.5"]
    assert [a.get_label() for a in axes] == ["input", "kernel", "output"]


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (([1.0, 2.0, 3.0], [[1.0]]), {}, "X"),
        (([[1.0, 2.0]], [[1.0], [2.0]]), {}, "K"),
        (([["a", "b"]], [[1.0]]), {}, "X"),
        (([[1.0, 2.0]], [[1.0]]), {"Y": [[1.0]]}, "Y"),
        (([[np.nan, 2.0]], [[1.0]]), {}, "X"),
        (([[1.0, 2.0]], [[1.0]]), {"ax": "not axes"}, "ax"),
    ],
)
def test_correlation_figure_bad_input_names_the_argument(args, kwargs, name):
    with pytest.raises((TypeError, ValueError), match=rf"^{name}:"):
        plot.correlation_figure(*args, **kwargs)


def test_format_value():
    assert [plot.format_value(v) for v in (19.0, -0.0, 0.98931, -1.0, 2.5, 1e-7)] == [
        "19",
        "0",
        "0.989",
        "-1",
        "2.5",
        "0",
    ]


# -- edge map, loss curves, kernels ------------------------------------------------------------


def test_edge_map_shows_image_and_edges():
    X = cl.data.edge_image()
    Y = cl.to_numpy(cl.corr2d(X, cl.kernels.edge()))
    fig = plot.edge_map(X, Y)
    assert cells(panel(fig, "input")) == [plot.format_value(v) for v in X.ravel()]
    out = cells(panel(fig, "output"))
    assert len(out) == 6 * 7
    assert out[:7] == ["0", "1", "0", "0", "0", "-1", "0"]
    image = panel(fig, "output").get_images()[0]
    np.testing.assert_array_equal(image.get_array(), Y)
    assert image.norm.vmin == -1 and image.norm.vmax == 1  # centred on zero


def test_edge_map_bad_input():
    with pytest.raises(ValueError, match=r"^Y:"):
        plot.edge_map(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(TypeError, match=r"^titles:"):
        plot.edge_map(np.ones((2, 2)), np.ones((2, 1)), titles="one")


def test_loss_curve_data_equals_the_training_losses(capsys):
    X = cl.data.edge_image()
    result = cl.train_kernel(X, cl.corr2d(X, cl.kernels.edge()), verbose=False)
    fig = plot.loss_curves(result.losses)
    ax = panel(fig, "loss")
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 11))
    np.testing.assert_array_equal(line.get_ydata(), result.losses)
    assert ax.get_yscale() == "log"
    assert plot.loss_curves(result.losses, logy=False).axes[0].get_yscale() == "linear"


def test_loss_curves_of_several_backends():
    curves = {"numpy": [4.0, 1.0, 0.5], "torch": [4.0, 1.5, 0.25, 0.1]}
    fig = plot.loss_curves(curves)
    ax = panel(fig, "loss")
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines == curves
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["numpy", "torch"]


@pytest.mark.parametrize(
    ("curves", "match"),
    [
        ([], r"^curves: expected a non-empty"),
        ({}, r"^curves: expected at least one"),
        ({"torch": []}, r"^curves\['torch'\]:"),
        ({"jax": [1.0, float("nan")]}, r"^curves\['jax'\]: expected finite"),
        ("loss", r"^curves:"),
        ([1.0, "x"], r"^curves:"),
        (3.0, r"^curves:"),
    ],
)
def test_loss_curves_bad_input_names_the_argument(curves, match):
    with pytest.raises((TypeError, ValueError), match=match):
        plot.loss_curves(curves)


def test_kernel_comparison():
    fig = plot.kernel_comparison(np.array([[0.9893, -0.9893]]), cl.kernels.edge())
    assert cells(panel(fig, "learned")) == ["0.989", "-0.989"]
    assert cells(panel(fig, "true")) == ["1", "-1"]
    with pytest.raises(ValueError, match=r"^learned: expected the shape of true \(1, 2\)"):
        plot.kernel_comparison(np.ones((2, 2)), cl.kernels.edge())


# -- the chapter's figures as files ----------------------------------------------------------


def test_save_chapter_figures_writes_valid_pngs(tmp_path):
    directory = tmp_path / "new" / "figures"
    paths = plot.save_chapter_figures(directory)
    assert [p.name for p in paths] == list(plot.CHAPTER_FIGURES)
    assert sorted(p.name for p in directory.iterdir()) == sorted(plot.CHAPTER_FIGURES)
    for path in paths:
        width, height = png_size(path)
        assert 300 <= width <= 3000 and 200 <= height <= 2000, (path.name, width, height)
        assert path.stat().st_size > 10_000, path.name  # a drawn figure, not an empty canvas
    assert plt.get_fignums() == []  # nothing left open


def test_save_chapter_figures_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"^backend: unknown backend 'theano'"):
        plot.save_chapter_figures(tmp_path, backend="theano")
    with pytest.raises(TypeError, match=r"^directory:"):
        plot.save_chapter_figures(3)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match=r"^directory:"):
        plot.save_chapter_figures(tmp_path / "file")


def run_python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return result.stdout.strip()


def test_import_convlab_does_not_import_matplotlib():
    assert run_python("import sys, convlab, convlab.plot; print('matplotlib' in sys.modules)") == "False"


def test_headless_uses_agg(tmp_path):
    path = tmp_path / "loss.png"
    code = (
        "import matplotlib; from convlab import plot; "
        f"plot.loss_curves([2.0, 1.0, 0.5]).savefig({str(path)!r}); print(matplotlib.get_backend().lower())"
    )
    assert run_python(code) == "agg"
    assert png_size(path)[0] > 300
