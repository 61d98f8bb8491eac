"""What each target of ``convlab bench`` measures, and its limit: the one table the timings and the verdicts share."""

from __future__ import annotations

TARGETS = {
    "a": ("auto <= 1.05x min(native, vectorized), every size", 1.05),
    "b": ("auto <= 3x fastest of the run, 1024 & 2048, 3x3", 3.0),
    "c": ("train_kernel <= 1.25x book loop, per iteration", 1.25),
    "d": ("import convlab - import numpy <= 0.1 s", 0.1),
    "e": ("vectorized peak extra memory <= 2x output", 2.0),
    "f": ("cl.nn.Conv2d fwd+bwd <= 1.1x the framework's conv layer", 1.1),
    "h": ("LeNet step <= 1.15x the framework's idiomatic step", 1.15),
    "i": ("NumPy LeNet step <= 3x PyTorch's idiomatic step", 3.0),
    "j": ("a Fashion-MNIST batch <= 0.1x a LeNet step", 0.1),
    "k": ("§8 network step <= 1.15x the framework's idiomatic step", 1.15),
    "l": ("NumPy §8 network step <= 2x PyTorch's idiomatic step", 2.0),
    "m": ("compiled LeNet step <= 0.77x the idiomatic eager step (1.3x faster)", 1 / 1.3),
    "n": ("compiled LeNet step <= 1x the idiomatic step, itself compiled whole", 1.0),
    "o": ("NumPy cl.nn.Conv2d fwd+bwd <= 2x PyTorch's conv layer", 2.0),
}
"""Target id: (what is compared, the limit on the ratio; for ``d`` on the difference in seconds)."""
