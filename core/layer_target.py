"""``LayerTarget``: a target with the input its layer reads instead of the forward's.

Predictive coding's weight update regresses ``f_k(x*_{k-1})`` onto ``x*_k``, both settled states
(ARCHITECTURE.md, "Energy-based rules"): a rule's ``bioscale_layer_target(step, l, ·)`` (a target for
``h_{l-1}``, layer ``k = l - 1``) or ``bioscale_output_target(step)`` (layer ``k = L``) may return one.
The core runs layer ``k`` again on ``input`` and forms its signal and weight gradient there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class LayerTarget(NamedTuple):
    """``target``: ``(B, *out_shape of layer k)``, the target for ``h_k`` (float32 under bf16, as any
    target); for the output layer it may be None (the layer learns from the task loss at the logits
    layer ``L`` gives for ``input``, as it always learns from the task loss). ``input``: ``(B, *in_shape
    of layer k)``, what layer ``k``'s op reads instead of ``h_{s(k)}``. Detached; no grad."""

    target: torch.Tensor | None
    input: torch.Tensor
