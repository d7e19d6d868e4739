"""Element-wise activations with a derivative computed from the output.

``backward(h, grad_h)`` returns ``grad_h * σ'(a)`` using only the output ``h = σ(a)``, with
the same ATen kernels autograd uses, so that rules reproduce autograd's numbers exactly.
All tensors share one shape; no grad mode requirement.
"""

from __future__ import annotations

import torch
from torch import nn


class Activation(nn.Module):
    name = "identity"

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a

    def forward_(self, a: torch.Tensor) -> torch.Tensor:
        """``forward(a)``, free to overwrite ``a`` (a temporary pre-activation nobody else
        reads) when no autograd graph is being built; the same values as ``forward``."""
        return self.forward(a)

    def backward(self, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        return grad_h

    def extra_repr(self) -> str:
        return self.name


_ONE = torch.tensor(1.0)  # a 0-dim operand: a Python scalar costs a conversion per call


class Tanh(Activation):
    """``tanh``. On the CPU it is evaluated as ``2 sigmoid(2a) - 1`` (the same function; at most
    ~2e-7 from ``torch.tanh`` in float32), 1.4-1.9x faster than torch's CPU ``tanh`` kernel at
    the TP rules' sizes (results/tanh_cpu.json, benchmarks/bench_tanh.py); the TP rules
    evaluate tanh up to 24 batch-sized times per step. Elsewhere ``torch.tanh``. The output,
    and so ``backward``, is bit-for-bit the same in both grad modes and in ``forward_``."""

    name = "tanh"

    def forward(self, a):
        if a.device.type != "cpu":
            return torch.tanh(a)
        if torch.is_grad_enabled() and a.requires_grad:
            return torch.sigmoid(a + a) * 2 - 1  # autograd-safe: no in-place op on a saved output
        return self._from_doubled_(a + a)

    def forward_(self, a):
        if a.device.type != "cpu" or (torch.is_grad_enabled() and a.requires_grad):
            return self.forward(a)
        return self._from_doubled_(a.add_(a))

    @staticmethod
    def _from_doubled_(t: torch.Tensor) -> torch.Tensor:
        """``2 sigmoid(t) - 1`` computed in ``t``'s memory."""
        s = torch.sigmoid_(t)
        return s.add_(s).sub_(_ONE)

    def backward(self, h, grad_h):
        return torch.ops.aten.tanh_backward(grad_h, h)


class ReLU(Activation):
    name = "relu"

    def forward(self, a):
        return torch.relu(a)

    def backward(self, h, grad_h):
        return torch.ops.aten.threshold_backward(grad_h, h, 0)


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, a):
        return torch.sigmoid(a)

    def backward(self, h, grad_h):
        return torch.ops.aten.sigmoid_backward(grad_h, h)


ACTIVATIONS = {cls.name: cls for cls in (Activation, Tanh, ReLU, Sigmoid)}


def make_activation(name: str) -> Activation:
    """Activation by name (``identity``, ``tanh``, ``relu``, ``sigmoid``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(ACTIVATIONS))}") from None
