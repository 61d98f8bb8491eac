"""Functions whose output grows with an argument refuse, before allocating, what passes the memory limit."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

import convlab as cl
from convlab.core.memory import human_bytes

HUGE = 10**6

CALLS = {
    "corr2d_matrix": ("X_shape", lambda: cl.corr2d_matrix([[1.0, -1.0]], (2000, 2000))),
    "pad": ("padding", lambda: cl.pad(np.ones((2, 2)), HUGE)),
    "corr2d": ("padding", lambda: cl.corr2d(np.ones((3, 3)), np.ones((2, 2)), padding=HUGE)),
    "pool2d": ("padding", lambda: cl.pool2d(np.ones((3, 3)), 2, padding=(HUGE, HUGE), stride=1)),
    "insert_zeros": ("stride", lambda: cl.insert_zeros(np.ones((3, 3)), HUGE)),
    "conv_transpose2d": ("stride", lambda: cl.conv_transpose2d(np.ones((3, 3)), np.ones((2, 2)), stride=HUGE)),
    "Linear": ("in_features and out_features", lambda: cl.nn.Linear(HUGE, HUGE, seed=0)),
    "Conv2d": ("in_channels, out_channels and kernel_size", lambda: cl.nn.Conv2d(HUGE, HUGE, 3, seed=0)),
}


@pytest.mark.parametrize("function", sorted(CALLS))
def test_an_exploding_size_is_refused_before_allocating(backend, function):
    argument, call = CALLS[function]
    tracemalloc.start()
    try:
        with pytest.raises(cl.OutputTooLargeError) as caught:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = caught.value
    assert isinstance(error, MemoryError)
    assert (error.function, error.argument) == (function, argument)
    assert error.nbytes > error.limit == cl.memory_limit()
    message = str(error)
    assert message.startswith(f"{function}: {argument} ")
    assert human_bytes(error.nbytes) in message and human_bytes(error.limit) in message
    assert "convlab.set_memory_limit" in message
    assert peak < 64 << 20, f"{function} allocated {human_bytes(peak)} before refusing"


@pytest.fixture
def small_limit():
    cl.set_memory_limit(1 << 20)
    yield 1 << 20
    cl.set_memory_limit(None)


def test_the_limit_is_settable_and_restorable(small_limit):
    assert cl.memory_limit() == small_limit
    cl.pad(np.ones((2, 2)), 200)  # 404 x 404 float32: 638 KiB, within 1 MiB
    with pytest.raises(cl.OutputTooLargeError, match=r"pad: padding \(400, 400, 400, 400\) needs a 802x802 float32"):
        cl.pad(np.ones((2, 2)), 400)  # 2.45 MiB
    cl.set_memory_limit(None)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert cl.memory_limit() == physical // 2


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "1GB"])
def test_a_bad_limit_is_refused(bad):
    with pytest.raises(ValueError, match=r"nbytes: expected a positive int or None"):
        cl.set_memory_limit(bad)
    assert cl.memory_limit() > 0


def test_fashion_mnist_refuses_a_resize_that_explodes(small_limit):
    with pytest.raises(cl.OutputTooLargeError, match=r"FashionMNIST: resize 512 needs a 128x1x512x512 float32 batch"):
        cl.data.FashionMNIST(resize=512)
