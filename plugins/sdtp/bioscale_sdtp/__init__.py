"""Simplified difference target propagation (Bartunov et al. 2018): no gradient anywhere.

- output target: the correct label distribution ``ĥ_L = onehot(y)``;
- the top inverse ``g_L`` reads the output in *probability space*, ``softmax(h_L)``: the
  space in which the label distribution is the loss minimiser (cross-entropy is minimised
  exactly when the softmax equals the one-hot label), so ``g_L(onehot(y))`` and
  ``g_L(softmax(h_L))`` compare like with like and no logit ever needs to be infinite;
- penultimate target by the same difference rule:
  ``ĥ_{L-1} = h_{L-1} + g_L(onehot(y)) - g_L(softmax(h_L))``; lower targets likewise;
- inverses ``g_l``, ``l = 2..L``, trained to denoise: ``||h_{l-1} - g_l(f_l(h̃_{l-1}))||²``;
- the output layer is trained on the task loss (the trainer's delta rule); no gradient
  of the task loss with respect to any hidden layer is ever computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bioscale import hookimpl
from bioscale.rulekit import TargetPropagation, TPConfig


@dataclass
class SDTPConfig(TPConfig):
    pass


class SimplifiedDTP(TargetPropagation):
    """Simplified DTP (Bartunov et al. 2018): label target read through a learned top inverse."""

    Config = SDTPConfig
    noise_preserving = False
    recipes: dict = {}

    def inverse_layers(self, model):
        return range(2, model.num_layers + 1)

    def read(self, l, h_out, h_in):
        return F.softmax(h_out, dim=1) if l == self.model.num_layers else h_out

    @hookimpl
    def bioscale_output_target(self, step):
        return F.one_hot(step.y, step.logits.shape[1]).to(step.logits.dtype)

    def top_target(self, step, target_above):
        L = step.num_layers
        g = self.inverses[str(L)]
        both = g(torch.cat([target_above, F.softmax(step.h[L], dim=1)]))
        g_target, g_h = both.split(step.batch_size)
        return step.h[L - 1] + g_target - g_h
