"""The classifier's metrics, exactly: tiny fixed batches whose answers are worked out here by hand, in NumPy.

A learning rate of 1e-30 leaves every float32 weight unchanged (the update is
far below half an ulp), so the predictions during and after training are those
of the initial weights, computed here independently with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax

import convlab as cl
from convlab.train.classifier import accuracy
from convlab.train.kernel import _diverging

FROZEN = 1e-30


def _linear_model(backend):
    """A ``Linear(4, 3)`` classifier with fixed weights, and those weights as NumPy float64 arrays."""
    model = cl.nn.Sequential(cl.nn.Flatten(), cl.nn.Linear(4, 3, seed=5))
    params = {name: cl.to_numpy(value).astype(np.float64) for name, value in cl.parameters(model).items()}
    return model, params


def _predict(params, X):
    logits = X.reshape(len(X), -1) @ params["1.weight"].T + params["1.bias"]
    return logits.argmax(axis=1)


def _images(count, seed):
    return np.random.default_rng(seed).standard_normal((count, 1, 2, 2)).astype(np.float32)


class Batches:
    """Given batches, as a data module: ``train_dataloader`` and ``val_dataloader`` yield the backend's tensors.

    ``later_train``, if given, is what every pass over the training data after the first yields.
    """

    def __init__(self, backend, train, val, later_train=None):
        self.backend, self.train, self.val, self.later_train = backend, train, val, later_train
        self.passes = 0

    def _tensors(self, batches):
        return [(self.backend.tensor(X), self.backend.labels(y)) for X, y in batches]

    def train_dataloader(self):
        self.passes += 1
        return self._tensors(self.train if self.passes == 1 or self.later_train is None else self.later_train)

    def val_dataloader(self):
        return self._tensors(self.val)


def _labelled(params, X, right):
    """Labels that make exactly the examples flagged in ``right`` correct (the others wrong)."""
    predicted = _predict(params, X)
    return np.where(right, predicted, (predicted + 1) % 3).astype(np.int64)


def test_accuracy_counts_the_right_predictions_weighted_by_examples(backend):
    model, params = _linear_model(backend)
    X1, X2, X3 = _images(3, 1), _images(2, 2), _images(4, 3)
    batches = [
        (backend.tensor(X1), backend.labels(_labelled(params, X1, [True, False, True]))),
        (backend.tensor(X2), backend.labels(_labelled(params, X2, [False, False]))),
        (backend.tensor(X3), backend.labels(_labelled(params, X3, [True, True, True, True]))),
    ]
    assert accuracy(model, batches) == pytest.approx(6 / 9)
    assert accuracy(model, batches, max_batches=1) == pytest.approx(2 / 3)
    assert accuracy(model, batches, max_batches=2) == pytest.approx(2 / 5)
    assert np.isnan(accuracy(model, []))


def test_train_classifier_reports_each_epochs_own_metrics(backend):
    model, params = _linear_model(backend)
    train_X = [_images(4, seed) for seed in (10, 11, 12)]
    val_X = [_images(5, seed) for seed in (20, 21, 22)]
    # Training batches: 1 right in 4, 2 right, 3 right. Validation: all right in the first two, none in the third.
    train = [
        (X, _labelled(params, X, [k < right for k in range(4)])) for X, right in zip(train_X, (1, 2, 3), strict=True)
    ]
    val = [(X, _labelled(params, X, [right] * 5)) for X, right in zip(val_X, (True, True, False), strict=True)]
    # The second pass sees other images, all predicted right: its losses and accuracy differ from the first's.
    later = [(X[::-1].copy(), _labelled(params, X[::-1], [True] * 4)) for X in train_X]
    data = Batches(backend, train, val, later_train=later)

    result = cl.train_classifier(model, data, num_epochs=2, lr=FROZEN, verbose=False)
    assert len(result.step_losses) == 6
    first, second = np.mean(result.step_losses[:3]), np.mean(result.step_losses[3:])
    assert abs(first - second) > 1e-3 * first  # so that a mean over both epochs could not pass for either
    assert result.train_loss == pytest.approx([first, second])  # each epoch's mean of its own steps
    assert result.train_acc == pytest.approx([6 / 12, 12 / 12])  # on the training batches just visited
    assert result.val_acc == pytest.approx([10 / 15, 10 / 15])  # on the validation batches

    limited = cl.train_classifier(model, Batches(backend, train, val), 1, FROZEN, max_batches=2, verbose=False)
    assert len(limited.step_losses) == 2
    assert limited.train_acc == pytest.approx([3 / 8])
    assert limited.val_acc == pytest.approx([1.0])  # the first two validation batches only


def test_train_classifiers_step_losses_are_the_mean_cross_entropy(backend):
    model, params = _linear_model(backend)
    X = _images(4, 30)
    y = np.array([0, 2, 1, 2])
    result = cl.train_classifier(model, Batches(backend, [(X, y)], [(X, y)]), 1, FROZEN, verbose=False)
    logits = X.reshape(4, -1).astype(np.float64) @ params["1.weight"].T + params["1.bias"]
    log_probs = log_softmax(logits, axis=1)  # SciPy's, in float64: an oracle independent of convlab
    assert result.step_losses[0] == pytest.approx(-log_probs[np.arange(4), y].mean(), rel=1e-5)


@pytest.mark.parametrize(
    ("losses", "diverging"),
    [
        ([4.0, 1.0, 2.0, 3.0], False),  # rose twice, but stays below its start: not diverging
        ([4.0, 1.0, 2.0, 5.0], True),  # rose twice and passed its start
        ([1.0, 2.0, 3.0], True),
        ([1.0, 2.0, 1.5, 3.0], False),  # did not rise twice in a row
        ([1.0, float("inf")], True),
        ([1.0, float("nan")], True),
    ],
)
def test_divergence_means_rising_twice_and_above_the_start(losses, diverging):
    assert _diverging(losses) is diverging


def test_one_hot_targets_are_made_where_the_labels_are(backend):
    labels = backend.labels(np.array([3, 0, 9, 3]))
    targets = backend.one_hot(labels, 10)
    assert isinstance(targets, backend.tensor_types)
    assert cl.to_numpy(targets).dtype == np.float32
    np.testing.assert_array_equal(cl.to_numpy(targets), np.eye(10, dtype=np.float32)[[3, 0, 9, 3]])


def test_labels_given_as_numpy_still_train(backend):
    model, _ = _linear_model(backend)
    X = _images(4, 40)
    batches = [(backend.tensor(X), np.array([0, 1, 2, 1]))]  # labels left in NumPy by the caller

    class Given:
        def train_dataloader(self):
            return batches

        def val_dataloader(self):
            return batches

    result = cl.train_classifier(model, Given(), 1, FROZEN, verbose=False)
    assert len(result.step_losses) == 1 and np.isfinite(result.step_losses[0])
