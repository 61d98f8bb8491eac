"""The recorded runs of d2l §8's networks: the book's settings, the accuracy they reach, and true to today's code."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from fashion_data import fashion_mnist

import convlab as cl
from convlab.train.records import RECORDS

STEPS = 50
"""How many first steps of a record today's code must reproduce."""

BN_LENET_SETTINGS = {"epochs": 10, "lr": 0.1, "batch_size": 128, "seed": 0, "max_batches": None, "size": "book"}
"""d2l §8.5's: ``BNLeNet(lr=0.1)``, ``FashionMNIST(batch_size=128)``, ``Trainer(max_epochs=10)``."""


def experiments() -> list[str]:
    return sorted(path.name for path in RECORDS.iterdir() if path.is_dir() and not path.name.startswith("lenet"))


@functools.cache
def first_losses(backend_name: str, model: str, size: str, lr: float, batch_size: int, seed: int) -> tuple[float, ...]:
    with cl.use_backend(backend_name):
        net = getattr(cl.models, model)(seed=seed, size=size)
        data = fashion_mnist(batch_size=batch_size, seed=seed)
        result = cl.train_classifier(net, data, 1, lr, max_batches=STEPS, verbose=False)
    return tuple(result.step_losses)


def test_bn_lenet_runs_are_the_books_settings_on_every_backend_and_reach_its_accuracy():
    runs = cl.recorded_runs("bn_lenet")
    assert set(runs) == set(cl.backend_names())
    for name, run in runs.items():
        assert {key: run.metadata[key] for key in BN_LENET_SETTINGS} == BN_LENET_SETTINGS, name
        assert run.metadata["model"] == "bn_lenet" and len(run.val_acc) == 10
        assert len(run.step_losses) == 10 * -(-60_000 // 128)
    final = {name: run.val_acc[-1] for name, run in runs.items()}
    lenet = max(run.val_acc[-1] for run in cl.recorded_runs("lenet").values())
    # batch norm lets the sigmoid network learn from the first epoch, where LeNet sits at 10% for two
    assert min(final.values()) > lenet, final
    assert min(run.val_acc[0] for run in runs.values()) > 0.5
    assert max(final.values()) - min(final.values()) <= 0.03, final


@pytest.mark.parametrize("experiment", experiments())
def test_a_record_starts_with_the_losses_the_code_computes(backend, experiment):
    runs = cl.recorded_runs(experiment)
    if backend.name not in runs:
        pytest.skip(f"no recorded {experiment} run for {backend.name}")
    meta = runs[backend.name].metadata
    losses = first_losses(backend.name, meta["model"], meta["size"], meta["lr"], meta["batch_size"], meta["seed"])
    np.testing.assert_allclose(runs[backend.name].step_losses[:STEPS], losses, rtol=1e-5)
