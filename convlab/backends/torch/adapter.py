"""The PyTorch backend.

Notes
-----
* NumPy input is copied once, as the book's ``d2l.tensor`` (``torch.tensor``)
  does: a tensor never aliases the caller's array, which torch could not do
  anyway for negative-stride (``np.flip``), read-only or byte-swapped arrays.
  A float32 torch tensor is returned as it is, so parameters keep their graph.
* :meth:`TorchBackend.corr2d_loop` is the book's PyTorch tab. Its in-place
  item assignment ``Y[i, j] = ...`` into a fresh ``torch.zeros`` is recorded
  by autograd (as ``CopySlices``), so the loop layer *is* differentiable in
  PyTorch, only slow; :func:`convlab.autograd_exercise` reports the gradients.
* The shift-and-add accumulates with in-place ``addcmul_``: one
  output-sized buffer, no temporaries, and still differentiable because no
  backward formula needs the accumulator's old value.
* The hand-written layer is an ``nn.Module`` with ``nn.Parameter`` weight
  and bias; the built-in one is ``nn.Conv2d(1, 1, kernel_size, bias=False)``
  whose ``forward`` adds and removes the batch and channel axes. Both keep
  their weight under ``.weight``, so the training primitives treat them alike.
* Gradients come from ``loss.backward()`` into ``.grad``, reset to ``None``
  first (``zero_grad``), as the book's training loop does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from convlab.backends.base import Backend, Forward, Loss, weight_and_bias


class Conv2D(nn.Module):
    """The book's hand-written layer; its forward pass comes from the core."""

    def __init__(self, weight: Any, bias: Any, forward: Forward) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)
        self.forward_fn = forward

    def forward(self, X: Any) -> Any:
        return self.forward_fn(X, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"kernel_size={tuple(self.weight.shape)}, bias={self.bias is not None}"


class Conv2d2D(nn.Conv2d):
    """``nn.Conv2d(1, 1, kernel_size, bias=False)`` on 2-D inputs and outputs."""

    def __init__(self, kernel_size: tuple[int, int]) -> None:
        super().__init__(1, 1, kernel_size, bias=False)

    def forward(self, X: Any) -> Any:
        X = X if isinstance(X, torch.Tensor) else torch.as_tensor(X, dtype=torch.float32)
        return self._conv_forward(X.view(1, 1, *X.shape), self.weight, None).squeeze((0, 1))


class TorchBackend(Backend):
    def resolve_device(self, device: str | None) -> str:
        if device is None:
            return str(torch.get_default_device())
        try:
            place = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device: expected a torch device such as 'cpu' or 'cuda', got {device!r} ({exc})"
            ) from None
        if place.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} was asked for, but torch sees no CUDA device here; use 'cpu'")
        return str(place)

    def version(self) -> str:
        return str(torch.__version__)

    @property
    def tensor_types(self) -> tuple[type, ...]:
        return (torch.Tensor,)

    def tensor(self, data: Any) -> Any:
        if isinstance(data, torch.Tensor):
            return data.to(torch.float32)  # the same tensor when already float32
        fresh = torch.from_numpy(np.array(data, dtype=np.float32, order="C"))  # one fresh copy
        return fresh if self.device == "cpu" else fresh.to(self.device)

    def is_real(self, x: Any) -> bool:
        return not (x.is_complex() or x.dtype == torch.bool)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    def flip(self, K: Any) -> Any:
        return torch.flip(K, (0, 1))  # torch slicing takes no negative steps

    def corr2d_loop(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), device=X.device)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    def corr2d_vectorized(self, X: Any, K: Any) -> Any:
        h, w = K.shape
        out_h, out_w = X.shape[0] - h + 1, X.shape[1] - w + 1
        Y = X[:out_h, :out_w] * K[0, 0]
        for a in range(h):
            for b in range(w):
                if a or b:
                    Y.addcmul_(X[a : a + out_h, b : b + out_w], K[a, b])
        return Y

    def corr2d_native(self, X: Any, K: Any) -> Any:
        return torch.nn.functional.conv2d(X[None, None], K[None, None])[0, 0]

    def auto_method(self, x_shape: tuple[int, int], k_shape: tuple[int, int]) -> str:
        # torch 2.13 CPU, one thread, microseconds (vectorized / native):
        #   n=8..64:  1x2 12/10, 3x3 56/9-15, 5x5 145/50-79
        #   n=128:    1x2 15/15, 2x2 32/20, 3x3 69/35, 5x5 185/189
        #   n=256:    1x2 27/180, 3x3 119/370, 5x5 358/660
        #   n=1024:   1x2 279/34923, 3x3 1221/37790, 15x15 38800/118400
        # Each shift costs a few microseconds of dispatch, so oneDNN's single
        # call wins on small images; past about 128x128 pixels it switches to
        # a path that is slow for one channel, 5x to 100x behind shift-and-add.
        return "native" if x_shape[0] * x_shape[1] <= 128 * 128 else "vectorized"

    def conv2d_layer(self, kernel_size, weight, bias, forward: Forward) -> Any:
        # The book's PyTorch tab initialises the weight uniformly on [0, 1).
        w = torch.rand(kernel_size, device=self.device) if weight is None else self.tensor(weight)
        return Conv2D(w, None if bias is None else self.tensor(bias), forward)

    def builtin_layer(self, kernel_size, weight) -> Any:
        layer = Conv2d2D(kernel_size).to(self.device)
        if weight is not None:
            with torch.no_grad():
                layer.weight.copy_(self.tensor(weight).reshape(layer.weight.shape))
        return layer

    def parameters(self, layer: Any) -> dict[str, np.ndarray]:
        # nn.Conv2d stores its weight as (out, in, h, w): report it as (h, w).
        return {name: self.to_numpy(p).reshape(p.shape[-2:]).copy() for name, p in weight_and_bias(layer).items()}

    def value_and_grad(self, layer: Any, X: Any, Y: Any, loss: Loss):
        params = weight_and_bias(layer)
        for p in params.values():
            p.grad = None  # what zero_grad() does, without walking the module tree
        value = loss(layer(X), Y)
        value.backward()
        grads = {name: p.grad if p.grad is None else p.grad.reshape(p.shape[-2:]) for name, p in params.items()}
        return value.item(), grads

    def sgd_update(self, layer: Any, grads: dict[str, Any], lr: float) -> None:
        params = weight_and_bias(layer)
        with torch.no_grad():
            for name, grad in grads.items():
                params[name].sub_(grad.reshape(params[name].shape), alpha=lr)
