"""Affine operators ``a = op(x)``: the linear part of a layer, plus its transpose.

Every operator keeps per-sample ``in_shape`` / ``out_shape`` and offers
``input_vjp(grad_a, weight=None)``: the transpose of its linear map applied to ``grad_a``
(``(B, *out_shape)`` → ``(B, *in_shape)``), with its own weight or any tensor shaped like
it. Because the map is linear the result does not depend on the input point; that one
method serves BP (own weight), FA (fixed random weight) and learned inverses (trained
weight), and works without autograd. ``new_weight`` draws a Glorot-uniform tensor shaped
like ``weight`` from a given generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_INITS = ("glorot", "orthogonal")  # schemes for a model's initial forward weights


def glorot_bound(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, *dims)`` as ``(B, prod(dims))``; ``x`` itself when it is already 2-D."""
    return x if x.dim() == 2 else x.reshape(x.shape[0], -1)


def product_into(fn, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``fn(a, b)`` (``torch.mm`` or ``torch.bmm``) written into ``out``: in place, or, under
    autocast or when the dtypes differ (bf16 products, fp32 gradients), computed and copied."""
    if a.dtype == b.dtype == out.dtype and not torch.is_autocast_enabled(out.device.type):
        return fn(a, b, out=out)
    return out.copy_(fn(a, b))


def matched(*tensors: torch.Tensor) -> tuple:
    """``tensors`` in one dtype, for ops autocast does not cover (convolution gradients): the
    autocast dtype inside an autocast region, else their promoted dtype; unchanged when they agree."""
    device = tensors[0].device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    else:
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
    return tuple(t if t.dtype == dtype else t.to(dtype) for t in tensors)


def sum_into(t: torch.Tensor, dim: int, out: torch.Tensor) -> torch.Tensor:
    """``t.sum(dim)`` written into ``out`` (in place when the dtypes agree, else copied)."""
    if t.dtype == out.dtype:
        return torch.sum(t, dim, out=out)
    return out.copy_(t.sum(dim))


def sum_to_shape(t: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Sum ``t`` ``(B, *dims)`` over the batch and over every dim where ``shape`` has size 1
    (the gradient of a bias of ``shape`` broadcast over ``t``'s sample dims)."""
    t = t.sum(0)
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and t.shape[i] != 1)
    return t.sum(dims, keepdim=True) if dims else t


class AffineOp(nn.Module):
    """Base class. Subclasses set ``in_shape``, ``out_shape``, ``weight``, ``bias``,
    ``fan_in``, ``fan_out`` and implement ``forward`` and ``input_vjp``."""

    in_shape: tuple
    out_shape: tuple
    fan_in: int
    fan_out: int
    weight: nn.Parameter
    bias: nn.Parameter

    def new_weight(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Glorot-uniform tensor shaped like ``self.weight`` (drawn on the CPU, moved to its device)."""
        bound = glorot_bound(self.fan_in, self.fan_out)
        w = torch.empty(self.weight.shape, dtype=self.weight.dtype)
        w.uniform_(-bound, bound, generator=generator)
        return w.to(self.weight.device)

    @property
    def inverse_bias_shape(self) -> tuple:
        """Shape of the bias of a learned inverse ``x ≈ σ(Vᵀ a + c)`` of this op (per sample)."""
        return tuple(self.in_shape)

    def orthogonal_weight(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A tensor shaped like ``self.weight`` whose ``(out, in)`` matrix (the weight with every
        dim after the first flattened: linear and conv filters) has orthonormal rows, or
        orthonormal columns when it is tall; gain 1. Drawn on the CPU, moved to the weight's
        device. Subclasses with another layout override it."""
        w = torch.empty(self.weight.shape, dtype=self.weight.dtype)
        nn.init.orthogonal_(w, generator=generator)
        return w.to(self.weight.device)

    def draw_weight(self, generator: torch.Generator | None = None, scheme: str = "glorot") -> torch.Tensor:
        """A fresh tensor shaped like ``self.weight``, drawn by ``scheme`` (one of ``WEIGHT_INITS``)."""
        if scheme == "glorot":
            return self.new_weight(generator)
        if scheme == "orthogonal":
            return self.orthogonal_weight(generator)
        raise ValueError(f"unknown weight init {scheme!r}; valid: {', '.join(WEIGHT_INITS)}")

    def reset_parameters(self, generator: torch.Generator | None = None, scheme: str = "glorot") -> None:
        """Draw the weight by ``scheme`` and zero the bias."""
        with torch.no_grad():
            self.weight.copy_(self.draw_weight(generator, scheme))
            if self.bias is not None:
                self.bias.zero_()

    def input_vjp(
        self, grad_a: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Transpose map applied to ``grad_a`` ``(B, *out_shape)`` → ``(B, *in_shape)``, plus
        ``bias`` (broadcast to ``in_shape``) when given (learned inverses use it)."""
        raise NotImplementedError

    def weight_grad(self, x: torch.Tensor, grad_a: torch.Tensor) -> torch.Tensor:
        """Gradient of ``<op(x), grad_a>`` with respect to the weight only."""
        return self.param_grads(x, grad_a)["weight"]

    def param_grads(self, x: torch.Tensor, grad_a: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradient of ``<op(x), grad_a>`` for each parameter of this op (a local, explicit
        weight update: e.g. ``grad_aᵀ x`` for a linear map). ``x``: ``(B, *in_shape)``,
        ``grad_a``: ``(B, *out_shape)``. This generic version uses autograd on the op alone;
        subclasses override it with closed forms."""
        names = [n for n, _ in self.named_parameters(recurse=False)]
        params = [p for _, p in self.named_parameters(recurse=False)]
        with torch.enable_grad():
            out = self.forward(x.detach())
            grads = torch.autograd.grad(out, params, grad_a)
        return dict(zip(names, grads))

    def write_weight_grad(self, x: torch.Tensor, grad_a: torch.Tensor, out: torch.Tensor) -> None:
        """``weight_grad(x, grad_a)`` written into ``out`` (shaped like the weight, overwritten).
        This generic version copies; subclasses write in place where they can."""
        out.copy_(self.weight_grad(x, grad_a))

    def write_param_grads(self, x: torch.Tensor, grad_a: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
        """``param_grads(x, grad_a)`` written into the tensors of ``out`` (name → tensor shaped
        like that parameter, overwritten). The trainer passes last step's ``.grad`` tensors, so
        that large layers do not allocate (and page-fault) a fresh gradient every step.
        This generic version copies; subclasses write in place where they can."""
        for name, grad in self.param_grads(x, grad_a).items():
            out[name].copy_(grad)


class LinearOp(AffineOp):
    """Fully connected: ``a = flatten(x) Wᵀ + b``; ``W`` is ``(out_features, prod(in_shape))``.

    Accepts any per-sample input shape (flattened), so a linear layer can follow a
    convolutional one without a separate flatten layer.
    """

    def __init__(self, in_shape, out_features: int, bias: bool = True):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.out_shape = (out_features,)
        n_in = math.prod(self.in_shape)
        self.fan_in, self.fan_out = n_in, out_features
        self.weight = nn.Parameter(torch.empty(out_features, n_in))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features))
        else:
            self.register_parameter("bias", None)

    # Inputs and outputs that are already flat skip ``reshape``: a view, but a dispatched op
    # (microseconds each; a TP step makes dozens of these calls).
    def forward(self, x):
        return F.linear(_flat(x), self.weight, self.bias)

    def input_vjp(self, grad_a, weight=None, bias=None):
        w = self.weight if weight is None else weight
        flat = grad_a @ w if bias is None else torch.addmm(bias if bias.dim() == 1 else bias.reshape(-1), grad_a, w)
        return flat if len(self.in_shape) == 1 else flat.reshape(grad_a.shape[0], *self.in_shape)

    def weight_grad(self, x, grad_a):
        return grad_a.t() @ _flat(x)

    def param_grads(self, x, grad_a):
        if self.bias is None:
            return {"weight": self.weight_grad(x, grad_a)}
        return {"weight": self.weight_grad(x, grad_a), "bias": grad_a.sum(0)}

    def write_weight_grad(self, x, grad_a, out):
        product_into(torch.mm, grad_a.t(), _flat(x), out)

    def write_param_grads(self, x, grad_a, out):
        self.write_weight_grad(x, grad_a, out["weight"])
        if self.bias is not None:
            sum_into(grad_a, 0, out["bias"])

    def extra_repr(self):
        return f"in={self.in_shape}, out={self.out_shape[0]}"


def same_padding(kernel: int) -> int:
    return kernel // 2


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class Conv2dOp(AffineOp):
    """Weight-shared convolution (the paper's "BP convnet"); ``W`` is ``(C_out, C_in, k, k)``."""

    def __init__(
        self,
        in_shape,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
    ):
        super().__init__()
        c, h, w = in_shape
        self.padding = same_padding(kernel_size) if padding is None else padding
        self.stride = stride
        self.kernel_size = kernel_size
        self.in_shape = (c, h, w)
        self.out_shape = (
            out_channels,
            conv_out_size(h, kernel_size, stride, self.padding),
            conv_out_size(w, kernel_size, stride, self.padding),
        )
        if min(self.out_shape[1:]) < 1:
            raise ValueError(
                f"convolution: input {h}x{w} too small for kernel {kernel_size} with padding {self.padding}"
            )
        self.fan_in = c * kernel_size * kernel_size
        self.fan_out = out_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, c, kernel_size, kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels))
        else:  # e.g. before a batch norm, whose β is the bias
            self.register_parameter("bias", None)

    @property
    def inverse_bias_shape(self) -> tuple:
        return (self.in_shape[0], 1, 1)  # shared over locations, like the forward bias

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def input_vjp(self, grad_a, weight=None, bias=None):
        w, grad_a = matched(self.weight if weight is None else weight, grad_a)
        out = torch.nn.grad.conv2d_input(
            (grad_a.shape[0], *self.in_shape), w, grad_a, stride=self.stride, padding=self.padding
        )
        return out if bias is None else out + bias

    def param_grads(self, x, grad_a):
        """One ``convolution_backward`` call for the weight and the bias, with the real weight (its
        layout lets the CPU's kernel take its fast path; ``nn.grad.conv2d_weight``'s expanded stand-in
        costs about 1.5 x on a LeNet layer)."""
        x, grad_a, w = matched(x, grad_a, self.weight)
        has_bias = self.bias is not None
        _, weight, bias = torch.ops.aten.convolution_backward(
            grad_a,
            x,
            w,
            [w.shape[0]] if has_bias else None,
            [self.stride] * 2,
            [self.padding] * 2,
            [1, 1],
            False,
            [0, 0],
            1,
            [False, True, has_bias],
        )
        return {"weight": weight, "bias": bias} if has_bias else {"weight": weight}

    def extra_repr(self):
        return f"in={self.in_shape}, out={self.out_shape}, k={self.kernel_size}, s={self.stride}, p={self.padding}"
