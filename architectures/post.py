"""The non-weight parts of a layer, between its op's output ``a`` and its output ``h``.

``BatchNorm`` (per channel, batch statistics in training, running ones in evaluation), ``Pool``
(max, average, global average) and ``Shortcut`` (the fixed map a skip connection adds through).
Each has a training forward that returns what its backward needs, and a closed-form backward
with the ATen kernels autograd uses, so a layer's post part costs what plain PyTorch's does.
Everything here runs under ``no_grad`` in training; ``forward`` (nn.Module) is the ordinary,
differentiable version used by evaluation and by autograd references.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

POOLS = ("max", "avg", "global")
SHORTCUTS = ("identity", "pad")


class BatchSync:
    """Sums over the ranks of a data-parallel global batch for synchronised batch norm.

    ``share`` is this rank's rows over the global batch's (``n_r / N``); ``parallel`` the run's
    ``DataParallel`` (its ``sum_`` all-reduces in place). One process: no sync object at all."""

    def __init__(self, parallel, share: float):
        self.parallel, self.share = parallel, share

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        return self.parallel.sum_(t)


class BatchNorm(nn.Module):
    """``z = γ (a - μ) / sqrt(σ² + eps) + β`` per channel (dim 1) of ``(B, C)`` or ``(B, C, H, W)``.

    Parameters ``weight`` (γ, ones) and ``bias`` (β, zeros), buffers ``running_mean`` and
    ``running_var`` (momentum 0.1, unbiased variance), as ``nn.BatchNorm2d``. Statistics are formed
    in float32 whatever the input's dtype; the output has the input's dtype."""

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.channels, self.eps, self.momentum = channels, eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))  # cpu: a buffer, moved with the module
        self.register_buffer("running_var", torch.ones(channels))  # cpu: a buffer, moved with the module

    def _shape(self, a: torch.Tensor) -> tuple:
        return (1, -1) + (1,) * (a.dim() - 2)  # broadcast a (C,) vector over a's channel dim

    def _dims(self, a: torch.Tensor) -> tuple:
        return (0,) + tuple(range(2, a.dim()))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Differentiable: batch statistics in training mode (running statistics not updated),
        running statistics in evaluation mode."""
        if self.training:
            return F.batch_norm(a, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(a, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

    def train_forward(self, a: torch.Tensor, sync: BatchSync | None, update: bool) -> tuple:
        """``(z, saved)`` with the (global) batch's statistics; ``update``: move the running
        statistics (the trainer's step does; probes do not). One process: ATen's batch-norm kernel,
        the one autograd runs; under torchrun the statistics of the global batch. No grad."""
        af = a if a.dtype == self.weight.dtype else a.float()
        if sync is None:
            keep = (self.running_mean, self.running_var) if update else (None, None)
            z, mean, invstd = torch.ops.aten.native_batch_norm(
                af, self.weight, self.bias, *keep, True, self.momentum, self.eps
            )
            return z.to(a.dtype), {"input": af, "mean": mean, "invstd": invstd}
        dims, shape = self._dims(a), self._shape(a)
        count = int(round(af.numel() // af.shape[1] / sync.share))  # the global batch's values per channel
        mean = sync.sum_(af.sum(dims)) / count  # two passes over the global batch: its mean, then its variance
        var = sync.sum_((af - mean.view(shape)).square().sum(dims)) / count
        invstd = torch.rsqrt(var + self.eps)
        xhat = (af - mean.view(shape)) * invstd.view(shape)
        z = torch.addcmul(self.bias.view(shape), xhat, self.weight.view(shape))
        if update:
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (count / max(count - 1, 1)), self.momentum)
        return z.to(a.dtype), {"xhat": xhat, "invstd": invstd}

    def backward(self, grad_z: torch.Tensor, saved: dict, sync: BatchSync | None) -> torch.Tensor:
        """``δa`` from ``δz`` through the batch statistics: ``γ/σ (g - mean g - x̂ mean(g x̂))``, the
        means over the global batch (``sync``: every rank's sums, weighted by its share). The
        parameters' gradients are kept in ``saved`` for :meth:`param_grads`. No grad."""
        g = grad_z if grad_z.dtype == self.weight.dtype else grad_z.float()
        if "input" in saved:
            grad_a, gw, gb = torch.ops.aten.native_batch_norm_backward(
                g,
                saved["input"],
                self.weight,
                None,
                None,
                saved["mean"],
                saved["invstd"],
                True,
                self.eps,
                [True, True, True],
            )
            saved["grads"] = {"weight": gw, "bias": gb}
            return grad_a.to(grad_z.dtype)
        xhat, invstd = saved["xhat"], saved["invstd"]
        dims, shape = self._dims(grad_z), self._shape(grad_z)
        sums = torch.stack([g.sum(dims), (g * xhat).sum(dims)])
        saved["grads"] = {"weight": sums[1].clone(), "bias": sums[0].clone()}  # this rank's rows
        count = g.numel() // g.shape[1]
        if sync is not None:  # to the global loss's units, summed, back to this rank's
            sums = sync.sum_(sums * sync.share) / sync.share
            count = int(round(count / sync.share))
        mean_g, mean_gx = (sums / count).unbind()
        scale = (self.weight * invstd).view(shape)
        out = (g - mean_g.view(shape)).sub_(xhat * mean_gx.view(shape)).mul_(scale)
        return out.to(grad_z.dtype)

    def param_grads(self, grad_z: torch.Tensor, saved: dict) -> dict[str, torch.Tensor]:
        """``{"weight": Σ δz x̂, "bias": Σ δz}`` over this rank's rows and locations (float32) for the
        ``grad_z`` last passed to :meth:`backward` with ``saved`` (kept there; computed if none was)."""
        kept = saved.get("grads")
        if kept is not None:
            return kept
        g = grad_z.float()
        dims, shape = self._dims(grad_z), self._shape(grad_z)
        xhat = (
            saved["xhat"]
            if "xhat" in saved
            else (saved["input"] - saved["mean"].view(shape)) * saved["invstd"].view(shape)
        )
        return {"weight": (g * xhat).sum(dims), "bias": g.sum(dims)}

    def extra_repr(self) -> str:
        return f"{self.channels}"


class Pool(nn.Module):
    """``max`` or ``avg`` pooling (``kernel``, ``stride``, ``padding``) of ``(B, C, H, W)``, or
    ``global`` average pooling to ``(B, C)``."""

    def __init__(self, kind: str, kernel: int = 2, stride: int | None = None, padding: int = 0):
        super().__init__()
        if kind not in POOLS:
            raise ValueError(f"unknown pool {kind!r}; valid: {', '.join(POOLS)}")
        self.kind, self.kernel, self.padding = kind, kernel, padding
        self.stride = kernel if stride is None else stride

    def out_shape(self, shape: tuple) -> tuple:
        """Per-sample output shape for input ``shape`` ``(C, H, W)``."""
        c, h, w = shape
        if self.kind == "global":
            return (c,)
        size = [(n + 2 * self.padding - self.kernel) // self.stride + 1 for n in (h, w)]
        if min(size) < 1:
            raise ValueError(f"{self.kind} pooling: input {h}x{w} too small for kernel {self.kernel}")
        return (c, *size)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.kind == "global":
            return u.mean((2, 3))
        if self.kind == "max":
            return F.max_pool2d(u, self.kernel, self.stride, self.padding)
        return F.avg_pool2d(u, self.kernel, self.stride, self.padding)

    def train_forward(self, u: torch.Tensor) -> tuple:
        """``(h, indices)``; indices only for max pooling (None otherwise). No grad."""
        if self.kind == "max":
            return F.max_pool2d(u, self.kernel, self.stride, self.padding, return_indices=True)
        return self.forward(u), None

    def backward(self, grad_h: torch.Tensor, u: torch.Tensor, indices) -> torch.Tensor:
        """``δu`` ``(B, C, H, W)`` from ``δh``: the transpose of the pooling at this batch's input ``u``."""
        if self.kind == "global":
            h, w = u.shape[2:]
            return (grad_h / (h * w))[:, :, None, None].expand(u.shape).contiguous()
        k, s, p = [self.kernel] * 2, [self.stride] * 2, [self.padding] * 2
        if self.kind == "max":
            return torch.ops.aten.max_pool2d_with_indices_backward(grad_h, u, k, s, p, [1, 1], False, indices)
        return torch.ops.aten.avg_pool2d_backward(grad_h, u, k, s, p, False, True, None)

    def transpose(self, h: torch.Tensor, in_shape: tuple, indices: torch.Tensor | None = None) -> torch.Tensor:
        """``Pᵀ h``: ``(B, *out_shape(in_shape))`` → ``(B, *in_shape)``, the transpose of this pooling
        at the evaluation whose max-pooling ``indices`` ``(B, C, h, w)`` are given (max: each value
        added at its window's argmax, zero elsewhere: ``F.max_unpool2d`` where windows do not
        overlap; average: spread over the window, divided by its size; global: spread over the
        map, divided by its size). A TP inverse of a pooled layer reads through it. No grad."""
        c, height, width = in_shape
        if self.kind == "global":
            return (h / (height * width))[:, :, None, None].expand(h.shape[0], c, height, width).contiguous()
        if self.kind == "max":
            if indices is None:
                raise ValueError("the transpose of max pooling needs the indices of the evaluation it inverts")
            out = h.new_zeros((h.shape[0], c, height * width))
            return out.scatter_add_(2, indices.flatten(2), h.flatten(2)).view(h.shape[0], c, height, width)
        k, s, p = [self.kernel] * 2, [self.stride] * 2, [self.padding] * 2
        like = h.new_empty((h.shape[0], c, height, width))  # avg_pool2d_backward reads only its shape
        return torch.ops.aten.avg_pool2d_backward(h, like, k, s, p, False, True, None)

    def extra_repr(self) -> str:
        return self.kind if self.kind == "global" else f"{self.kind} k={self.kernel} s={self.stride} p={self.padding}"


class Shortcut(nn.Module):
    """The fixed map a skip adds through: ``identity``, or ``pad`` (He et al.'s option A: every
    ``stride``-th location, the channels zero-padded equally on both sides to ``channels``)."""

    def __init__(self, kind: str, in_shape: tuple, out_shape: tuple):
        super().__init__()
        if kind not in SHORTCUTS:
            raise ValueError(f"unknown shortcut {kind!r}; valid: {', '.join(SHORTCUTS)}")
        self.kind, self.in_shape, self.out_shape = kind, tuple(in_shape), tuple(out_shape)
        if kind == "identity" and self.in_shape != self.out_shape:
            raise ValueError(f"identity shortcut from {self.in_shape} to {self.out_shape}; use a projection or pad")
        if kind == "pad":
            self.stride = self.in_shape[1] // self.out_shape[1]
            extra = self.out_shape[0] - self.in_shape[0]
            if extra < 0 or extra % 2 or self.stride < 1:
                raise ValueError(f"pad shortcut cannot map {self.in_shape} to {self.out_shape}")
            self.front = extra // 2

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "identity":
            return h
        s = h[:, :, :: self.stride, :: self.stride]
        return F.pad(s, (0, 0, 0, 0, self.front, self.front))

    def transpose(self, grad: torch.Tensor) -> torch.Tensor:
        """``Sᵀ grad``: ``(B, *out_shape)`` → ``(B, *in_shape)``."""
        if self.kind == "identity":
            return grad
        out = grad.new_zeros((grad.shape[0], *self.in_shape))
        out[:, :, :: self.stride, :: self.stride] = grad[:, self.front : self.front + self.in_shape[0]]
        return out

    def extra_repr(self) -> str:
        return self.kind
