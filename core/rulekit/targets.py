"""The targets of the target-propagation family, written once.

Shapes: ``B`` rows; ``h`` tensors are a layer's activations ``(B, ...)``. Every function here
runs without autograd (plain tensor arithmetic on detached activations) and returns a fresh
tensor.
"""

from __future__ import annotations

import torch


def output_error(step) -> torch.Tensor:
    """``e = softmax(h_L) - q(y)`` ``(B, classes)``: the per-sample task-loss gradient at the
    logits (``q`` the label distribution, label-smoothed under ``trainer.label_smoothing``)."""
    return torch.softmax(step.logits, dim=1).sub_(step.label_distribution())


def output_step_target(step, beta: float) -> torch.Tensor:
    """``ĥ_L = h_L - β e`` ``(B, classes)``: one step of size ``β`` down the per-sample task loss
    at the output (DDTP, L-DRL)."""
    return step.logits - beta * output_error(step)


def difference_target(inverse, h_below: torch.Tensor, target_read: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """``ĥ_{l-1} = h_{l-1} + g_l(target_read) - g_l(read)`` (the difference correction) for
    ``h_below = h_{l-1}``: ``g_l = inverse`` evaluated once on ``[target_read; read]`` (each
    ``(B, ...)``), the sum formed in the first output's memory (``inverse`` must return a
    fresh tensor)."""
    B = target_read.shape[0]
    both = inverse(torch.cat([target_read, read]))
    return both[:B].add_(h_below).sub_(both[B:])


__all__ = ["difference_target", "output_error", "output_step_target"]
