"""Locally connected 2-D layer: a convolution without weight sharing.

Every output location ``(i, j)`` has its own filter over its ``k x k`` input window:
``a[b, o, i, j] = Σ_{di, dj, c} W[(i, j), (di, dj, c), o] · x_pad[b, c, s·i + di, s·j + dj] + bias[o, i, j]``.

Layout (what makes it fast): the weight is stored as ``(L, K, C_out)`` with
``L = H_out·W_out`` locations and ``K = k·k·C_in`` ordered ``(di, dj, c)``. The input is
gathered once into patches ``(L, B, K)`` from a channels-last copy of the zero-padded input
(contiguous runs of ``k·C_in`` floats), so the forward pass is one batched matmul
``(L, B, K) @ (L, K, C_out)``; the weight gradient is ``patchesᵀ @ δ`` and the input
gradient ``δ @ Wᵀ`` scattered back with ``k²`` strided adds. Outputs are
``(B, C_out, H_out, W_out)`` tensors in channels-last memory format. The patches of the last
two inputs are kept, so that ``param_grads`` (the trainer's closed form) and autograd's
backward on the same input tensor reuse them; an input no longer kept is gathered again.

Workspace: the patch matrices and the input-gradient patches are tens of MB at batch 128.
A fresh tensor of that size comes from ``mmap`` and is paid for again in page faults on
every call (as much as the matmul itself on a CPU), so both paths write them into buffers the
layer owns and reuses (never handed out: results the caller keeps are fresh tensors). One
implementation serves the trainer's explicit calls and autograd (an ``autograd.Function``
over the same kernels), so the layer is as fast in plain PyTorch (``benchmarks/bench_lc.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from .ops import AffineOp, conv_out_size, product_into, same_padding, sum_into


class LocallyConnected2d(AffineOp):
    """Unshared-weight 2-D layer (see module doc). ``input_size`` is ``(H, W)`` of the input."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        input_size: tuple = (32, 32),
    ):
        super().__init__()
        h, w = input_size
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = same_padding(kernel_size) if padding is None else padding
        self.in_shape = (in_channels, h, w)
        ho, wo = (conv_out_size(n, kernel_size, stride, self.padding) for n in (h, w))
        if ho < 1 or wo < 1:
            raise ValueError(f"locally connected layer: input {h}x{w} too small for kernel {kernel_size}")
        self.out_shape = (out_channels, ho, wo)
        self.locations = ho * wo
        self.patch_size = kernel_size * kernel_size * in_channels
        self.fan_in = self.patch_size
        self.fan_out = out_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(self.locations, self.patch_size, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels, ho, wo))
        self._cache: list[tuple[torch.Tensor, torch.Tensor]] | None = (
            None  # [(input, patches), ...]: the last two training-mode inputs
        )
        self._workspace: dict[str, torch.Tensor] = {}

    def orthogonal_weight(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Each output location's own ``(C_out, K)`` filter matrix with orthonormal rows (or
        columns when ``C_out > K``), gain 1; shaped like the weight, ``(L, K, C_out)``."""
        w = torch.empty(self.locations, self.weight.shape[2], self.patch_size, dtype=self.weight.dtype)
        for filters in w:  # once per run, at initialisation
            nn.init.orthogonal_(filters, generator=generator)
        return w.transpose(1, 2).contiguous().to(self.weight.device)

    def extra_repr(self):
        return f"in={self.in_shape}, out={self.out_shape}, k={self.kernel_size}, s={self.stride}, p={self.padding}"

    # -- layout helpers ---------------------------------------------------------------
    def _buffer(self, name: str, shape: tuple, like: torch.Tensor, zero: bool = False) -> torch.Tensor:
        """A reusable workspace tensor (fresh if shape, dtype or device changed)."""
        buf = self._workspace.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = like.new_zeros(shape) if zero else like.new_empty(shape)
            self._workspace[name] = buf
        return buf

    def patches(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(B, C, H, W)`` (any memory format) → patches ``(L, B, K)``, contiguous.

        ``out``: an ``(L, B, K)`` tensor to write into (default: a fresh one)."""
        b, c, h, w = x.shape
        p, k, s = self.padding, self.kernel_size, self.stride
        _, ho, wo = self.out_shape
        shape = (b, h + 2 * p, w + 2 * p, c)
        if out is None:
            padded = x.new_zeros(shape)
            out = x.new_empty(self.locations, b, self.patch_size)
        else:  # the border of a reused padded copy is still zero: only the interior is written
            padded = self._buffer("padded", shape, x, zero=True)
        padded[:, p : p + h, p : p + w, :] = x.permute(0, 2, 3, 1)
        sb, sh, sw, _ = padded.stride()
        rows = out.view(ho, wo, b, k, k * c)
        for di in range(k):  # k copies of contiguous runs of k·C_in floats
            rows[:, :, :, di, :] = padded.as_strided((ho, wo, b, k * c), (s * sh, s * sw, sb, 1), di * sh)
        return out

    def _patch_buffer(self, keep) -> str:
        """Name of a patch buffer not holding the cache entry that stays (``keep``, or None)."""
        for name in ("patches0", "patches1"):
            buf = self._workspace.get(name)
            if buf is None or keep is None or buf is not keep[1]:
                return name
        raise AssertionError("unreachable: two buffers, one kept entry")

    def _locations_first(self, grad_a: torch.Tensor) -> torch.Tensor:
        """``(B, C_out, H_out, W_out)`` → ``(L, B, C_out)`` with unit stride along ``C_out``
        (a free view of a channels-last tensor, as the layer's own outputs are; a copy
        otherwise, since a matmul operand without a unit stride takes a slow path)."""
        b, o = grad_a.shape[:2]
        g = grad_a.permute(2, 3, 0, 1).reshape(self.locations, b, o)
        return g if g.stride(2) == 1 else g.contiguous()

    def _from_locations(self, out: torch.Tensor) -> torch.Tensor:
        """``(L, B, C_out)`` → ``(B, C_out, H_out, W_out)`` in channels-last memory format."""
        o, ho, wo = self.out_shape
        b = out.shape[1]
        return out.transpose(0, 1).reshape(b, ho, wo, o).permute(0, 3, 1, 2)

    def _scatter_patches(self, grad_patches: torch.Tensor) -> torch.Tensor:
        """Adjoint of :meth:`patches`: ``(L, B, K)`` → ``(B, C, H, W)`` (channels-last memory)."""
        c, h, w = self.in_shape
        _, ho, wo = self.out_shape
        p, k, s = self.padding, self.kernel_size, self.stride
        b = grad_patches.shape[1]
        out = grad_patches.new_zeros(b, h + 2 * p, w + 2 * p, c)
        view = grad_patches.view(ho, wo, b, k, k, c)
        for di in range(k):
            for dj in range(k):
                out[:, di : di + s * (ho - 1) + 1 : s, dj : dj + s * (wo - 1) + 1 : s, :] += view[
                    :, :, :, di, dj, :
                ].permute(2, 0, 1, 3)
        return out[:, p : p + h, p : p + w, :].permute(0, 3, 1, 2)

    # -- the op ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` → ``(B, C_out, H_out, W_out)``; differentiable (autograd runs the
        same kernels, :class:`_LocallyConnectedFunction`)."""
        with torch.no_grad():
            patches = self._gather_kept(x)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad or self.bias.requires_grad):
            return _LocallyConnectedFunction.apply(x, self.weight, self.bias, self, patches)
        return self._affine(patches, self.weight, self.bias)

    def _gather_kept(self, x: torch.Tensor) -> torch.Tensor:
        """Patches of ``x`` in a workspace buffer, kept with the previous input's (a TP step
        sees a clean and a noisy input; autograd's backward and ``param_grads`` reuse them)."""
        kept = [c for c in (self._cache or [])[:1] if c[0] is not x]
        name = self._patch_buffer(kept[0] if kept else None)
        patches = self.patches(x, self._buffer(name, (self.locations, x.shape[0], self.patch_size), x))
        self._cache = [(x, patches)] + kept
        return patches

    def _affine(self, patches, weight, bias):
        o = self.out_shape[0]
        bias_lo = bias.permute(1, 2, 0).reshape(self.locations, 1, o)
        return self._from_locations(torch.baddbmm(bias_lo, patches, weight))

    def input_vjp(self, grad_a, weight=None, bias=None):
        w = self.weight if weight is None else weight
        g = self._locations_first(grad_a)
        if torch.is_grad_enabled() and (g.requires_grad or w.requires_grad):
            grad_patches = torch.bmm(g, w.transpose(1, 2))  # part of someone's graph: a fresh tensor
        else:
            grad_patches = product_into(
                torch.bmm,
                g,
                w.transpose(1, 2),
                self._buffer("grad_patches", (self.locations, g.shape[1], self.patch_size), g),
            )
        out = self._scatter_patches(grad_patches)
        return out if bias is None else out + bias

    def _patches_of(self, x: torch.Tensor) -> torch.Tensor:
        """Patches of ``x``: kept ones when ``x`` is one of the last two inputs, else gathered anew."""
        patches = next((p for cx, p in (self._cache or []) if cx is x), None)
        if patches is None:
            patches = self.patches(x, self._buffer("patches_other", (self.locations, x.shape[0], self.patch_size), x))
        return patches

    def param_grads(self, x, grad_a):
        g = self._locations_first(grad_a)
        return {"weight": torch.bmm(self._patches_of(x).transpose(1, 2), g), "bias": grad_a.sum(0)}

    def write_weight_grad(self, x, grad_a, out):
        product_into(torch.bmm, self._patches_of(x).transpose(1, 2), self._locations_first(grad_a), out)

    def write_param_grads(self, x, grad_a, out):
        self.write_weight_grad(x, grad_a, out["weight"])
        sum_into(grad_a, 0, out["bias"])

    def kernel_view(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The weight as ``(H_out, W_out, k, k, C_in, C_out)`` (for references and plots)."""
        w = self.weight if weight is None else weight
        c = self.in_shape[0]
        _, ho, wo = self.out_shape
        k = self.kernel_size
        return w.view(ho, wo, k, k, c, self.out_shape[0])


class _LocallyConnectedFunction(torch.autograd.Function):
    """Autograd over the layer's own kernels: ``forward`` gets the gathered (kept) patches,
    ``backward`` reuses them while they are kept and writes its temporaries into workspaces."""

    @staticmethod
    def forward(ctx, x, weight, bias, op, patches):
        ctx.save_for_backward(x, weight)  # x's version counter guards the kept patches
        ctx.op = op
        return op._affine(patches, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        op = ctx.op
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = op.input_vjp(grad_out, weight)
        if ctx.needs_input_grad[1]:
            grad_w = op.param_grads(x, grad_out)["weight"]
        if ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        return grad_x, grad_w, grad_b, None, None


def naive_locally_connected(
    x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor, stride: int, padding: int
) -> torch.Tensor:
    """Reference by explicit loops over output locations (slow; tests only).

    ``kernel``: ``(H_out, W_out, k, k, C_in, C_out)``; ``bias``: ``(C_out, H_out, W_out)``.
    """
    ho, wo, k = kernel.shape[0], kernel.shape[1], kernel.shape[2]
    xp = torch.nn.functional.pad(x, (padding,) * 4)
    out = x.new_zeros(x.shape[0], kernel.shape[-1], ho, wo)
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * stride : i * stride + k, j * stride : j * stride + k]  # (B, C, k, k)
            out[:, :, i, j] = torch.einsum("bcuv,uvco->bo", window, kernel[i, j]) + bias[:, i, j]
    return out


__all__ = ["LocallyConnected2d", "naive_locally_connected"]
