"""``cl.modern_report``: what each framework's own batch norm, stem pooling and dropout really do (d2l chapter 8).

Each framework's result is checked against a float64 NumPy computation of
the convention its reference module states (and this file states again, in
:data:`CONVENTIONS`), not against convlab; a framework is skipped only where
it is not installed.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from reference import pool2d_reference

import convlab as cl
from conftest import load_or_skip
from convlab.backends.reference import NOT_PROVIDED, load_reference, reference_function
from convlab.backends.spec import BackendSpec
from convlab.chapter.modern_disagreements import (
    BATCH_NORM,
    DROPOUT,
    DROPOUT_P,
    NOT_INSTALLED,
    STEM_POOL,
    batch_norm_batches,
    dropout_input,
    format_modern_report,
    modern_report,
    stem_pool_inputs,
)

CONVENTIONS = {
    "torch": (0.1, "unbiased"),  # nn.BatchNorm2d(momentum=0.1): the batch's weight
    "tensorflow": (0.01, "biased"),  # keras BatchNormalization(momentum=0.99): the old value's weight
    "jax": (0.01, "biased"),  # nnx.BatchNorm(momentum=0.99)
    "mxnet": (0.1, "biased"),  # gluon nn.BatchNorm(momentum=0.9)
    "paddle": (0.1, "biased"),  # paddle nn.BatchNorm2D(momentum=0.9)
}
"""Each framework's batch norm at its defaults: convlab's momentum for it, and the variance its running one averages."""

STEM_PADDING = {"torch": "1", "mxnet": "1", "paddle": "1", "tensorflow": "same", "jax": "same"}
"""The book's stem pooling: ``padding=1`` (PyTorch, MXNet, Paddle) or ``'same'`` (TensorFlow, JAX)."""


@functools.cache
def report():
    return modern_report()


def rows_of(example):
    return [row for row in report() if row.example == example]


def ema(batches, batch_weight, ddof):
    """The running mean and variance from 0 and 1, after each batch, in float64."""
    mean, var, means, variances = np.zeros(2), np.ones(2), [], []
    for X in batches:
        X = X.astype(np.float64)
        mean = (1 - batch_weight) * mean + batch_weight * X.mean(axis=(0, 2, 3))
        var = (1 - batch_weight) * var + batch_weight * X.var(axis=(0, 2, 3), ddof=ddof)
        means.append(mean)
        variances.append(var)
    return np.stack(means), np.stack(variances)


def same_padding(size, window=3, stride=2):
    """TensorFlow's 'same': the padding that makes ceil(size / stride) outputs, the odd one after."""
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def stem_pool(X, padding):
    if padding == "same":
        (top, bottom), (left, right) = same_padding(X.shape[2]), same_padding(X.shape[3])
    else:
        top = bottom = left = right = 1
    return pool2d_reference(X, (3, 3), (2, 2), (top, bottom, left, right), "max")


def test_convlab_keeps_pytorchs_conventions():
    batches = batch_norm_batches()
    mean, var = rows_of(BATCH_NORM)
    expected = ema(batches, 0.1, ddof=1)
    np.testing.assert_allclose(mean.convlab, expected[0], rtol=1e-5)
    np.testing.assert_allclose(var.convlab, expected[1], rtol=1e-5)
    for row, X in zip(rows_of(STEM_POOL), stem_pool_inputs().values(), strict=True):
        np.testing.assert_array_equal(row.convlab, stem_pool(X, "1"))
    training, evaluation = rows_of(DROPOUT)
    np.testing.assert_array_equal(training.convlab, [0, 1 / (1 - DROPOUT_P)])
    np.testing.assert_array_equal(evaluation.convlab, [1])


def test_every_installed_layer_runs():
    errors = {(name, row.example): message for row in report() for name, message in row.errors.items()}
    assert not errors


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_batch_norm_running_statistics(name):
    """The framework's running mean and variance are the EMA its convention says, and not the other variance's."""
    reference = load_reference(load_or_skip(name))
    batch_weight, variance = CONVENTIONS[name]
    assert (reference.BATCH_NORM_MOMENTUM, reference.BATCH_NORM_RUNNING_VAR) == CONVENTIONS[name]
    mean, var = rows_of(BATCH_NORM)
    batches = batch_norm_batches()
    expected_mean, expected_var = ema(batches, batch_weight, ddof=1 if variance == "unbiased" else 0)
    _, other_var = ema(batches, batch_weight, ddof=0 if variance == "unbiased" else 1)
    np.testing.assert_allclose(mean.values[name], expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.values[name], expected_var, rtol=1e-5, atol=1e-6)
    assert not np.allclose(var.values[name], other_var, rtol=1e-5, atol=1e-6)
    # convlab's momentum for it, recovered from the first step; with it convlab gives the mean, and the
    # variance only where the framework averages the unbiased one.
    assert mean.momentum[name] == var.momentum[name] == batch_weight
    assert mean.agrees_at_momentum(name)
    assert var.agrees_at_momentum(name) == (variance == "unbiased")
    # At the frameworks' defaults: convlab's 0.1 is Gluon's and Paddle's 0.9; only PyTorch's variance is convlab's.
    assert mean.agrees(name) == (batch_weight == 0.1)
    assert var.agrees(name) == (batch_weight == 0.1 and variance == "unbiased")
    assert mean.runs[name].code and mean.runs[name].note


@pytest.mark.parametrize("name", sorted(STEM_PADDING))
def test_stem_pooling(name):
    """``padding=1`` pools as convlab does; ``'same'`` too on an odd size, but not on an even one."""
    reference = load_reference(load_or_skip(name))
    padding = STEM_PADDING[name]
    assert reference.BOOK_STEM_POOL_PADDING == ("same" if padding == "same" else (1, 1, 1, 1))
    for row, X in zip(rows_of(STEM_POOL), stem_pool_inputs().values(), strict=True):
        np.testing.assert_array_equal(row.values[name], stem_pool(X, padding), err_msg=row.input)
        even = X.shape[2] % 2 == 0
        assert row.agrees(name) == (padding == "1" or not even), row.input
        if not row.agrees(name):
            assert row.runs[name].note
            assert row.values[name].shape == row.convlab.shape  # the same shape, other values


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_dropout_scales_kept_units_in_training_and_is_the_identity_in_evaluation(name):
    load_or_skip(name)
    X = dropout_input().astype(np.float64)
    training, evaluation = rows_of(DROPOUT)
    outputs = training.runs[name].outputs
    kept = outputs["training"] != 0
    np.testing.assert_allclose(outputs["training"][kept], X[kept] / (1 - DROPOUT_P), rtol=1e-6)
    assert 0.35 < kept.mean() < 0.65  # 384 units at p = 0.5: six standard deviations either side
    np.testing.assert_array_equal(outputs["evaluation"], X)
    assert training.agrees(name) and evaluation.agrees(name)


def test_gluon_moves_its_running_statistics_in_the_backward_pass():
    backend = load_or_skip("mxnet")
    from convlab.backends.mxnet.framework import autograd, mnp, nn

    layer = nn.BatchNorm()
    layer.initialize(ctx=backend.context)
    X = mnp.array(batch_norm_batches()[0], ctx=backend.context)
    with autograd.record():
        Y = layer(X)
    np.testing.assert_array_equal(layer.running_mean.data().asnumpy(), [0, 0])  # the forward pass: not yet
    Y.backward()
    np.testing.assert_allclose(layer.running_mean.data().asnumpy(), 0.1 * X.asnumpy().mean(axis=(0, 2, 3)), rtol=1e-5)


def test_keras_dropout_called_without_training_is_the_identity():
    load_or_skip("tensorflow")
    from convlab.backends.tensorflow.framework import keras

    X = dropout_input()
    np.testing.assert_array_equal(keras.layers.Dropout(DROPOUT_P)(X), X)
    assert "training=True" in rows_of(DROPOUT)[0].runs["tensorflow"].note


def test_paddle_dropout_upscales_in_training_by_default():
    backend = load_or_skip("paddle")
    run = reference_function(backend, "framework_dropout")(dropout_input(), DROPOUT_P)
    assert "upscale_in_train" in run.code


def test_numpy_provides_none_and_a_missing_framework_is_not_installed():
    cl.register_backend(BackendSpec("absentfw", "absentfw_adapter:Adapter", modules=("convlab_absent_framework",)))
    try:
        rows = modern_report(backends=["numpy", "absentfw"])
    finally:
        cl.unregister_backend("absentfw")
    assert all(row.not_provided == ["numpy"] and row.not_installed == ["absentfw"] for row in rows)
    assert all(not row.values and not row.errors for row in rows)
    header, *lines = format_modern_report(rows).splitlines()
    assert header.split()[-2:] == ["absentfw", "numpy"]
    assert len(lines) == len(rows) and all(line.endswith(f"{NOT_INSTALLED}  {NOT_PROVIDED}") for line in lines)


def test_the_report_prints_the_momenta_and_the_reasons():
    text = format_modern_report(report())
    assert STEM_POOL in text and DROPOUT in text
    ran = any(row.momentum for row in rows_of(BATCH_NORM))
    assert ("convlab momentum" in text) == ran  # the momenta's table, where some framework's batch norm ran
    if any(name != "torch" for name in rows_of(BATCH_NORM)[0].runs):
        assert "What each framework does:" in text and "old value's weight" in text
