"""A backend defined in the test suite: NumPy in float64, under another name.

It proves that adding a backend touches nothing outside its own code: it is
registered at run time (``cl.register_backend``) and then passes the
conformance suites unchanged (``tests/backends/test_synthetic_backend.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlab.backends.numpy.adapter import NumpyBackend
from convlab.backends.numpy.autograd import Tensor
from convlab.backends.spec import BackendSpec


class Float64Backend(NumpyBackend):
    """NumPy's adapter with float64 tensors."""

    def tensor(self, data: Any) -> Any:
        if isinstance(data, Tensor):
            return data
        return np.asarray(data, dtype=np.float64)


BACKEND = BackendSpec("numpy64", f"{__name__}:Float64Backend", aliases=("np64",))
