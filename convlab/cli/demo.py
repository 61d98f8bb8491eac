"""The chapter, run in order on one backend, printing what the book prints."""

from __future__ import annotations

import numpy as np

import convlab as cl

BOOK_PADDING_STRIDE = (((3, 3), 1, 1), ((5, 3), (2, 1), 1), ((3, 3), 1, 2), ((3, 5), (0, 1), (3, 4)))
"""Section 7.3's examples: kernel, padding, stride; on an 8x8 input they give (8, 8), (8, 8), (4, 4), (2, 2)."""


def _show(title: str, value: object) -> None:
    print(f"\n{title}")
    print(np.array2string(cl.to_numpy(value), precision=4, suppress_small=True))


def run_demo(backend: str = "numpy") -> cl.TrainResult:
    """Print the chapter's results on ``backend`` and return the training result."""
    with cl.use_backend(backend) as active:
        print(f"convlab demo on the {active.name} backend ({active.version()}, {active.device})")

        X, K = cl.data.fig_correlation()
        _show("cross-correlation of the first figure: corr2d(X, K)", cl.corr2d(X, K))

        X = cl.tensor(cl.data.edge_image())
        _show("the 6x8 edge image X", X)
        Y = cl.corr2d(X, cl.kernels.edge())
        _show("its edge map Y = corr2d(X, [[1, -1]]): 1 for white->black, -1 for black->white", Y)
        _show(
            "the transposed image has no vertical edges: corr2d(X.T, K)",
            cl.corr2d(cl.data.edge_image().T, cl.kernels.edge()),
        )

        print("\nlearning the kernel from X and Y (built-in conv layer, no bias, lr 3e-2, zero init)")
        result = cl.train_kernel(X, Y, kernel_size=(1, 2), lr=3e-2, num_epochs=10, log_every=2)
        _show("the learned kernel (the true one is [[1, -1]])", result.kernel)
        print(f"\nreceptive field of two stacked 2x2 layers on the input: {cl.receptive_field([(2, 2), (2, 2)])}")

        print("\npadding and stride on an 8x8 input: the output shapes the book prints")
        X8 = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
        for kernel, padding, stride in BOOK_PADDING_STRIDE:
            shape = tuple(cl.to_numpy(cl.corr2d(X8, np.ones(kernel, np.float32), padding=padding, stride=stride)).shape)
            print(f"  kernel {kernel[0]}x{kernel[1]}, padding {padding}, stride {stride}: {shape}")
        return result
