"""Diagnostics observer: how far each rule's updates are from backprop's, once per epoch.

On a fixed batch (the first ``batch_size`` training examples, the same every epoch), after
each epoch it records per layer ``l``
- ``angle_to_bp[l]``: the angle in degrees between the weight gradient the rule produces
  (its update direction before the optimiser) and BP's true gradient, autograd's gradient of the
  feed-forward net's loss for every rule (for a rule that predicts from a settled state, as
  ``ep`` does, the angle says how far its update is from BP's, not from its own loss's gradient);
- ``inverse_error[l]`` (rules with inverses): the mean squared reconstruction error
  ``mean (g_l(f_l(h_{l-1})) - h_{l-1})²``.
It costs one forward pass, one credit assignment and one BP gradient per epoch, changes no
state (no weight, optimiser or RNG), and does nothing per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from bioscale import hookimpl
from bioscale.config import bounded


@dataclass
class DiagnosticsConfig:
    batch_size: int = bounded(256, low=1)
    every: int = bounded(1, low=1)  # epochs between measurements


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Angle between two tensors seen as flat vectors; None if either is zero."""
    a, b = a.flatten().double(), b.flatten().double()
    norm = a.norm() * b.norm()
    if norm == 0:
        return None
    cos = float((a @ b) / norm)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


class Diagnostics:
    """Per-layer angle between the rule's update and BP's gradient, and inverse error, each epoch."""

    Config = DiagnosticsConfig

    def __init__(self, config: DiagnosticsConfig | None = None):
        self.config = config or DiagnosticsConfig()

    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        if epoch % self.config.every:
            return None
        probe = run.probe_gradients(batch_size=self.config.batch_size)  # the same first rows every epoch
        angles = {}
        for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
            if name.endswith(".op.weight") and mine is not None:
                layer = int(name.split(".")[1]) + 1
                angles[str(layer)] = angle_degrees(mine, ref)
        result = {"angle_to_bp": angles}
        errors = run.inverse_error(probe["step"])
        if errors:
            result["inverse_error"] = {str(l): float(v) for l, v in sorted(errors.items())}
        return result
