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

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.padding
        if p > 0:
            padded = F.pad(x, (p, p, p, p))
            offsets = torch.randint(0, 2 * p + 1, (2, b), generator=generator).to(x.device)
            rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (B, H)
            cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (B, W)
            if self.flip:
                flip = torch.rand(b, generator=generator).to(x.device) < 0.5
                cols = torch.where(flip[:, None], cols.flip(1), cols)
            bi = torch.arange(b, device=x.device)[:, None, None, None]
            ci = torch.arange(c, device=x.device)[None, :, None, None]
            return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
        if self.flip:
            flip = torch.rand(b, generator=generator).to(x.device) < 0.5
            return torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    def __repr__(self):
        return f"Augmentation(crop_padding={self.padding}, flip={self.flip})"
