"""The real Fashion-MNIST for the training tests, or a skip that says it is missing."""

from __future__ import annotations

import pytest

import convlab as cl


def fashion_mnist(**kwargs):
    """``cl.data.FashionMNIST(**kwargs)``; where the files are missing, skip the test saying so."""
    try:
        return cl.data.FashionMNIST(**kwargs)
    except cl.DataNotFoundError as exc:  # CI and scripts/dev.sh install it; say so where it is missing
        pytest.skip(f"Fashion-MNIST is not installed here: {exc}")
