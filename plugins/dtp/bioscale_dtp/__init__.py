"""Difference target propagation (Lee et al. 2015), as Bartunov et al. 2018 run it.

- penultimate target: one gradient step on the per-example task loss,
  ``ĥ_{L-1} = h_{L-1} - α ∂ℓ/∂h_{L-1}`` (one layer of BP, through ``W_L``);
- lower targets: ``ĥ_{l-1} = h_{l-1} + g_l(ĥ_l) - g_l(h_l)`` with learned inverses
  ``g_l(h) = tanh(V_l h + c_l)``, ``l = 2..L-1``;
- inverse loss, noise-preserving as in the original DTP code:
  ``||h̃_{l-1} - g_l(f_l(h̃_{l-1}))||²`` with ``h̃ = h + ε``, ``ε ~ N(0, σ²)``;
- the output layer is trained on the task loss (the trainer's delta rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bioscale.config import bounded
from bioscale.rulekit import TargetPropagation, TPConfig, paper_search_space, per_schedule_recipes
from bioscale.rulekit.settings import TARGETS_NEED_A_CHAIN
from bioscale.rulekit.targets import step_target


@dataclass
class DTPConfig(TPConfig):
    alpha: float = bounded(0.1, low=0)  # step size of the penultimate target


# Recipes per schedule, tuned on mnist_fc (results/recipes/dtp-*/), carried over to the other nets.
PARALLEL: dict[str, Any] = {
    "optimizer": {"lr": 6.17e-4, "beta2": 0.99},
    "inverse_optimizer": {"lr": 3.42e-3},
    "sigma": 0.212,
    "alpha": 0.0606,
}
ALTERNATING = {**PARALLEL, "inverse_optimizer": {**PARALLEL["inverse_optimizer"], "beta2": 0.99}}


class DifferenceTargetPropagation(TargetPropagation):
    """Difference target propagation (Lee et al. 2015): learned inverses + difference correction."""

    Config = DTPConfig
    supports = frozenset({"pooling"})  # chains with pooling: a pooled layer's inverse unpools first
    support_note = TARGETS_NEED_A_CHAIN
    paper_name = "DTP"
    search_space = paper_search_space(("optimizer", "inverse_optimizer"), alpha=True, sigma=True)
    noise_preserving = True
    recipes = per_schedule_recipes(
        DTPConfig, ("mnist_fc", "mnist_lc", "cifar_fc", "cifar_lc", "cifar_conv"), ALTERNATING, PARALLEL
    )

    def top_target(self, step, target_above):
        L = step.num_layers
        grad_a = step.activation_backward(L, step.output_grad)  # δa_L for the batch-mean loss
        grad_h = step.layer_vjp(L, grad_a) * step.batch_size  # ∂ℓ/∂h_{L-1} of each example's own loss
        return step_target(step.h[L - 1], self.config.alpha, grad_h)  # float32 (bf16: α ∂ℓ/∂h is below its spacing)
