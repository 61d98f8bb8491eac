"""Section 7.3, padding and stride, on every backend: cl.pad, the padded and strided oracle, the exercises.

References are independent of convlab: ``numpy.pad``, ``scipy.signal.correlate2d`` in float64,
plain float64 loops, and a framework's own layers (Keras, PyTorch) where installed. The book's
four shapes are checked in tests/chapter/test_conv_layer.py, with its zero-padded 2-D oracle; this file adds
the other padding modes, channels, the exercises and where the TensorFlow tab differs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import correlate

import convlab as cl
from conftest import load_or_skip
from convlab.core import ops
from convlab.core import padding as padding_module

METHODS = ["loop", "vectorized", "native", "auto"]
MODES = {"zeros": "constant", "reflect": "reflect", "edge": "edge"}
"""convlab's mode -> numpy.pad's."""
SLOW_OK = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PER_METHOD = settings(SLOW_OK, max_examples=10)
"""For the tests run once per method: the loop method is the book's Python loop, slow on eager frameworks."""


def numpy_pad(X, padding, mode):
    """numpy.pad of the last two axes; ``padding`` as convlab takes it."""
    top, bottom, left, right = cl.core.checks.check_padding(padding)
    X = np.asarray(X, np.float64)
    widths = [(0, 0)] * (X.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(X, widths, mode=MODES[mode])


def padding_forms(draw, sides):
    """An int, a pair or a quadruple, equal to ``sides`` (top, bottom, left, right) when expanded."""
    top, bottom, left, right = sides
    forms = [sides]
    if top == bottom and left == right:
        forms.append((top, left))
        if top == left:
            forms.append(top)
    return draw(st.sampled_from(forms))


@st.composite
def pad_case(draw):
    mode = draw(st.sampled_from(sorted(MODES)))
    ndim = draw(st.sampled_from([2, 3, 4]))
    leading = tuple(draw(st.integers(1, 3)) for _ in range(ndim - 2))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    limit_h, limit_w = (h - 1, w - 1) if mode == "reflect" else (4, 4)
    sides = (
        draw(st.integers(0, limit_h)),
        draw(st.integers(0, limit_h)),
        draw(st.integers(0, limit_w)),
        draw(st.integers(0, limit_w)),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal((*leading, h, w)).astype(np.float32), padding_forms(draw, sides), mode


# -- cl.pad ----------------------------------------------------------------------------------------


@SLOW_OK
@given(case=pad_case())
def test_pad_equals_numpy_pad(backend, case):
    X, padding, mode = case
    got = cl.to_numpy(cl.pad(X, padding, mode))
    # Each element is one input value copied (plus exact zeros): equality, not closeness.
    np.testing.assert_array_equal(got, numpy_pad(X, padding, mode).astype(np.float32))


def test_pad_book_style_examples(backend):
    X = np.arange(1.0, 7.0).reshape(2, 3)
    assert cl.to_numpy(cl.pad(X, 1)).tolist() == [[0, 0, 0, 0, 0], [0, 1, 2, 3, 0], [0, 4, 5, 6, 0], [0, 0, 0, 0, 0]]
    assert cl.to_numpy(cl.pad(X, (0, 2), "reflect")).tolist() == [[3, 2, 1, 2, 3, 2, 1], [6, 5, 4, 5, 6, 5, 4]]
    assert cl.to_numpy(cl.pad(X, (1, 0, 0, 1), "edge")).tolist() == [[1, 2, 3, 3], [1, 2, 3, 3], [4, 5, 6, 6]]


def test_pad_keeps_infinities_and_nans_in_place(backend):
    # Zeros times one and additions of zero: a non-finite value stays where it is and spreads nowhere.
    X = np.array([[1.0, np.inf, 2.0], [np.nan, 3.0, -np.inf]], np.float32)
    for mode in MODES:
        np.testing.assert_array_equal(cl.to_numpy(cl.pad(X, (1, 1, 2, 1), mode)), numpy_pad(X, (1, 1, 2, 1), mode))


def test_pad_zero_padding_returns_the_input_unchanged(backend):
    X = cl.tensor(np.arange(6.0).reshape(2, 3))
    for mode in MODES:
        np.testing.assert_array_equal(cl.to_numpy(cl.pad(X, 0, mode)), cl.to_numpy(X))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_pad_is_differentiable(backend, mode):
    rng = np.random.default_rng(3)
    X, weights = rng.standard_normal((2, 2, 3)), backend.tensor(rng.standard_normal((2, 4, 6)))
    # A weighted sum: each padded element's weight lands on the input element it copies.
    # cl.tensor: gradcheck computes in float64, and TensorFlow refuses to multiply it by the float32 weights.
    f = lambda x: backend.sum(cl.pad(x, (1, 1, 2, 1), mode) * cl.tensor(weights))  # noqa: E731
    result = cl.gradcheck(f, X, raise_exception=False)
    assert result.passed, result.mismatches


def test_pad_gradient_counts_the_copies(backend):
    # d sum(pad(X)) / dX[i, j] is how many times X[i, j] appears in the padded array: numpy.pad of
    # an index array counts them independently.
    X = np.random.default_rng(0).standard_normal((3, 4))
    for mode in MODES:
        _, (grad,) = backend.grad(lambda x, mode=mode: backend.sum(cl.pad(x, (2, 1, 3, 2), mode)), X)
        if mode == "zeros":
            np.testing.assert_array_equal(grad, np.ones((3, 4)))
            continue
        indices = numpy_pad(np.arange(12.0).reshape(3, 4), (2, 1, 3, 2), mode).astype(int)
        np.testing.assert_array_equal(grad, np.bincount(indices.ravel(), minlength=12).reshape(3, 4))


@pytest.mark.parametrize(
    ("X", "padding", "mode", "error", "message"),
    [
        (np.ones((3, 3)), -1, "zeros", ValueError, r"^padding: expected non-negative sizes, got -1"),
        (np.ones((3, 3)), (1, -2), "edge", ValueError, r"^padding: expected non-negative sizes"),
        (np.ones((3, 3)), (1, 2, 3), "zeros", TypeError, r"^padding: expected an int, \(p_h, p_w\)"),
        (np.ones((3, 3)), 1.5, "zeros", TypeError, r"^padding: expected an int"),
        (
            np.ones((3, 4)),
            (3, 0),
            "reflect",
            ValueError,
            r"^padding: mode='reflect' adds at most height - 1 = 2 rows and width - 1 = 3 columns on a side "
            r"of an input of height 3 and width 4, got \(top, bottom, left, right\) = \(3, 3, 0, 0\)",
        ),
        (np.ones((3, 4)), (0, 0, 0, 4), "reflect", ValueError, r"^padding: mode='reflect' adds at most"),
        (np.ones((1, 4)), (1, 0), "reflect", ValueError, r"^padding: mode='reflect' adds at most height - 1 = 0"),
        (np.ones((3, 3)), 1, "mirror", ValueError, r"^mode: expected one of 'zeros', 'reflect', 'edge', got 'mirror'"),
        (np.ones((3, 3)), 1, "constant", ValueError, r"^mode: expected one of"),
        (np.ones(3), 1, "zeros", ValueError, r"^X: expected a non-empty 2-D \(height, width\), 3-D"),
        (np.ones((1, 1, 1, 2, 2)), 1, "zeros", ValueError, r"^X: .*got shape \(1, 1, 1, 2, 2\)"),
        (np.ones((0, 3)), 1, "edge", ValueError, r"^X: expected a non-empty"),
        ([["a", "b"]], 1, "zeros", TypeError, r"^X: expected an array of real numbers"),
    ],
)
def test_pad_bad_input_names_the_argument(X, padding, mode, error, message):
    with pytest.raises(error, match=message):
        cl.pad(X, padding, mode)


def test_reflect_as_wide_as_allowed_matches_numpy():
    X = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(cl.to_numpy(cl.pad(X, (2, 3), "reflect")), numpy_pad(X, (2, 3), "reflect"))


def test_corr2d_zero_padding_goes_through_pad(monkeypatch):
    # One implementation of padding: every operation that pads in the core, and cl.pad, asks padding._padded.
    calls = []
    original = padding_module._padded

    def spy(backend, X, padding, mode):
        calls.append((tuple(X.shape), padding, mode))
        return original(backend, X, padding, mode)

    monkeypatch.setattr(padding_module, "_padded", spy)
    monkeypatch.setattr(ops, "_padded", spy)  # corr2d's own name for it
    X, K = cl.data.fig_correlation()
    for method in ("loop", "vectorized"):
        calls.clear()
        assert cl.to_numpy(cl.corr2d(X, K, method, padding=(1, 0, 2, 1))).shape == (3, 5)
        assert calls == [((3, 3), (1, 0, 2, 1), "zeros")], method
    calls.clear()
    cl.pad(X, 1, "edge")
    assert calls == [((3, 3), (1, 1, 1, 1), "edge")]


def test_pad_in_a_bound_module():
    import convlab.numpy as cnp

    assert cl.to_numpy(cnp.pad([[1, 2]], (0, 1), "reflect")).tolist() == [[2, 1, 2, 1]]


# -- the oracle: every padding mode, channels, strides, every method -------------------------------


@st.composite
def channel_case(draw):
    mode = draw(st.sampled_from(sorted(MODES)))
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    limit_h, limit_w = (h - 1, w - 1) if mode == "reflect" else (3, 3)
    padding = tuple(draw(st.integers(0, limit)) for limit in (limit_h, limit_h, limit_w, limit_w))
    kh = draw(st.integers(1, h + padding[0] + padding[1]))
    kw = draw(st.integers(1, w + padding[2] + padding[3]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((c, h, w)).astype(np.float32)
    return X, rng.standard_normal((c, kh, kw)).astype(np.float32), padding, stride, mode


def channel_oracle(X, K, padding, stride, mode):
    """Per channel: numpy.pad, scipy's float64 correlate2d, stride by slicing."""
    padded = numpy_pad(X, padding, mode)
    return np.stack([correlate(p, k)[:: stride[0], :: stride[1]] for p, k in zip(padded, K, strict=True)])


@pytest.mark.parametrize("method", METHODS)
@PER_METHOD
@given(case=channel_case())
def test_padded_strided_channels_match_scipy(backend, method, case):
    X, K, padding, stride, mode = case
    expected = channel_oracle(X, K, padding, stride, mode)
    padded = cl.pad(X, padding, mode)  # (c, h', w') on the backend, fed to corr2d channel by channel
    per_channel = np.stack([cl.to_numpy(cl.corr2d(padded[c], K[c], method, stride=stride)) for c in range(X.shape[0])])
    np.testing.assert_allclose(per_channel, expected, rtol=1e-4, atol=1e-4)
    if mode == "zeros":  # corr2d's own padding is the same zero padding
        own = np.stack(
            [cl.to_numpy(cl.corr2d(X[c], K[c], method, padding=padding, stride=stride)) for c in range(X.shape[0])]
        )
        np.testing.assert_allclose(own, expected, rtol=1e-4, atol=1e-4)
    if stride == (1, 1):  # summed over the channels: the multi-input correlation of section 7.4
        summed = cl.to_numpy(cl.corr2d_multi_in(padded, K))
        np.testing.assert_allclose(summed, expected.sum(axis=0), rtol=1e-4, atol=1e-4)


# -- exercise 1: the output shape of the last example ------------------------------------------------

EXERCISE_SETTINGS = [  # input, kernel, padding, stride: the book's examples and the exercise's variations
    ((8, 8), (3, 5), (0, 1), (3, 4)),
    ((8, 8), (3, 5), 0, (3, 4)),
    ((8, 8), (3, 3), (0, 1, 0, 1), 2),
    ((7, 9), (2, 4), (1, 0, 2, 1), (2, 3)),
    ((5, 5), (5, 5), 2, 1),
    ((6, 3), (1, 1), 0, (5, 2)),
]


def by_hand(input_hw, kernel, padding, stride):
    """floor((n - k + p_total + s) / s), written out per axis."""
    top, bottom, left, right = cl.core.checks.check_padding(padding)
    s_h, s_w = cl.core.checks.check_stride(stride)
    (n_h, n_w), (k_h, k_w) = input_hw, kernel
    return (n_h - k_h + top + bottom + s_h) // s_h, (n_w - k_w + left + right + s_w) // s_w


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("input_hw, kernel, padding, stride", EXERCISE_SETTINGS)
def test_exercise_output_shapes_are_measured(backend, method, input_hw, kernel, padding, stride):
    formula = cl.conv_output_shape(input_hw, kernel, padding=padding, stride=stride)
    assert formula == by_hand(input_hw, kernel, padding, stride)
    X = np.random.default_rng(0).standard_normal(input_hw).astype(np.float32)
    Y = cl.to_numpy(cl.corr2d(X, np.ones(kernel, np.float32), method, padding=padding, stride=stride))
    assert Y.shape == formula


def test_exercise_1_by_hand():
    # (8 - 3 + 0 + 3) // 3 = 2 rows and (8 - 5 + 2 + 4) // 4 = 2 columns, as the book's last example prints.
    assert cl.conv_output_shape((8, 8), (3, 5), padding=(0, 1), stride=(3, 4)) == (2, 2)


# -- where the book's TensorFlow tab differs ---------------------------------------------------------


def test_tensorflow_tabs_valid_padding_is_convlabs_padding_0(backend):
    # The tab cannot ask Keras for padding (0, 1), so it uses padding='valid': one column fewer.
    X = np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)
    K = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    valid = cl.to_numpy(cl.corr2d(X, K, padding=0, stride=(3, 4)))
    assert valid.shape == (2, 1)
    np.testing.assert_allclose(valid, correlate(X, K)[::3, ::4], rtol=1e-4, atol=1e-4)


def test_keras_same_and_valid_are_convlab_paddings():
    """Keras's own layers: 'same' at stride 2 pads only the bottom and right; 'valid' pads nothing."""
    load_or_skip("tensorflow")
    import keras

    rng = np.random.default_rng(4)
    X = rng.standard_normal((8, 8)).astype(np.float32)

    def keras_conv(K, padding, strides):
        layer = keras.layers.Conv2D(1, K.shape, padding=padding, strides=strides, use_bias=False)
        layer.build((1, 8, 8, 1))
        layer.set_weights([K[:, :, None, None]])
        return np.asarray(layer(X[None, :, :, None]))[0, :, :, 0]

    K3 = rng.standard_normal((3, 3)).astype(np.float32)
    same = keras_conv(K3, "same", 2)
    with cl.use_backend("numpy"):
        np.testing.assert_allclose(same, cl.to_numpy(cl.corr2d(X, K3, padding=(0, 1, 0, 1), stride=2)), atol=1e-5)
        symmetric = cl.to_numpy(cl.corr2d(X, K3, padding=1, stride=2))  # PyTorch's padding=1
        assert same.shape == symmetric.shape == (4, 4)
        assert not np.allclose(same, symmetric)  # same shape, other windows

        K35 = rng.standard_normal((3, 5)).astype(np.float32)
        valid = keras_conv(K35, "valid", (3, 4))
        np.testing.assert_allclose(valid, cl.to_numpy(cl.corr2d(X, K35, stride=(3, 4))), atol=1e-5)
        assert valid.shape == (2, 1)


# -- exercise 2: a stride of 2 on audio halves the sampling rate -------------------------------------


def test_stride_2_on_a_signal_keeps_every_second_sample_and_doubles_frequencies(backend):
    n, cycles = 256, 10  # a tone of 10 cycles over 256 samples
    t = np.arange(n)
    tone = np.sin(2 * np.pi * cycles * t / n).astype(np.float32)[None, :]
    smooth = np.array([[0.25, 0.5, 0.25]], np.float32)
    strided = cl.to_numpy(cl.corr2d(tone, smooth, stride=(1, 2)))[0]
    full = correlate(tone, smooth)[0]
    np.testing.assert_allclose(strided, full[::2], rtol=1e-4, atol=1e-5)
    # Half the samples for the same 10 cycles: per sample, the tone is now twice as fast.
    spectrum = np.abs(np.fft.rfft(strided - strided.mean()))
    assert int(np.argmax(spectrum)) == cycles  # still 10 cycles, now over 127 samples
    assert strided.size == (n - 3) // 2 + 1


# -- exercise 6: a stride of 1/2 as a transposed convolution -----------------------------------------


def scatter_add(X, K, stride, cut):
    """The transposed convolution by its definition: each input pixel adds a scaled kernel, in float64."""
    X, K = np.asarray(X, np.float64), np.asarray(K, np.float64)
    (h, w), (kh, kw), (sh, sw) = X.shape, K.shape, stride
    Y = np.zeros((sh * (h - 1) + kh, sw * (w - 1) + kw))
    for i in range(h):
        for j in range(w):
            Y[sh * i : sh * i + kh, sw * j : sw * j + kw] += X[i, j] * K
    top, bottom, left, right = cut
    return Y[top : Y.shape[0] - bottom, left : Y.shape[1] - right]


@st.composite
def transpose_case(draw):
    h, w, kh, kw = (draw(st.integers(1, 5)) for _ in range(4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    full_h, full_w = stride[0] * (h - 1) + kh, stride[1] * (w - 1) + kw
    top, left = draw(st.integers(0, full_h - 1)), draw(st.integers(0, full_w - 1))
    cut = (top, draw(st.integers(0, full_h - 1 - top)), left, draw(st.integers(0, full_w - 1 - left)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (
        rng.standard_normal((h, w)).astype(np.float32),
        rng.standard_normal((kh, kw)).astype(np.float32),
        stride,
        cut,
    )


def test_insert_zeros_matches_strided_assignment(backend):
    X = np.arange(1.0, 13.0).reshape(3, 4)
    for stride in [(1, 1), (2, 2), (3, 1), (1, 4)]:
        expected = np.zeros((stride[0] * 2 + 1, stride[1] * 3 + 1))
        expected[:: stride[0], :: stride[1]] = X
        np.testing.assert_array_equal(cl.to_numpy(cl.insert_zeros(X, stride)), expected)
    stack = np.stack([X, -X])
    np.testing.assert_array_equal(cl.to_numpy(cl.insert_zeros(stack, 2))[1, ::2, ::2], -X)


@pytest.mark.parametrize("method", METHODS)
@PER_METHOD
@given(case=transpose_case())
def test_conv_transpose2d_matches_its_definition(backend, method, case):
    X, K, stride, cut = case
    got = cl.to_numpy(cl.conv_transpose2d(X, K, stride, cut, method))
    np.testing.assert_allclose(got, scatter_add(X, K, stride, cut), rtol=1e-4, atol=1e-4)


def test_conv_transpose2d_books_example(backend):
    # d2l 14.10, "Transposed Convolution": its first example and the stride-2 one.
    X = K = np.array([[0.0, 1.0], [2.0, 3.0]])
    assert cl.to_numpy(cl.conv_transpose2d(X, K)).tolist() == [[0, 0, 1], [0, 4, 6], [4, 12, 9]]
    assert cl.to_numpy(cl.conv_transpose2d(X, K, stride=2)).tolist() == [
        [0, 0, 0, 1],
        [0, 0, 2, 3],
        [0, 2, 0, 3],
        [4, 6, 6, 9],
    ]


@pytest.mark.parametrize(("stride", "padding"), [(2, 0), (2, 1), ((2, 3), (1, 0, 0, 2))])
def test_conv_transpose2d_is_the_adjoint_of_the_strided_correlation(backend, stride, padding):
    # <corr2d(Z, K, stride, padding), X> == <Z, conv_transpose2d(X, K, stride, padding)> for all Z, X.
    rng = np.random.default_rng(5)
    K = rng.standard_normal((3, 3)).astype(np.float32)
    X = rng.standard_normal((4, 3)).astype(np.float32)
    T = cl.to_numpy(cl.conv_transpose2d(X, K, stride, padding))
    Z = rng.standard_normal(T.shape).astype(np.float32)
    Y = cl.to_numpy(cl.corr2d(Z, K, padding=padding, stride=stride))
    assert Y.shape == X.shape
    assert float((Y.astype(np.float64) * X).sum()) == pytest.approx(float((Z.astype(np.float64) * T).sum()), rel=1e-4)


def test_conv_transpose2d_equals_pytorchs():
    load_or_skip("torch")
    import torch

    rng = np.random.default_rng(6)
    X, K = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    for stride, padding in [((2, 2), (0, 0)), ((2, 3), (1, 1)), ((3, 1), (2, 0))]:
        theirs = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(X)[None, None], torch.from_numpy(K)[None, None], stride=stride, padding=padding
        )[0, 0].numpy()
        with cl.use_backend("numpy"):
            ours = cl.to_numpy(cl.conv_transpose2d(X, K, stride, padding))
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_conv_transpose2d_is_differentiable(backend):
    rng = np.random.default_rng(7)
    result = cl.gradcheck(
        lambda x, k: backend.sum(cl.conv_transpose2d(x, k, stride=2, padding=1, method="vectorized") ** 2),
        rng.standard_normal((3, 3)),
        rng.standard_normal((2, 3)),
        raise_exception=False,
    )
    assert result.passed, result.mismatches


def test_transposed_exercise_bad_input():
    with pytest.raises(ValueError, match=r"^stride: expected positive sizes, got 0"):
        cl.insert_zeros([[1.0]], 0)
    with pytest.raises(ValueError, match=r"^X: expected a non-empty 2-D"):
        cl.insert_zeros([1.0, 2.0], 2)
    with pytest.raises(ValueError, match=r"^X: expected a 2-D array"):
        cl.conv_transpose2d(np.ones((2, 2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"^K: expected a non-empty 2-D array"):
        cl.conv_transpose2d(np.ones((2, 2)), np.ones((0, 2)))
    with pytest.raises(
        ValueError,
        match=r"^padding: expected to cut fewer than 4 rows and 4 columns in all .* got \(top, bottom, left, right\) "
        r"= \(2, 2, 0, 0\)",
    ):
        cl.conv_transpose2d(np.ones((2, 2)), np.ones((2, 2)), stride=2, padding=(2, 0))
    with pytest.raises(ValueError, match=r"^method: expected one of"):
        cl.conv_transpose2d(np.ones((2, 2)), np.ones((2, 2)), method="fft")
