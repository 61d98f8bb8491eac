"""What ``convlab bench`` measures of the chapter's networks, side by side with each framework's own way.

* :func:`time_conv_layers`: ``cl.nn.Conv2d`` forward and backward against
  the framework's own conv layer (the ``framework_conv2d_step`` of the
  backend's reference module,
  :meth:`ReferenceModule.framework_conv2d_step <convlab.backends.reference.ReferenceModule.framework_conv2d_step>`)
  at LeNet's two convolutions and a 64-channel 3x3 (NumPy's, which has no
  framework layer, against PyTorch's);
* :func:`time_lenet_steps`: one ``train_classifier`` step of LeNet against
  the same step written the framework's idiomatic way (its reference
  module's ``idiomatic_lenet_step``,
  :meth:`ReferenceModule.idiomatic_lenet_step <convlab.backends.reference.ReferenceModule.idiomatic_lenet_step>`);
* :func:`time_modern_steps`: the same for d2l §8's networks (BN-LeNet and
  the mini AlexNet, VGG, NiN, GoogLeNet, ResNet-18 and DenseNet), against
  each framework's idiomatic copy (``idiomatic_modern_step``);
* :func:`time_data_loading`: a Fashion-MNIST batch from
  :class:`convlab.data.FashionMNIST` against one training step.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlab import models, nn
from convlab.backends.base import Backend, CompileUnavailableError, Tensor
from convlab.backends.reference import load_reference, reference_function
from convlab.bench.limits import TARGETS
from convlab.bench.timing import Comparison, Progress, measure_side_by_side
from convlab.core.registry import use_backend
from convlab.errors import DataNotFoundError
from convlab.nn.losses import SoftmaxCrossEntropy

CONV_SHAPES = (
    ("LeNet 1->6 5x5 pad 2, 28x28, batch 128", 1, 6, 5, 2, (128, 1, 28, 28)),
    ("LeNet 6->16 5x5, 14x14, batch 128", 6, 16, 5, 0, (128, 6, 14, 14)),
    ("64->64 3x3 pad 1, 56x56, batch 8", 64, 64, 3, 1, (8, 64, 56, 56)),
)
"""``(name, in_channels, out_channels, kernel, padding, input NCHW shape)`` of the conv-layer workloads."""

LENET_BATCH = 128
"""The book's batch size."""


@dataclass(frozen=True)
class SumOfOutputs:
    """``sum(Y_hat)``: the loss whose gradient the frameworks' conv layers are timed with."""

    backend: Backend

    def __call__(self, Y_hat: Tensor, Y: Tensor) -> Tensor:
        return self.backend.sum(Y_hat)


def _step(backend: Backend, module: Any, X: Tensor, Y: Tensor, loss: Any, lr: float | None) -> float:
    value, grads = backend.value_and_grad(module, X, Y, loss)
    if lr is not None:
        backend.sgd_update(module, grads, lr)
    return value


def _read(step: Any, X: Tensor, Y: Tensor) -> float:
    # float() waits for the loss, so a compiled step that returns before it computes is timed whole
    return float(step(X, Y))


def _baseline(backend: Backend, name: str, *args: Any) -> Any:
    """The reference module's function ``name`` called on ``args`` (a step to time), or ``None`` where it has none."""
    function = reference_function(backend, name)
    return None if function is None else function(*args)


def _row(row: dict[str, Any], timings: dict[str, Any], stat: str, progress: Progress) -> dict[str, Any]:
    """``row`` with each timing's ``stat`` as ``<label>_s``, or with the first ``"error"`` (also reported).

    The samples behind each figure go along as ``<label>_times_s`` (the
    targets pair them up) and the cost of the first call as ``<label>_compile_s``.
    """
    errors = [timing["error"] for timing in timings.values() if "error" in timing]
    if errors:
        progress(f"  {row['backend']}: {errors[0]}")
        return {**row, "error": errors[0]}
    out = dict(row)
    for label, timing in timings.items():
        out[f"{label}_s"], out[f"{label}_times_s"] = timing[f"{stat}_s"], timing["times_s"]
        out[f"{label}_compile_s"] = timing["compile_s"]
    return out


def time_conv_layers(
    backends: dict[str, Backend], repeats: int, stat: str, progress: Progress, shapes: tuple = CONV_SHAPES
) -> list[dict[str, Any]]:
    """One row per backend and ``shapes`` entry (default :data:`CONV_SHAPES`).

    Each row is ``{"backend", "workload", "convlab_s", "framework_s"}``
    (forward and backward of ``sum(output)`` w.r.t. the parameters), or
    ``"error"`` where a call failed. Where the reference module
    provides no conv layer, ``"not_provided": ["framework"]`` replaces
    ``framework_s``.
    """
    rng = np.random.default_rng(0)
    rows = []
    for name, c_in, c_out, kernel, padding, shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        for backend_name, backend in backends.items():
            progress(f"{backend_name} cl.nn.Conv2d vs its framework's conv layer, {name}")
            with use_backend(backend_name):
                layer = nn.Conv2d(c_in, c_out, kernel, padding=padding, seed=0)
            X = backend.tensor(x)
            fns = {"convlab": functools.partial(_step, backend, layer, X, X, SumOfOutputs(backend), None)}
            until = [Comparison("convlab", ("framework",), TARGETS["f"][1])]
            row: dict[str, Any] = {"backend": backend_name, "workload": name}
            own = _baseline(backend, "framework_conv2d_step", c_in, c_out, kernel, padding, x)
            if own is None:
                row["not_provided"] = ["framework"]
            else:
                fns["framework"] = own
            rows.append(_row(row, measure_side_by_side(fns, repeats, until), stat, progress))
    return rows


def time_lenet_steps(
    backends: dict[str, Backend], repeats: int, stat: str, progress: Progress, compiled: bool = True
) -> list[dict[str, Any]]:
    """One row per backend: seconds per LeNet training step at batch 128, convlab's and the idiomatic one.

    Each row is ``{"backend", "convlab_s", "idiomatic_s"}``, or ``"error"``;
    where the reference module provides no idiomatic step,
    ``"not_provided": ["idiomatic"]`` replaces ``idiomatic_s``. With
    ``compiled``, the backend's compiled step too (``"compiled_s"``, or
    ``"compiled"`` in ``"not_provided"``); without, none is compiled (compiling
    takes seconds to a minute a backend: ``--quick`` leaves it out).
    """
    rows = []
    for backend_name, backend in backends.items():
        progress(f"{backend_name} LeNet step vs the framework's idiomatic step, batch {LENET_BATCH}")
        with use_backend(backend_name):
            net = models.lenet(seed=0)
            # the compiled step's own copy: the two steps never share a module
            twin = models.lenet(seed=0) if compiled else None
        row = {"backend": backend_name}
        rows.append(_step_row(backend, net, row, "idiomatic_lenet_step", (), repeats, stat, progress, "h", twin))
    return rows


MODERN_MODELS = ("bn_lenet", "alexnet", "vgg", "nin", "googlenet", "resnet18", "densenet")
"""d2l §8's networks :func:`time_modern_steps` times: BN-LeNet at the book's size, the others at ``size="mini"``."""


def time_modern_steps(
    backends: dict[str, Backend],
    repeats: int,
    stat: str,
    progress: Progress,
    model_names: tuple[str, ...] = MODERN_MODELS,
    compiled: bool = True,
) -> list[dict[str, Any]]:
    """One row per §8 network and backend: seconds per training step at batch 128, convlab's and the idiomatic one.

    convlab's step is ``train_classifier``'s (the framework's autograd and
    SGD update, training mode: batch norm on the batch, dropout on); the
    idiomatic one is the reference module's ``idiomatic_modern_step``, the
    same network written with the framework's own layers and optimiser
    (:meth:`ReferenceModule.idiomatic_modern_step <convlab.backends.reference.ReferenceModule.idiomatic_modern_step>`).

    Each row is ``{"model", "backend", "convlab_s", "idiomatic_s"}``, or
    ``"error"``; ``"not_provided": ["idiomatic"]`` replaces ``idiomatic_s``
    where the reference module has no copy of the network. Where
    ``train_classifier(compile="auto")`` compiles an epoch's run on the
    backend (its :attr:`~convlab.backends.base.Backend.compile_break_even_steps`
    is set), the row has ``"auto_compiles": True`` and, with ``compiled``,
    the compiled step's ``"compiled_s"`` too: the step such a run takes,
    which target (k) judges.
    """
    rows = []
    for model in model_names:
        for backend_name, backend in backends.items():
            progress(f"{backend_name} {model} step vs the framework's idiomatic step, batch {LENET_BATCH}")
            auto_compiles = backend.compile_break_even_steps is not None
            with use_backend(backend_name):
                make = functools.partial(getattr(models, model), seed=0, size="book" if model == "bn_lenet" else "mini")
                net = make()
                twin = make() if compiled and auto_compiles else None
            row = {"model": model, "backend": backend_name, **({"auto_compiles": True} if auto_compiles else {})}
            reference = ("idiomatic_modern_step", (model,))
            rows.append(_step_row(backend, net, row, *reference, repeats, stat, progress, "k", twin, "k"))
    return rows


def _step_row(
    backend: Backend,
    net: Any,
    row: dict[str, Any],
    reference: str,
    reference_args: tuple[Any, ...],
    repeats: int,
    stat: str,
    progress: Progress,
    target: str | None = None,
    compiled_net: Any = None,
    compiled_target: str | None = None,
) -> dict[str, Any]:
    """``row`` with the seconds of one SGD step of ``net`` at batch 128 and of the reference module's ``reference``.

    With a ``target`` of :data:`~convlab.bench.limits.TARGETS`, sampling goes on until the steps' ratio settles
    against its limit (:func:`~convlab.bench.timing.measure_side_by_side`). With ``compiled_net`` (a copy of
    ``net``), the backend's compiled step of it is timed too, as ``"compiled"``, its compile time apart, until
    its ratio settles against ``compiled_target``'s limit (by default target m, or n where the idiomatic step is
    itself compiled whole, as JAX's is: ``"idiomatic_compiled"`` says which).
    """
    rng = np.random.default_rng(0)
    X = rng.random((LENET_BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, LENET_BATCH)
    Y = np.eye(10, dtype=np.float32)[y]
    weights = {name: np.asarray(backend.to_numpy(value)) for name, value in backend.parameters(net).items()}
    loss = SoftmaxCrossEntropy(backend)
    backend.set_training(net, True)
    fns = {"convlab": functools.partial(_step, backend, net, backend.tensor(X), backend.tensor(Y), loss, 0.1)}
    own = _baseline(backend, reference, *reference_args, weights, 0.1, X, y)
    if own is None:
        row.setdefault("not_provided", []).append("idiomatic")
    else:
        fns["idiomatic"] = own
    until = [Comparison("convlab", ("idiomatic",), TARGETS[target][1])] if target else []
    if compiled_net is not None:
        backend.set_training(compiled_net, True)
        try:
            compiled = backend.compiled_train_step(compiled_net, loss, 0.1)
        except CompileUnavailableError:
            row.setdefault("not_provided", []).append("compiled")
        else:
            fns["compiled"] = functools.partial(_read, compiled, backend.tensor(X), backend.tensor(Y))
            row["idiomatic_compiled"] = bool(getattr(load_reference(backend), "IDIOMATIC_STEP_COMPILED", False))
            limit = TARGETS[compiled_target or ("n" if row["idiomatic_compiled"] else "m")][1]
            until += [Comparison("compiled", ("idiomatic",), limit)] if own is not None else []
    return _row(row, measure_side_by_side(fns, repeats, until), stat, progress)


def time_data_loading(
    backends: dict[str, Backend], steps: list[dict[str, Any]], repeats: int, stat: str, progress: Progress
) -> list[dict[str, Any]]:
    """One row per backend: seconds to get one Fashion-MNIST training batch, over that backend's LeNet step.

    Each row is ``{"backend", "batch_s", "step_s", "ratio"}``; empty where
    Fashion-MNIST is not installed.
    """
    from convlab.data import FashionMNIST

    try:
        FashionMNIST(batch_size=LENET_BATCH)
    except DataNotFoundError as exc:
        progress(f"data loading: skipped, {exc}")
        return []
    step_s = {row["backend"]: row.get("convlab_s") for row in steps}
    rows = []
    for backend_name in backends:
        progress(f"{backend_name} Fashion-MNIST batches")
        with use_backend(backend_name):
            data = FashionMNIST(batch_size=LENET_BATCH, seed=0)
            batches = math.ceil(data.num_train / LENET_BATCH)

            epoch = functools.partial(_drain, data)
            timing = measure_side_by_side({"epoch": epoch}, max(1, repeats // 2))["epoch"]
        if "error" in timing:
            rows.append({"backend": backend_name, "error": timing["error"]})
            continue
        batch_s = timing[f"{stat}_s"] / batches
        step = step_s.get(backend_name)
        ratio = batch_s / step if step else None
        row = {"backend": backend_name, "batch_s": batch_s, "step_s": step, "ratio": ratio}
        rows.append({**row, "batch_times_s": [seconds / batches for seconds in timing["times_s"]]})
    return rows


def _drain(data: Any) -> None:
    """Every training batch of one epoch, made and dropped."""
    for _ in data.train_dataloader():
        pass
