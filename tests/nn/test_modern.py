"""d2l §8's models: the book's architectures (parameter counts and shapes of the book's own PyTorch code), mini sizes.

The independent reference is the book's PyTorch code, written out here with
``torch.nn`` (eager layers in place of the book's lazy ones, one input
channel, ten classes), not with convlab.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import convlab as cl
from convlab.nn.modern import INPUT_SIZE

MODELS = ["bn_lenet", "alexnet", "vgg", "nin", "googlenet", "resnet18", "densenet"]
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")


def book_models():
    """The book's §8 networks in plain PyTorch, as d2l-en's PyTorch tabs build them."""
    from torch import nn

    def vgg_block(num_convs, in_channels, out_channels):
        layers = []
        for i in range(num_convs):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU()]
        return nn.Sequential(*layers, nn.MaxPool2d(2, 2))

    def nin_block(in_channels, out_channels, kernel_size, strides, padding):
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(), nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
        )  # fmt: skip

    class Inception(nn.Module):
        def __init__(self, in_channels, c1, c2, c3, c4):
            super().__init__()
            self.b1_1 = nn.Conv2d(in_channels, c1, 1)
            self.b2_1, self.b2_2 = nn.Conv2d(in_channels, c2[0], 1), nn.Conv2d(c2[0], c2[1], 3, padding=1)
            self.b3_1, self.b3_2 = nn.Conv2d(in_channels, c3[0], 1), nn.Conv2d(c3[0], c3[1], 5, padding=2)
            self.b4_1, self.b4_2 = nn.MaxPool2d(3, 1, 1), nn.Conv2d(in_channels, c4, 1)

        def forward(self, x):
            import torch
            from torch.nn.functional import relu

            return torch.cat(
                (
                    relu(self.b1_1(x)), relu(self.b2_2(relu(self.b2_1(x)))), relu(self.b3_2(relu(self.b3_1(x)))),
                    relu(self.b4_2(self.b4_1(x))),
                ),
                dim=1,
            )  # fmt: skip

    class Residual(nn.Module):
        def __init__(self, in_channels, channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, stride=strides)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
            self.conv3 = nn.Conv2d(in_channels, channels, 1, stride=strides) if use_1x1conv else None
            self.bn1, self.bn2 = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)

        def forward(self, X):
            from torch.nn.functional import relu

            Y = self.bn2(self.conv2(relu(self.bn1(self.conv1(X)))))
            return relu(Y + (self.conv3(X) if self.conv3 else X))

    def conv_block(in_channels, channels):
        return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, channels, 3, padding=1))

    class DenseBlock(nn.Module):
        def __init__(self, num_convs, in_channels, growth):
            super().__init__()
            self.net = nn.Sequential(*(conv_block(in_channels + i * growth, growth) for i in range(num_convs)))

        def forward(self, X):
            import torch

            for blk in self.net:
                X = torch.cat((X, blk(X)), dim=1)
            return X

    def googlenet():
        b1 = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        b2 = nn.Sequential(
            nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        b3 = nn.Sequential(
            Inception(192, 64, (96, 128), (16, 32), 32),
            Inception(256, 128, (128, 192), (32, 96), 64),
            nn.MaxPool2d(3, 2, 1),
        )
        b4 = nn.Sequential(
            Inception(480, 192, (96, 208), (16, 48), 64), Inception(512, 160, (112, 224), (24, 64), 64),
            Inception(512, 128, (128, 256), (24, 64), 64), Inception(512, 112, (144, 288), (32, 64), 64),
            Inception(528, 256, (160, 320), (32, 128), 128), nn.MaxPool2d(3, 2, 1),
        )  # fmt: skip
        b5 = nn.Sequential(
            Inception(832, 256, (160, 320), (32, 128), 128),
            Inception(832, 384, (192, 384), (48, 128), 128),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )
        return nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, 10))

    def resnet18():
        layers = [nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))]
        channels = 64
        for i, (num, width) in enumerate(((2, 64), (2, 128), (2, 256), (2, 512))):
            blocks = []
            for j in range(num):
                blocks.append(Residual(channels, width, True, 2) if j == 0 and i > 0 else Residual(channels, width))
                channels = width
            layers.append(nn.Sequential(*blocks))
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))

    def densenet():
        layers = [nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))]
        channels = 64
        for i in range(4):
            layers.append(DenseBlock(4, channels, 32))
            channels += 4 * 32
            if i != 3:
                layers.append(
                    nn.Sequential(
                        nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels // 2, 1), nn.AvgPool2d(2, 2)
                    )
                )
                channels //= 2
        return nn.Sequential(
            *layers,
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
            nn.Linear(channels, 10),
        )

    vgg_blocks, channels = [], 1
    for num_convs, width in ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)):
        vgg_blocks.append(vgg_block(num_convs, channels, width))
        channels = width
    return {
        "bn_lenet": nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
            nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
            nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10),
        ),
        "alexnet": nn.Sequential(
            nn.Conv2d(1, 96, 11, 4, 1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2), nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(3, 2), nn.Flatten(),
            nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 10),
        ),
        "vgg": nn.Sequential(
            *vgg_blocks, nn.Flatten(), nn.Linear(128 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 10),
        ),
        "nin": nn.Sequential(
            nin_block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), nin_block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
            nin_block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5), nin_block(384, 10, 3, 1, 1),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        ),
        "googlenet": googlenet(),
        "resnet18": resnet18(),
        "densenet": densenet(),
    }  # fmt: skip


@needs_torch
@pytest.mark.parametrize("name", MODELS)
def test_book_size_has_the_books_parameter_count_and_output_shapes(name):
    import torch

    reference = book_models()[name].eval()
    side = INPUT_SIZE[name]["book"]
    with cl.use_backend("numpy"):
        net = getattr(cl.models, name)(seed=0, size="book")
        ours = cl.layer_summary(net, (1, 1, side, side), verbose=False)
        count = sum(int(np.prod(p.shape)) for p in cl.parameters(net).values())
    assert count == sum(p.numel() for p in reference.parameters())
    X = torch.zeros(1, 1, side, side)
    shapes = []
    with torch.no_grad():
        for layer in reference:
            X = layer(X)
            shapes.append(tuple(X.shape))
    ours = [shape for _, shape in ours]
    if name in ("googlenet", "resnet18"):  # grouped in blocks as the book groups them: the same summary
        assert ours == shapes
    else:  # DenseNet's head, the others' layers: each row is a shape the book's summary prints
        assert ours[-1] == shapes[-1] == (1, 10) and set(ours) <= set(shapes)


@pytest.mark.parametrize("name", MODELS)
def test_mini_models_run_on_28x28_and_seeded_weights_agree_across_backends(backend, name):
    net = getattr(cl.models, name)(seed=3)
    params = {key: cl.to_numpy(value) for key, value in cl.parameters(net).items()}
    with cl.use_backend("numpy"):
        reference = {key: cl.to_numpy(value) for key, value in cl.parameters(getattr(cl.models, name)(seed=3)).items()}
    assert list(params) == list(reference)
    for key in params:
        np.testing.assert_array_equal(params[key], reference[key])
    out = net(cl.tensor(np.random.default_rng(0).normal(size=(2, 1, 28, 28))))
    assert tuple(out.shape) == (2, 10)


def test_wrong_inputs_are_refused_naming_the_layer():
    net = cl.models.resnet18(seed=0)
    with pytest.raises(ValueError, match=r"layer 0\.0 \(Conv2d\).*Conv2d: expected an input of shape \(N, 1, H, W\)"):
        net(np.zeros((1, 3, 28, 28), dtype=np.float32))
    with pytest.raises(
        ValueError, match=r"layer 5 \(MaxPool2d\), given an input of shape \(1, 256, 2, 2\): kernel_size"
    ):
        cl.models.alexnet(seed=0, size="book")(np.zeros((1, 1, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match=r"size: expected one of"):
        cl.models.vgg(size="large")


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_reaches_every_parameter_and_matches_numpy(backend, name):
    # In float64, where each framework's rounding is far below what a wrong formula would change: float32
    # gradients differ by up to 1e-3 between frameworks (their kernels round differently), float64 ones by
    # 1e-14, or about 1e-8 on Paddle (its float64 average pooling's gradient scales by a float32 1/(k_h k_w)).
    from convlab.nn.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(4, 1, 28, 28)), rng.integers(0, 10, 4)
    results = {}
    for each in dict.fromkeys(["numpy", backend.name]):
        with cl.use_backend(each, dtype="float64") as active:
            net = getattr(cl.models, name)(seed=2)
            loss, grads = active.value_and_grad(
                net, active.tensor(X), active.one_hot(active.labels(y), 10), SoftmaxCrossEntropy(active)
            )
            results[each] = loss, {key: cl.to_numpy(g) for key, g in grads.items()}
            names = sorted(cl.parameters(net))
    loss, grads = results[backend.name]
    reference_loss, reference_grads = results["numpy"]
    assert loss == pytest.approx(reference_loss, rel=1e-9)
    assert sorted(grads) == sorted(reference_grads) == names
    largest = max(np.abs(g).max() for g in reference_grads.values())
    for key, grad in grads.items():
        assert np.all(np.isfinite(grad)), key
        np.testing.assert_allclose(grad, reference_grads[key], rtol=0, atol=1e-7 * largest, err_msg=key)
