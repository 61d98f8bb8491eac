"""LeNet (d2l §7.6) on real Fashion-MNIST: one model and one training loop, equal curves on every backend.

The anchors are independent of convlab's training loop: the book's printed
summary rows, and idiomatic PyTorch (``nn.Sequential``, ``F.cross_entropy``,
``torch.optim.SGD``) trained from the same weights on the same batches.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import pytest

import convlab as cl

STEPS = 50
"""Parity horizon: the first steps of the book's settings (lr 0.1, batch 128)."""

BOOK_ROWS = [
    ("Conv2d", (1, 6, 28, 28)),
    ("Sigmoid", (1, 6, 28, 28)),
    ("AvgPool2d", (1, 6, 14, 14)),
    ("Conv2d", (1, 16, 10, 10)),
    ("Sigmoid", (1, 16, 10, 10)),
    ("AvgPool2d", (1, 16, 5, 5)),
    ("Flatten", (1, 400)),
    ("Linear", (1, 120)),
    ("Sigmoid", (1, 120)),
    ("Linear", (1, 84)),
    ("Sigmoid", (1, 84)),
    ("Linear", (1, 10)),
]
"""d2l §7.6's layer_summary of LeNet (its PyTorch tab), row by row."""


def fashion_mnist(**kwargs):
    try:
        return cl.data.FashionMNIST(**kwargs)
    except cl.DataNotFoundError as exc:  # CI and scripts/dev.sh install it; say so where it is missing
        pytest.skip(f"Fashion-MNIST is not installed here: {exc}")


@functools.cache
def step_losses(backend_name: str) -> tuple[float, ...]:
    with cl.use_backend(backend_name):
        net = cl.models.lenet(seed=0)
        result = cl.train_classifier(
            net, fashion_mnist(batch_size=128, seed=0), 1, 0.1, max_batches=STEPS, verbose=False
        )
    return tuple(result.step_losses)


def test_layer_summary_rows_are_the_books_on_every_backend(backend, capsys):
    rows = cl.layer_summary(cl.models.lenet(seed=0))
    assert rows == BOOK_ROWS
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == [name for name, _ in BOOK_ROWS]
    assert printed[0].endswith("(1, 6, 28, 28)")
    assert cl.layer_summary(cl.models.lenet(), input_shape=(2, 1, 28, 28), verbose=False)[-1] == ("Linear", (2, 10))


def test_first_steps_agree_across_backends(backend):
    ours, anchor = np.array(step_losses(backend.name)), np.array(step_losses("numpy"))
    assert len(ours) == STEPS
    np.testing.assert_allclose(ours, anchor, rtol=1e-4)
    assert ours[0] == pytest.approx(np.log(10), rel=0.1)  # ten classes, near-uniform logits at the start


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_numpy_steps_match_idiomatic_pytorch():
    """The book's PyTorch way, from the seeded weights, on the same batches: the loss of every step."""
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    weights = cl.parameters(cl.models.lenet(seed=0))  # NumPy arrays on the default backend
    with cl.use_backend("numpy"):
        data = fashion_mnist(batch_size=128, seed=0)
        batches = [
            (np.asarray(X), np.asarray(y)) for _, (X, y) in zip(range(STEPS), data.train_dataloader(), strict=False)
        ]
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.copy_(torch.from_numpy(np.asarray(weights[name])))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    idiomatic = []
    for X, y in batches:
        loss = F.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        idiomatic.append(loss.item())
    np.testing.assert_allclose(step_losses("numpy"), idiomatic, rtol=1e-4)


def test_result_and_progress(backend, capsys):
    data = fashion_mnist(batch_size=64, seed=1)
    result = cl.train_classifier(cl.models.lenet(seed=1), data, num_epochs=2, lr=0.5, max_batches=3, verbose=False)
    assert len(result.step_losses) == 6 and len(result.train_loss) == len(result.val_acc) == len(result.train_acc) == 2
    assert result.train_loss[0] == pytest.approx(np.mean(result.step_losses[:3]))
    assert all(0 <= acc <= 1 for acc in result.train_acc + result.val_acc)
    assert result.backend == backend.name and result.examples_per_sec > 0
    assert capsys.readouterr().out == ""
    cl.train_classifier(result.model, data, num_epochs=1, max_batches=1, verbose=True)
    printed = capsys.readouterr()
    assert printed.out.startswith("epoch 1: train loss") and "LeNet on" in printed.err  # the line, and the bar


def test_relu_lenet_learns_quickly(backend):
    """A check that the loop learns at all: ReLU and max pooling (exercise 1) leave the plateau within 40 steps."""
    nn = cl.nn
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, seed=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, seed=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120, seed=3), nn.ReLU(), nn.Linear(120, 84, seed=4), nn.ReLU(),
        nn.Linear(84, 10, seed=5),
    )  # fmt: skip
    result = cl.train_classifier(net, fashion_mnist(batch_size=128, seed=2), 1, 0.1, max_batches=40, verbose=False)
    assert np.mean(result.step_losses[-10:]) < 0.8 * np.mean(result.step_losses[:5])


def test_bad_arguments_name_themselves(backend):
    net = cl.models.lenet(seed=0)
    data = fashion_mnist()
    with pytest.raises(TypeError, match="model: expected a convlab model"):
        cl.train_classifier(object(), data)
    with pytest.raises(ValueError, match="lr: expected a positive number"):
        cl.train_classifier(net, data, lr=0)
    with pytest.raises(TypeError, match="max_batches: expected a positive int"):
        cl.train_classifier(net, data, max_batches=1.5)
    with pytest.raises(ValueError, match="model: expected a model ending in a Linear layer"):
        cl.train_classifier(cl.nn.Sequential(cl.nn.Flatten()), data)
    with pytest.raises(TypeError, match="seed: expected an int or None"):
        cl.models.lenet(seed="0")
