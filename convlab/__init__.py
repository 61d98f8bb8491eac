"""convlab: the convolutional-networks chapter of Dive into Deep Learning, on any framework.

One API (``corr2d``, ``conv2d``, the hand-written ``Conv2D``, ``train_kernel``,
the chapter's data, kernels and exercises) dispatches to interchangeable
backends: ``numpy`` (built in, the default) and one per framework;
:func:`backend_info` lists them.

>>> import convlab as cl
>>> X, K = cl.data.fig_correlation()
>>> cl.corr2d(X, K)
array([[19., 25.],
       [37., 43.]], dtype=float32)

Select a backend with ``cl.set_backend("torch")`` (optionally with a
``device=``), for a block with ``with cl.use_backend("jax"):``, by the
``CONVLAB_BACKEND`` environment variable, or import the API pinned to one
backend, d2l-style: ``import convlab.torch as cl``. Importing convlab
imports no deep-learning framework; a backend's framework is imported when
selected.
"""

from __future__ import annotations

import sys
from typing import Any

from convlab import _api, _moved, data, nn
from convlab._bound import install_finder
from convlab.backends.spec import BackendSpec
from convlab.chapter import kernels
from convlab.chapter.channels import ConvCost, compose_kernels, conv_cost
from convlab.chapter.conv_layer import autograd_exercise
from convlab.chapter.disagreements import ShapeReportRow, format_shape_report, shape_report
from convlab.chapter.modern_disagreements import ModernReportRow, format_modern_report, modern_report
from convlab.chapter.padding import conv_transpose2d, insert_zeros
from convlab.chapter.pooling import PoolCost, avg_pool2d_by_conv, max_pool2d_by_relu, pool_cost, softmax_pool2d
from convlab.core.convert import to_numpy
from convlab.core.gradcheck import GradcheckError, GradcheckResult, gradcheck
from convlab.core.memory import memory_limit, set_memory_limit
from convlab.core.ops import (
    concat,
    conv2d,
    conv_output_shape,
    corr2d,
    corr2d_matrix,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    pool2d,
    receptive_field,
    relu,
    tensor,
)
from convlab.core.padding import pad
from convlab.core.registry import (
    available_backends,
    backend_info,
    backend_names,
    get_backend,
    register_backend,
    set_backend,
    unregister_backend,
    use_backend,
)
from convlab.errors import (
    BackendImportError,
    BackendLoadOrderError,
    BackendNotInstalledError,
    CompileFallbackWarning,
    DataCorruptError,
    DataNotFoundError,
    DivergenceError,
    OutputTooLargeError,
)
from convlab.nn import models, parameters, state
from convlab.nn.handwritten import Conv2D
from convlab.train.classifier import layer_summary, train_classifier
from convlab.train.kernel import TrainResult, max_stable_lr, train_kernel
from convlab.train.records import ClassifierResult, format_runs, recorded_runs

__version__ = "0.1.0"

_api.export(data)
_api.export(kernels)
__all__ = _api.exported()

install_finder()
_moved.install()
# `cl.kernels` and `cl.models` are public namespaces; `import convlab.kernels` finds them where they now live.
sys.modules.setdefault("convlab.kernels", kernels)
sys.modules.setdefault("convlab.models", models)


def __getattr__(name: str) -> Any:
    # `from convlab import torch as cl`: the API pinned to one backend, made on first access.
    from convlab._bound import bound_module
    from convlab.core.registry import is_backend_name

    if is_backend_name(name):
        return bound_module(name)
    moved = _moved.moved_module(name)
    if moved is not None:
        return moved
    raise AttributeError(f"module 'convlab' has no attribute {name!r}")
