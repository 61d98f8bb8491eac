"""d2l §8's networks on real Fashion-MNIST: the first 50 SGD steps give equal curves on every backend.

Every mini model (``size="mini"``: BN-LeNet, AlexNet, VGG, NiN, GoogLeNet,
ResNet-18, DenseNet; batch norm and seeded dropout included) starts from the
same seeded weights and takes 50 SGD steps at the book's learning rate on the
same Fashion-MNIST batches, in the same order, on every backend. Each
backend's step losses must equal NumPy's to 1e-4 (relative), and so must its
batch norms' running statistics and its final weights.

The independent anchor is idiomatic PyTorch (``torch_modern.py``: ``torch.nn``
layers, ``F.cross_entropy``, ``torch.optim.SGD``) trained from the same weights
on the same batches: NumPy's curves must equal its curves.

Which precision, measured (50 steps, the book's learning rates; the largest
relative difference of a step loss from NumPy's over the five other backends):

========== ======================= ============================== ========
model      float32, batch 16       float32, batch 8               here
========== ======================= ============================== ========
bn_lenet   1.9e-6                  1.8e-3 (TF, from step 17)      float32, batch 16
alexnet    4.0e-4 (from step 27)   7.1e-5                         float64
vgg        3.6e-4 (from step 28)   6.2e-4 (TF, from step 23)      float64
nin        3.3e-4 (from step 43)   1.2e-3 (from step 20)          float64
googlenet  2.2e-6                  6.8e-6                         float32
resnet18   0.10 (from step 1)      0.10 (from step 2)             float64
densenet   1.4e-2 (from step 4)    2.5e-2 (from step 4)           float64
========== ======================= ============================== ========

("from step k": the first step, counting from 0, that parts by more than
1e-4.) In float32 no formula differs: the frameworks' kernels round
differently (TensorFlow's and Paddle's float32 means over (N, H, W), which
batch norm takes, are 15-20x less exact than NumPy's), and the steps amplify
the difference, by orders of magnitude at once where it flips a ReLU or
max-pooling decision; ResNet-18 and DenseNet are that sensitive from the first
steps. So the models above 1e-4 are compared in float64 (AlexNet too, whose
7e-5 leaves no margin; VGG since TensorFlow's eager convolutions and pooling
became oneDNN's NCHW kernels, whose float32 rounding flips a decision at step
23), where a wrong formula would still show at 1e-4:
there every backend agrees with NumPy to 1e-13 on every model, or 1e-8 on
MXNet and Paddle. (Before MXNet's float64 update stopped rounding its
learning rate to float32, and global pooling became a mean, which Paddle
differentiates exactly in float64 where its avg_pool2d's gradient does not,
their ResNet-18 curves parted from the others after 18 steps.)
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass

import numpy as np
import pytest
from fashion_data import fashion_mnist

import convlab as cl
from convlab.nn.losses import SoftmaxCrossEntropy

pytestmark = pytest.mark.long  # many training steps: the full suite only (noxfile.py)

STEPS = 50
SEED = 0
MODELS = ["bn_lenet", "alexnet", "vgg", "nin", "googlenet", "resnet18", "densenet"]
LR = {"bn_lenet": 0.1, "alexnet": 0.01, "vgg": 0.01, "nin": 0.05, "googlenet": 0.01, "resnet18": 0.01, "densenet": 0.01}
"""The book's learning rate for each model (``BNLeNet(lr=0.1)``, ``AlexNet(lr=0.01)``, ``NiN(lr=0.05)``, ...)."""
BATCH = {"bn_lenet": 16}
"""Batch size, 8 unless listed: BN-LeNet's BatchNorm1d sees one value per example, too few at 8 for float32."""
FLOAT32 = {"bn_lenet", "googlenet"}
"""The models whose float32 curves hold 1e-4 on every backend (the module's table); the others run in float64."""
RTOL = {"float32": 1e-4, "float64": 1e-7}
"""The step losses' tolerance: the issue's 1e-4 in float32; in float64 MXNet's and Paddle's 1e-8 (above) times ten."""
WEIGHTS_RTOL = {"float32": 1e-2, "float64": 1e-6}
"""How far the final weights may be apart, relative to how far they moved in the steps (the largest change).

A wrong gradient puts them apart by about what they moved. In float32 GoogLeNet's flips leave a few biases apart
by up to 6e-3 of that (TensorFlow and Paddle; 1e-6 on MXNet) while its losses agree to 2e-6; BN-LeNet holds
3e-5.
"""

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")


def dtype_of(model: str) -> str:
    return "float32" if model in FLOAT32 else "float64"


@functools.cache
def batches(batch_size: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The first STEPS training batches, as NumPy arrays: every backend and PyTorch get these, in this order."""
    with cl.use_backend("numpy"):
        data = fashion_mnist(batch_size=batch_size, seed=SEED)
        loader = zip(range(STEPS), data.train_dataloader(), strict=False)
        return tuple((np.asarray(X), np.asarray(y, dtype=np.int64)) for _, (X, y) in loader)


def model_batches(model: str) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    dtype = dtype_of(model)
    return tuple((X.astype(dtype), y) for X, y in batches(BATCH.get(model, 8)))


@dataclass(frozen=True)
class Curve:
    losses: tuple[float, ...]
    initial: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    state: dict[str, np.ndarray]


@functools.cache
def curve(backend_name: str, model: str) -> Curve:
    """STEPS steps of ``model`` on ``backend_name``: what cl.train_classifier calls (value_and_grad, sgd_update)."""
    dtype = dtype_of(model)
    with cl.use_backend(backend_name, dtype=dtype) as active:
        net = getattr(cl.models, model)(seed=SEED)
        initial = {name: cl.to_numpy(value).astype(np.float64) for name, value in cl.parameters(net).items()}
        loss = SoftmaxCrossEntropy(active)
        losses = []
        for X, y in model_batches(model):
            value, grads = active.value_and_grad(net, active.tensor(X), active.one_hot(active.labels(y), 10), loss)
            active.sgd_update(net, grads, LR[model])
            losses.append(float(value))
        final = {name: cl.to_numpy(value).astype(np.float64) for name, value in cl.parameters(net).items()}
        state = {name: cl.to_numpy(value).astype(np.float64) for name, value in cl.state(net).items()}
    return Curve(tuple(losses), initial, final, state)


def running_statistics(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: value for name, value in state.items() if name.endswith(("running_mean", "running_var"))}


def assert_statistics_close(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], rtol: float) -> None:
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():  # relative to each statistic's largest entry: means can be near zero
        np.testing.assert_allclose(ours[name], value, rtol=rtol, atol=rtol * np.abs(value).max(), err_msg=name)


@pytest.mark.parametrize("model", MODELS)
def test_first_steps_agree_across_backends(backend, model):
    ours, anchor = curve(backend.name, model), curve("numpy", model)
    rtol = RTOL[dtype_of(model)]
    assert len(ours.losses) == STEPS and np.all(np.isfinite(ours.losses))
    # every seeded dropout layer drew one mask per step; every batch norm moved its running statistics
    counters = {name: value for name, value in ours.state.items() if name.endswith("step")}
    assert all(value == STEPS for value in counters.values()), counters
    assert bool(counters) == (model in ("alexnet", "vgg", "nin"))
    for name, value in running_statistics(ours.state).items():
        assert not np.allclose(value, 0.0 if name.endswith("mean") else 1.0), name
    # the weights moved (the losses hardly do in 50 steps at lr 0.01 on some models): their change, not the
    # losses alone, is what the final weights are held to
    moved = max(np.abs(anchor.final[name] - anchor.initial[name]).max() for name in anchor.initial)
    assert moved > 1e-3
    np.testing.assert_allclose(ours.losses, anchor.losses, rtol=rtol)
    assert_statistics_close(running_statistics(ours.state), running_statistics(anchor.state), 10 * rtol)
    apart = max(np.abs(ours.final[name] - anchor.final[name]).max() for name in anchor.final)
    assert apart <= WEIGHTS_RTOL[dtype_of(model)] * moved, (apart, moved)


@needs_torch
@pytest.mark.parametrize("model", MODELS)
def test_numpy_curves_match_idiomatic_pytorch(model):
    """The book's PyTorch way, from convlab's seeded weights, on the same batches: every step's loss, the statistics."""
    import torch
    import torch_modern

    dtype = dtype_of(model)
    with cl.use_backend("numpy", dtype=dtype):
        net = getattr(cl.models, model)(seed=SEED)
        weights = {name: cl.to_numpy(value) for name, value in cl.parameters(net).items()}
    net = torch_modern.build(model, SEED, weights, getattr(torch, dtype))
    data = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in model_batches(model)]
    theirs = torch_modern.train(net, data, LR[model])
    ours = curve("numpy", model)
    np.testing.assert_allclose(ours.losses, theirs, rtol=RTOL[dtype])
    assert_statistics_close(running_statistics(ours.state), torch_modern.running_statistics(net), 10 * RTOL[dtype])
    final = {name: param.detach().numpy().astype(np.float64) for name, param in net.named_parameters()}
    moved = max(np.abs(ours.final[name] - ours.initial[name]).max() for name in ours.initial)
    apart = max(np.abs(ours.final[name] - final[name]).max() for name in final)
    assert apart <= WEIGHTS_RTOL[dtype] * moved, (apart, moved)


def test_the_loop_is_train_classifiers():
    """The curves above take cl.train_classifier's steps: its step losses on BN-LeNet are the same numbers."""
    with cl.use_backend("numpy"):
        net = cl.models.bn_lenet(seed=SEED)
        data = fashion_mnist(batch_size=BATCH["bn_lenet"], seed=SEED)
        result = cl.train_classifier(net, data, 1, LR["bn_lenet"], max_batches=STEPS, verbose=False)
    np.testing.assert_allclose(result.step_losses, curve("numpy", "bn_lenet").losses, rtol=1e-6)


def test_seeded_dropout_reference_draws_convlabs_masks():
    """torch_modern's dropout reproduces convlab's seeding rule: the layer seeds, and the masks from them."""
    pytest.importorskip("torch")
    from torch_modern import layer_seed

    from convlab.nn.dropout import seeded_keep_mask
    from convlab.nn.modern import Seeds

    seeds = Seeds(SEED)
    assert [seeds() for _ in range(10)] == [layer_seed(SEED, index) for index in range(10)]
    seed = layer_seed(SEED, 6)  # AlexNet's first dropout
    for step in (0, 7):
        uniform = np.random.default_rng([seed, step]).random((4, 512))
        np.testing.assert_array_equal(seeded_keep_mask(seed, 0.5, (4, 512), np.float32(step)), uniform >= 0.5)
