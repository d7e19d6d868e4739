"""The targets of the target-propagation family, written once.

Shapes: ``B`` rows; ``h`` tensors are a layer's activations ``(B, ...)``. Every function here
runs without autograd (plain tensor arithmetic on detached activations) and returns a fresh
tensor.

Precision: a target ``t`` carries its signal in the displacement ``t - h``, often smaller than
bf16's spacing near ``|h|`` (2⁻⁹ to 2⁻⁸ for ``|h|`` in [0.25, 1)). So under
``trainer.precision=bf16`` every target here is float32 and every difference in it is formed in
float32 (``float32_maths``); the core keeps a target float32 and forms ``h - t`` in float32
(``credit.assign_credit``). In fp32 the same operations run in the same order: bit for bit.
"""

from __future__ import annotations

import torch


def float32_maths(like: torch.Tensor):
    """A context in which autocast is off on ``like``'s device: products of float32 tensors stay
    float32 (so a displacement below bf16's spacing is not rounded away). A no-op without autocast."""
    return torch.autocast(like.device.type, enabled=False)


def output_error(step) -> torch.Tensor:
    """``e = softmax(h_L) - q(y)`` ``(B, classes)``, float32: the per-sample task-loss gradient at
    the logits (``q`` the label distribution, label-smoothed under ``trainer.label_smoothing``).
    Formed in float32: for a confident example ``softmax - 1`` cancels."""
    with float32_maths(step.logits):
        return torch.softmax(step.logits.float(), dim=1).sub_(step.label_distribution(torch.float32))


def output_step_target(step, beta: float) -> torch.Tensor:
    """``ĥ_L = h_L - β e`` ``(B, classes)``, float32: one step of size ``β`` down the per-sample
    task loss at the output (DDTP, L-DRL)."""
    return step.logits.float() - beta * output_error(step)


def step_target(h: torch.Tensor, step_size: float, direction: torch.Tensor) -> torch.Tensor:
    """``h - step_size · direction``, float32 (``direction`` shaped like ``h``, any dtype)."""
    return h.float() - step_size * direction.float()


def pool_context(step, l: int) -> torch.Tensor | None:
    """The pooling context of layer ``l``'s clean forward evaluation: its max-pooling indices
    ``(B, C, h, w)`` from ``step.post[l]`` (None for a layer without max pooling)."""
    saved = step.post[l]
    return None if saved is None else saved[1]


def difference_target(
    inverse, h_below: torch.Tensor, target_read: torch.Tensor, read: torch.Tensor, ctx=None
) -> torch.Tensor:
    """``ĥ_{l-1} = h_{l-1} + g_l(target_read) - g_l(read)`` (the difference correction), float32,
    for ``h_below = h_{l-1}``: ``g_l = inverse`` evaluated once on ``[target_read; read]`` (each
    ``(B, ...)``) in float32 maths (under bf16 ``target_read - read`` may lie below bf16's spacing),
    the sum formed in the first output's memory (``inverse`` must return a fresh tensor). ``ctx``:
    the pooling context ``(B, ...)`` of the evaluation ``read`` came from (the clean forward's),
    used for both halves; None for a layer without max pooling."""
    B = target_read.shape[0]
    with float32_maths(h_below):
        both = torch.cat([target_read.float(), read.float()])
        both = inverse(both) if ctx is None else inverse(both, torch.cat([ctx, ctx]))
    return both[:B].add_(h_below).sub_(both[B:])


__all__ = ["difference_target", "float32_maths", "output_error", "output_step_target", "pool_context", "step_target"]
