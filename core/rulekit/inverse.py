"""Learned inverse (feedback) models ``g_l`` that map a layer's output back to its input.

``LayerInverse(op)``: ``g(a) = σ(op.input_vjp(a, V) + c)`` with ``V`` shaped like the
op's forward weight (for a linear layer ``Vᵀ``-shaped map ``out → in``; for conv and
locally connected layers the transposed operator with the same sparsity and its own
weights, applied as a vector-Jacobian product, as in the paper's appendix).
``DenseInverse(n_in, out_shape)``: ``g(u) = σ(u V + c)`` for inputs that are not a layer
output (AO-SDTP reads ``[o, z]``).

Shapes: input ``(B, *in)`` → output ``(B, *out_shape)``. Parameters train with autograd
(grad mode as called); forward weights are only read.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bioscale.architectures import make_activation
from bioscale.architectures.ops import glorot_bound


class LayerInverse(nn.Module):
    """Inverse of an affine op (``op`` is referenced, not owned: its weights never train here)."""

    def __init__(self, op, activation: str = "tanh", generator: torch.Generator | None = None):
        super().__init__()
        self.__dict__["op"] = op  # not a submodule: keeps the forward weights out of this module's parameters
        self.weight = nn.Parameter(op.new_weight(generator))
        self.bias = nn.Parameter(torch.zeros(op.inverse_bias_shape, device=op.weight.device))
        self.activation = make_activation(activation)
        self.out_shape = tuple(op.in_shape)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """``a``: ``(B, *op.out_shape)`` → ``(B, *op.in_shape)``."""
        return self.activation(self.op.input_vjp(a, self.weight) + self.bias)


class DenseInverse(nn.Module):
    """A dense inverse from ``n_in`` features to ``out_shape`` (Glorot init, zero bias)."""

    def __init__(self, n_in: int, out_shape: tuple, activation: str = "tanh", generator=None, device=None):
        super().__init__()
        n_out = math.prod(out_shape)
        w = torch.empty(n_in, n_out).uniform_(-glorot_bound(n_in, n_out), glorot_bound(n_in, n_out), generator=generator)
        self.weight = nn.Parameter(w.to(device))
        self.bias = nn.Parameter(torch.zeros(n_out, device=device))
        self.activation = make_activation(activation)
        self.out_shape = tuple(out_shape)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``u``: ``(B, n_in)`` → ``(B, *out_shape)``."""
        return self.activation(torch.addmm(self.bias, u, self.weight)).reshape(u.shape[0], *self.out_shape)
