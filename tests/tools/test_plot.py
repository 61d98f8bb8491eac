"""convlab.plot: the chapter's figures hold the chapter's numbers and are written as real PNG files."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from reference import correlate

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt

import convlab as cl
from convlab import plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    # Before as well as after: in random order, a test of another module (a doctest, the CLI) may have left a
    # figure open on this worker, and the checks that a function leaves nothing open must see only their own.
    plt.close("all")
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


# -- padding and stride: the sliding window ------------------------------------------------------

BOOK_X, BOOK_K = np.arange(9.0).reshape(3, 3), np.arange(4.0).reshape(2, 2)


def padding_cells(ax):
    """(row, column) of the cells drawn as padding."""
    return {(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches if p.get_gid() == "padding"}


def visible_cells(ax):
    return [t.get_text() for t in ax.texts if t.get_gid() == "cell" and t.get_visible()]


def expected_sliding_window(X, K, padding, stride, mode):
    """The padded input (numpy.pad) and the output (SciPy, float64, stride by slicing), independently of convlab."""
    top, bottom, left, right = padding
    padded = np.pad(np.asarray(X, np.float64), ((top, bottom), (left, right)), mode=mode)
    return padded, correlate(padded, K)[:: stride[0], :: stride[1]]


SLIDING_CASES = [  # X, K, padding (top, bottom, left, right), stride, convlab's mode, numpy.pad's mode
    (BOOK_X, BOOK_K, (1, 1, 1, 1), (1, 1), "zeros", "constant"),  # the book's figure 7.3.1
    (BOOK_X, BOOK_K, (1, 1, 1, 1), (3, 2), "zeros", "constant"),  # the book's figure 7.3.2
    (np.arange(20.0).reshape(4, 5) - 7, np.array([[1.0, -2.0, 0.5]]), (2, 0, 1, 3), (1, 2), "edge", "edge"),
    (np.arange(12.0).reshape(3, 4), np.ones((2, 3)), (2, 1, 0, 3), (2, 1), "reflect", "reflect"),
]


@pytest.mark.parametrize(("X", "K", "padding", "stride", "mode", "numpy_mode"), SLIDING_CASES)
def test_sliding_window_frame_k_lights_the_window_of_output_k(X, K, padding, stride, mode, numpy_mode):
    padded, Y = expected_sliding_window(X, K, padding, stride, numpy_mode)
    (k_h, k_w), (out_h, out_w) = K.shape, Y.shape
    top, _, left, _ = padding
    outside = {
        (i, j)
        for i in range(padded.shape[0])
        for j in range(padded.shape[1])
        if not (top <= i < top + X.shape[0] and left <= j < left + X.shape[1])
    }
    for k in range(out_h * out_w):
        i, j = divmod(k, out_w)
        fig = plot.sliding_window_figure(X, K, padding=padding, stride=stride, mode=mode, frame=k)
        source, output = panel(fig, "input"), panel(fig, "output")
        # The window of output (i, j) starts at padded row s_h i and column s_w j.
        assert windows(source) == [((stride[1] * j - 0.5, stride[0] * i - 0.5), k_w, k_h)]
        assert windows(output) == [((j - 0.5, i - 0.5), 1, 1)]
        assert windows(panel(fig, "kernel")) == [((-0.5, -0.5), k_w, k_h)]
        assert visible_cells(output) == [plot.format_value(v) for v in Y.ravel()[: k + 1]]
        patch = padded[stride[0] * i : stride[0] * i + k_h, stride[1] * j : stride[1] * j + k_w]
        terms = " + ".join(
            f"{plot.format_value(x)}×{plot.format_value(w)}" for x, w in zip(patch.ravel(), K.ravel(), strict=True)
        )
        assert fig.get_supxlabel() == f"output[{i}, {j}] = {terms} = {plot.format_value(Y[i, j])}"
        plt.close(fig)
    assert cells(source) == [plot.format_value(v) for v in padded.ravel()]
    assert padding_cells(source) == outside


def test_sliding_window_book_captions():
    # The sums printed under the book's figures 7.3.1 and 7.3.2.
    first = plot.sliding_window_figure(BOOK_X, BOOK_K, padding=1)
    assert first.get_supxlabel() == "output[0, 0] = 0×0 + 0×1 + 0×2 + 0×3 = 0"
    assert cells(panel(first, "output")) == [
        plot.format_value(v)
        for v in expected_sliding_window(BOOK_X, BOOK_K, (1, 1, 1, 1), (1, 1), "constant")[1].ravel()
    ]
    strided = [plot.sliding_window_figure(BOOK_X, BOOK_K, padding=1, stride=(3, 2), frame=k) for k in (1, 2)]
    assert strided[0].get_supxlabel() == "output[0, 1] = 0×0 + 0×1 + 1×2 + 2×3 = 8"
    assert strided[1].get_supxlabel() == "output[1, 0] = 0×0 + 6×1 + 0×2 + 0×3 = 6"
    assert cells(panel(strided[0], "output")) == ["0", "8", "6", "8"]


def test_sliding_window_draws_corr2d_on_the_active_backend(backend, monkeypatch):
    fig = plot.sliding_window_figure(BOOK_X, BOOK_K, padding=1, stride=2)
    assert cells(panel(fig, "output")) == ["0", "8", "21", "43"]  # corr2d's docstring example, on this backend
    # And the numbers drawn are corr2d's, not recomputed by the figure: a shifted corr2d shows through.
    from convlab.core import ops

    original = ops.corr2d
    monkeypatch.setattr(ops, "corr2d", lambda *args, **kwargs: cl.to_numpy(original(*args, **kwargs)) + 100)
    fig = plot.sliding_window_figure(BOOK_X, BOOK_K, padding=1, stride=2, frame=3)
    assert cells(panel(fig, "output")) == ["100", "108", "121", "143"]


def test_sliding_window_animation_runs_every_frame(tmp_path):
    from matplotlib.animation import FuncAnimation

    animation = plot.sliding_window_animation(BOOK_X, BOOK_K, padding=1, stride=(3, 2))
    assert isinstance(animation, FuncAnimation)
    (number,) = plt.get_fignums()
    fig = plt.figure(number)
    html = plot.animation_html(animation)
    assert html.count("data:image/png;base64") == 4  # one frame per output element
    assert "<script" in html
    assert plt.get_fignums() == []  # closed, so a notebook shows no still image besides
    # Rendering ran the frames in order: the figure is left at the last output and its window.
    assert windows(panel(fig, "input")) == [((2 - 0.5, 3 - 0.5), 2, 2)]
    assert visible_cells(panel(fig, "output")) == ["0", "8", "6", "8"]

    path = plot.save_gif(plot.sliding_window_animation(BOOK_X, BOOK_K, padding=1), tmp_path / "padding.gif")
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 16
        assert gif.size[0] > 300


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"padding": -1}, ValueError, r"^padding: expected non-negative sizes"),
        ({"padding": 3, "mode": "reflect"}, ValueError, r"^padding: mode='reflect' adds at most height - 1 = 2"),
        ({"mode": "wrap"}, ValueError, r"^mode: expected one of 'zeros', 'reflect', 'edge'"),
        ({"stride": 0}, ValueError, r"^stride: expected positive sizes"),
        ({"frame": 4}, ValueError, r"^frame: expected 0 <= frame < 4 \(one frame per output element\), got 4"),
        ({"frame": 1.0}, TypeError, r"^frame: expected an int"),
        ({"title": 3}, TypeError, r"^title: expected a string, got 3"),
    ],
)
def test_sliding_window_bad_input_names_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot.sliding_window_figure(BOOK_X, BOOK_K, **kwargs)


def test_animation_helpers_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"^K: expected a kernel no larger than the input X \(3, 3\)"):
        plot.sliding_window_animation(BOOK_X, np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"^K: expected a kernel no larger than the padded input \(5, 5\)"):
        plot.sliding_window_animation(BOOK_X, np.ones((6, 6)), padding=1)
    with pytest.raises(ValueError, match=r"^interval: expected a positive int"):
        plot.sliding_window_animation(BOOK_X, BOOK_K, interval=0)
    with pytest.raises(TypeError, match=r"^animation: expected a matplotlib animation, got Figure"):
        plot.animation_html(plt.figure())
    animation = plot.sliding_window_animation(BOOK_X, BOOK_K)
    with pytest.raises(TypeError, match=r"^path: expected a file path"):
        plot.save_gif(animation, 3)
    with pytest.raises(ValueError, match=r"^fps: expected a positive number"):
        plot.save_gif(animation, tmp_path / "x.gif", fps=0)
    plot.animation_html(animation)  # rendered: no warning about an animation deleted unseen


# -- channels: the book's figure 7.4.1 ------------------------------------------------------------


def channels_example():
    return np.stack([BOOK_X, BOOK_X + 1]), np.stack([BOOK_K, BOOK_K + 1])


def test_multi_channel_figure_is_the_books_figure():
    X, K = channels_example()
    fig = plot.multi_channel_figure(X, K)
    assert cells(panel(fig, "output")) == ["56", "72", "104", "120"]
    assert cells(panel(fig, "channel 0")) == ["19", "25", "37", "43"]
    assert cells(panel(fig, "input 1")) == [str(v) for v in range(1, 10)]
    assert cells(panel(fig, "kernel 1")) == ["1", "2", "3", "4"]
    assert fig.get_supxlabel() == "(0×0 + 1×1 + 3×2 + 4×3) + (1×1 + 2×2 + 4×3 + 5×4) = 56"
    assert windows(panel(fig, "input 0")) == [((-0.5, -0.5), 2, 2)]
    assert windows(panel(fig, "output")) == [((-0.5, -0.5), 1, 1)]


def test_multi_channel_sums_drawn_equal_the_computed_output(backend):
    rng = np.random.default_rng(8)
    X, K = rng.integers(-3, 4, (3, 4, 5)).astype(np.float32), rng.integers(-2, 3, (3, 2, 3)).astype(np.float32)
    fig = plot.multi_channel_figure(X, K)
    partials = [correlate(x, k) for x, k in zip(X, K, strict=True)]  # SciPy per channel, float64
    for c, expected in enumerate(partials):
        assert cells(panel(fig, f"channel {c}")) == [plot.format_value(v) for v in expected.ravel()]
    total = sum(partials)
    assert cells(panel(fig, "output")) == [plot.format_value(v) for v in total.ravel()]
    np.testing.assert_allclose(cl.to_numpy(cl.corr2d_multi_in(X, K)), total, atol=1e-4)
    drawn = [float(t) for t in cells(panel(fig, "output"))]
    summed = np.sum([[float(t) for t in cells(panel(fig, f"channel {c}"))] for c in range(3)], axis=0)
    np.testing.assert_allclose(drawn, summed)  # the picture adds up
    caption = fig.get_supxlabel()
    assert caption.count("(") == 3 and caption.endswith(f"= {plot.format_value(total[0, 0])}")


def test_multi_channel_figure_bad_input():
    X, K = channels_example()
    with pytest.raises(ValueError, match=r"^X: expected a non-empty 3-D array \(channels, height, width\)"):
        plot.multi_channel_figure(BOOK_X, K)
    with pytest.raises(ValueError, match=r"^K: expected 2 input channels, as X has, got 3"):
        plot.multi_channel_figure(X, np.ones((3, 2, 2)))
    with pytest.raises(ValueError, match=r"^K: expected a kernel no larger than the input X"):
        plot.multi_channel_figure(X, np.ones((2, 4, 4)))
    with pytest.raises(TypeError, match=r"^title: expected a string"):
        plot.multi_channel_figure(X, K, title=["a"])
    assert plot.multi_channel_figure(X, K, title="figure 7.4.1").get_suptitle() == "figure 7.4.1"


# -- the teaching figures as files ----------------------------------------------------------------


def test_save_teaching_figures_writes_gifs_and_a_png(tmp_path):
    from PIL import Image

    paths = plot.save_teaching_figures(tmp_path / "teaching")
    assert [p.name for p in paths] == list(plot.TEACHING_FIGURES)
    frames = {}
    for path in paths[:2]:
        assert path.read_bytes()[:6] == b"GIF89a", path.name
        with Image.open(path) as gif:
            frames[path.name] = gif.n_frames
    assert frames == {"padding.gif": 16, "stride.gif": 4}  # 4x4 and 2x2 outputs
    width, height = png_size(paths[2])
    assert 600 <= width <= 3000 and 400 <= height <= 2000
    assert plt.get_fignums() == []
    with pytest.raises(TypeError, match=r"^directory:"):
        plot.save_teaching_figures(3)


def test_demo_plot_writes_the_teaching_figures_too(tmp_path, capsys):
    from convlab import cli

    assert cli.main(["demo", "--backend", "numpy", "--plot", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert names == set(plot.CHAPTER_FIGURES) | set(plot.TEACHING_FIGURES)
    out = capsys.readouterr().out
    assert "kernel 3x5, padding (0, 1), stride (3, 4): (2, 2)" in out
    assert all(str(tmp_path / name) in out for name in plot.TEACHING_FIGURES)
