"""Batched image augmentation on tensors: random crops with zero padding and horizontal flips.

Works on a whole batch ``(B, C, H, W)`` at once on its device with one gather; random
numbers come from the CPU generator passed in (so runs resume exactly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Augmentation:
    """Pad by ``padding`` zeros, crop back to the original size at a random offset, flip
    horizontally with probability 1/2 (each switchable)."""

    def __init__(self, crop_padding: int = 4, flip: bool = True):
        self.padding = crop_padding
        self.flip = flip

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator, rows: slice | None = None, total: int | None = None
    ) -> torch.Tensor:
        """Augment ``x`` ``(B, C, H, W)``. ``rows`` / ``total``: ``x`` holds rows ``rows`` of a
        ``total``-row batch (data parallelism); the random numbers are drawn for all ``total``
        rows and ``x``'s share is used, so each row gets what it gets in one process."""
        b, c, h, w = x.shape
        drawn = total if rows is not None else b
        assert drawn is not None  # callers that pass rows pass total with them
        keep = rows if rows is not None else slice(0, b)
        p = self.padding
        if p > 0:
            padded = F.pad(x, (p, p, p, p))
            offsets = torch.randint(0, 2 * p + 1, (2, drawn), generator=generator)[:, keep].to(x.device)
            rows_idx = offsets[0][:, None] + torch.arange(h, device=x.device)  # (B, H)
            cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (B, W)
            if self.flip:
                flip = torch.rand(drawn, generator=generator)[keep].to(x.device) < 0.5
                cols = torch.where(flip[:, None], cols.flip(1), cols)
            bi = torch.arange(b, device=x.device)[:, None, None, None]
            ci = torch.arange(c, device=x.device)[None, :, None, None]
            return padded[bi, ci, rows_idx[:, None, :, None], cols[:, None, None, :]]
        if self.flip:
            flip = torch.rand(drawn, generator=generator)[keep].to(x.device) < 0.5
            return torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def __repr__(self):
        return f"Augmentation(crop_padding={self.padding}, flip={self.flip})"
