"""Same input, same bits: every public operation and layer, called three times on every backend.

A framework that runs a call eagerly the first time and compiled afterwards
(TensorFlow's XLA) rounds differently between the two, so the first call of
a shape must already give what every later call gives. Each case uses shapes
that no other test uses, so that its first call here is a first call in the
process too, whatever ran before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convlab as cl
from convlab import _api

RNG_SEED = 20261206


def _data(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng([RNG_SEED, seed, *shape]).standard_normal(shape).astype(np.float32)


def _squared_corr2d(k):
    return cl.get_backend().sum(cl.corr2d(_data(7, 9), k) ** 2)


def _gradients(result) -> list[np.ndarray]:
    return [*result.analytic, *result.numeric, np.float32(result.value)]


# Odd sizes (13, 17, 19...) that the rest of the suite does not use.
OPERATIONS = {
    "corr2d": lambda: (
        [cl.corr2d(_data(13, 17), _data(3, 2), m) for m in ("loop", "vectorized", "native", "auto")]
        + [cl.corr2d(_data(13, 17), _data(3, 2), padding=(1, 2), stride=(2, 3))]
    ),
    "conv2d": lambda: cl.conv2d(_data(17, 13), _data(2, 3), padding=1),
    "corr2d_multi_in": lambda: cl.corr2d_multi_in(_data(3, 13, 11), _data(3, 2, 3)),
    "corr2d_multi_in_out": lambda: cl.corr2d_multi_in_out(_data(3, 11, 13), _data(5, 3, 3, 2)),
    "corr2d_multi_in_out_1x1": lambda: cl.corr2d_multi_in_out_1x1(_data(4, 7, 9), _data(6, 4, 1, 1)),
    "corr2d_matrix": lambda: cl.corr2d_matrix(_data(2, 3), (7, 9)),
    "pool2d": lambda: [cl.pool2d(_data(2, 13, 17), (3, 2), mode, padding=1, stride=(2, 3)) for mode in ("max", "avg")],
    "pad": lambda: [cl.pad(_data(3, 13, 11), (1, 2, 3, 4), mode) for mode in ("zeros", "reflect", "edge")],
    "insert_zeros": lambda: cl.insert_zeros(_data(2, 7, 9), (3, 2)),
    "conv_transpose2d": lambda: cl.conv_transpose2d(_data(7, 9), _data(3, 2), stride=(2, 3), padding=1),
    "compose_kernels": lambda: cl.compose_kernels(_data(3, 2), _data(2, 3), first_stride=2),
    "avg_pool2d_by_conv": lambda: cl.avg_pool2d_by_conv(_data(3, 13, 11), (3, 2), padding=1, stride=2),
    "max_pool2d_by_relu": lambda: cl.max_pool2d_by_relu(_data(3, 13, 11), (3, 3), stride=2),
    "softmax_pool2d": lambda: cl.softmax_pool2d(_data(3, 13, 11), (2, 3), temperature=0.7, stride=(1, 2)),
    "tensor": lambda: cl.tensor(_data(13, 7)),
    "Conv2D": lambda: cl.Conv2D((3, 2), seed=3, method="vectorized")(_data(13, 17)),
    "train_kernel": lambda: cl.train_kernel(_data(9, 13), _data(9, 12), (1, 2), lr=3e-3, num_epochs=4, seed=2).losses,
    "max_stable_lr": lambda: cl.max_stable_lr(_data(9, 13), (2, 3)),
    "gradcheck": lambda: _gradients(cl.gradcheck(_squared_corr2d, _data(2, 3), raise_exception=False)),
    "nn.Conv2d": lambda: cl.nn.Conv2d(3, 5, (3, 2), padding=(1, 0), stride=(2, 1), seed=4)(_data(2, 3, 13, 11)),
    "nn.MaxPool2d": lambda: cl.nn.MaxPool2d(3, stride=2, padding=1)(_data(2, 3, 13, 11)),
    "nn.AvgPool2d": lambda: cl.nn.AvgPool2d((2, 3), stride=(2, 1))(_data(2, 3, 13, 11)),
    "nn.Linear": lambda: cl.nn.Linear(19, 7, seed=5)(_data(3, 19)),
    "nn.Sigmoid": lambda: cl.nn.Sigmoid()(_data(3, 19)),
    "nn.ReLU": lambda: cl.nn.ReLU()(_data(3, 19)),
    "nn.Flatten": lambda: cl.nn.Flatten()(_data(3, 2, 7, 5)),
    "nn.Sequential": lambda: cl.nn.Sequential(cl.nn.Conv2d(1, 2, 3, seed=6), cl.nn.ReLU())(_data(3, 1, 11, 13)),
    "models.lenet": lambda: cl.models.lenet(seed=7)(_data(3, 1, 28, 28)),
    "relu": lambda: cl.relu(_data(3, 17)),
    "concat": lambda: cl.concat([_data(2, 3, 7), _data(2, 5, 7)], axis=1),
    "nn.AdaptiveAvgPool2d": lambda: [cl.nn.AdaptiveAvgPool2d(s)(_data(2, 3, 13, 11)) for s in (1, (3, 4))],
    "nn.BatchNorm2d": lambda: cl.nn.BatchNorm2d(3)(_data(2, 3, 11, 13)),
    "nn.BatchNorm1d": lambda: cl.nn.BatchNorm1d(7)(_data(5, 7)),
    "nn.Dropout": lambda: [cl.nn.Dropout(0.3, seed=8)(_data(3, 19)), cl.nn.Dropout(0.0)(_data(3, 19))],
    # a fresh model per call, in training mode: batch norm by the batch, seeded dropout from its first step
    **{
        f"models.{name}": (lambda name=name: getattr(cl.models, name)(seed=9)(_data(2, 1, 28, 28)))
        for name in ("bn_lenet", "alexnet", "vgg", "nin", "googlenet", "resnet18", "densenet")
    },
}
"""One case per public name that computes on the active backend."""

NOT_COMPUTING = {"get_backend", "autograd_exercise", "nn.set_training", "nn.is_training"}
"""Pinned names that return no array to compare (a backend object; an outcome checked by the chapter's tests; modes)."""


def _bits(result) -> list[np.ndarray]:
    results = result if isinstance(result, list) else [result]
    arrays = [np.asarray(cl.to_numpy(r)) for r in results]
    return [np.ascontiguousarray(a).view(np.uint8) for a in arrays]  # the bits, whatever the dtype


def test_every_public_computation_has_a_case():
    pinned = {name for name in _api.exported() if _api.is_pinned(name)}
    for namespace in _api.namespaces():
        pinned |= {f"{namespace}.{name}" for name in _api.exported(namespace) if _api.is_pinned(f"{namespace}.{name}")}
    assert pinned - NOT_COMPUTING == set(OPERATIONS)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_three_identical_calls_give_identical_bits(backend, name):
    first, second, third = (_bits(OPERATIONS[name]()) for _ in range(3))
    for a, b, c in zip(first, second, third, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=f"{name} on {backend.name}: the 2nd call changed the bits")
        np.testing.assert_array_equal(a, c, err_msg=f"{name} on {backend.name}: the 3rd call changed the bits")


_LENET_STEPS = """
import json, sys
import numpy as np
import convlab as cl
cl.set_backend(sys.argv[1])
rng = np.random.default_rng(3)
X = rng.random((32, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, 32)
class Data:
    num_train, batch_size = 32 * 50, 32
    def train_dataloader(self):
        return [(cl.tensor(X), cl.get_backend().labels(y))] * 50
    def val_dataloader(self):
        return [(cl.tensor(X), cl.get_backend().labels(y))]
result = cl.train_classifier(cl.models.lenet(seed=0), Data(), num_epochs=1, lr=0.1, verbose=False)
print(json.dumps([float(v).hex() for v in result.step_losses]))
"""


def test_two_processes_train_50_lenet_steps_to_the_same_losses(backend):
    def run() -> list[str]:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_LENET_STEPS), backend.name],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()[-1]

    first, second = run(), run()
    assert first == second, f"{backend.name}: two seeded runs of 50 LeNet steps differ"
