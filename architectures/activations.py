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

    def backward(self, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        return grad_h

    def extra_repr(self) -> str:
        return self.name


class Tanh(Activation):
    name = "tanh"

    def forward(self, a):
        return torch.tanh(a)

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
