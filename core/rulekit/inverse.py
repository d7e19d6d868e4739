"""Learned inverse (feedback) models ``g_l`` that map a layer's output back to its input.

``LayerInverse(op)``: ``g(a) = σ(op.input_vjp(a, V) + c)`` with ``V`` shaped like the
op's forward weight (for a linear layer ``Vᵀ``-shaped map ``out → in``; for conv and
locally connected layers the transposed operator with the same sparsity and its own
weights, applied as a vector-Jacobian product, as in the paper's appendix), drawn
Glorot-uniform or orthogonal (``op.draw_weight``).
``DenseInverse(n_in, out_shape)``: ``g(u) = σ(u V + c)`` for inputs that are not a layer
output (AO-SDTP reads ``[o, z]``).

Shapes: input ``(B, *in)`` → output ``(B, *out_shape)``. ``param_grads(inp, out, grad_out)``
gives the gradients of ``<g(inp), grad_out>`` in closed form (a local delta rule, no
autograd); ``write_param_grads(inp, out, grad_out, dest)`` writes the same values into
``dest`` (name → tensor, e.g. the parameters' ``.grad`` views, overwritten, no allocation of
a weight-sized tensor where the op writes in place); for ``LayerInverse`` the weight gradient is the forward op's own
``param_grads`` with input and output roles swapped (the adjoint identity
``<op.input_vjp(a, V), x> = <a, op_V(x)>``), so it holds for every layer kind.
Forward weights are only read.

Pooled layers: ``LayerInverse(op, ..., pool=layer.pool)`` undoes the pooling first,
``g(h) = σ(op.input_vjp(Pᵀ h, V) + c)`` with ``Pᵀ`` the transpose of the pooling at the forward
evaluation being inverted (``Pool.transpose``): its *context* ``ctx`` is that evaluation's
max-pooling indices ``(B, C, h, w)`` (one row per row of ``h``; None for average and global
pooling, which need none). Without ``pool`` the context is ignored and nothing changes.
"""

from __future__ import annotations

import math

import torch
from bioscale.architectures import make_activation
from bioscale.architectures.ops import AffineOp, glorot_bound, product_into, sum_into, sum_to_shape
from bioscale.architectures.post import Pool
from torch import nn


class LayerInverse(nn.Module):
    """Inverse of an affine op (``op`` is referenced, not owned: its weights never train here)."""

    op: AffineOp  # set through __dict__ in __init__
    pool: Pool | None  # set through __dict__ in __init__ (the layer's, not a submodule)

    def __init__(
        self,
        op,
        activation: str = "tanh",
        generator: torch.Generator | None = None,
        init: str = "glorot",
        pool: Pool | None = None,
    ):
        super().__init__()
        self.__dict__["op"] = op  # not a submodule: keeps the forward weights out of this module's parameters
        self.weight = nn.Parameter(op.draw_weight(generator, init))
        self.bias = nn.Parameter(torch.zeros(op.inverse_bias_shape, device=op.weight.device))
        self.activation = make_activation(activation)
        self.out_shape = tuple(op.in_shape)
        self.__dict__["pool"] = pool  # the layer's (no parameters); None: a layer without pooling

    def unpool(self, h: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """``Pᵀ h``: ``(B, *layer out_shape)`` → ``(B, *op.out_shape)`` at the evaluation whose
        pooling context is ``ctx``; ``h`` itself without pooling. No grad."""
        return h if self.pool is None else self.pool.transpose(h, self.op.out_shape, ctx)

    def forward(self, a: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        """``a``: ``(B, *layer out_shape)`` (the op's ``out_shape`` without pooling) →
        ``(B, *op.in_shape)``; ``ctx``: the pooling context of the evaluation ``a`` came from."""
        if self.pool is not None:
            a = self.pool.transpose(a, self.op.out_shape, ctx)
        return self.activation.forward_(self.op.input_vjp(a, self.weight, self.bias))  # a fresh pre-activation

    def param_grads(self, a: torch.Tensor, out: torch.Tensor, grad_out: torch.Tensor, ctx=None) -> dict:
        """Gradients of ``<g(a, ctx), grad_out>``; ``out = g(a, ctx)``; all ``(B, ...)``, no autograd."""
        grad_pre = self.activation.backward(out, grad_out)
        a = self.unpool(a, ctx)
        return {"weight": self.op.weight_grad(grad_pre, a), "bias": sum_to_shape(grad_pre, self.bias.shape)}

    def write_param_grads(self, a, out, grad_out, dest: dict, ctx=None) -> None:
        """``param_grads(a, out, grad_out, ctx)`` written into ``dest["weight"]``, ``dest["bias"]``."""
        grad_pre = self.activation.backward(out, grad_out)
        self.op.write_weight_grad(grad_pre, self.unpool(a, ctx), dest["weight"])
        dest["bias"].copy_(sum_to_shape(grad_pre, self.bias.shape))


class DenseInverse(nn.Module):
    """A dense inverse from ``n_in`` features to ``out_shape`` (``init``: Glorot-uniform or
    orthogonal ``(n_in, n_out)`` weight; zero bias)."""

    def __init__(
        self, n_in: int, out_shape: tuple, activation: str = "tanh", generator=None, device=None, init: str = "glorot"
    ):
        super().__init__()
        n_out = math.prod(out_shape)
        if init == "orthogonal":
            w = nn.init.orthogonal_(torch.empty(n_in, n_out), generator=generator)
        else:
            w = torch.empty(n_in, n_out).uniform_(
                -glorot_bound(n_in, n_out), glorot_bound(n_in, n_out), generator=generator
            )
        self.weight = nn.Parameter(w.to(device))
        self.bias = nn.Parameter(torch.zeros(n_out, device=device))
        self.activation = make_activation(activation)
        self.out_shape = tuple(out_shape)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``u``: ``(B, n_in)`` → ``(B, *out_shape)``."""
        return self.activation.forward_(torch.addmm(self.bias, u, self.weight)).reshape(u.shape[0], *self.out_shape)

    def param_grads(self, u: torch.Tensor, out: torch.Tensor, grad_out: torch.Tensor) -> dict:
        """Gradients of ``<g(u), grad_out>``; ``out = g(u)``; no autograd."""
        grad_pre = self.activation.backward(out, grad_out).reshape(u.shape[0], -1)
        return {"weight": u.t() @ grad_pre, "bias": grad_pre.sum(0)}

    def write_param_grads(self, u, out, grad_out, dest: dict) -> None:
        """``param_grads(u, out, grad_out)`` written into ``dest["weight"]``, ``dest["bias"]``."""
        grad_pre = self.activation.backward(out, grad_out).reshape(u.shape[0], -1)
        product_into(torch.mm, u.t(), grad_pre, dest["weight"])
        sum_into(grad_pre, 0, dest["bias"])
