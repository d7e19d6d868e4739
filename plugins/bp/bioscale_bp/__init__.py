"""Backpropagation: each layer receives the exact gradient, ``δh_{l-1} = W_lᵀ δa_l``."""

from __future__ import annotations

from dataclasses import dataclass

from bioscale.architectures.presets import RECIPE_PRESETS
from bioscale import RuleConfig, hookimpl


@dataclass
class BackpropConfig(RuleConfig):
    """Backprop has no settings of its own beyond the forward optimiser."""


class Backprop:
    """Backpropagation (the baseline): exact gradients through every layer."""

    Config = BackpropConfig
    # tuned forward-optimiser settings per model preset (see results/ for the searches):
    # results/mnist_fc_bp_lr, carried over to the other nets; mnist_lc adds the weight decay
    # of results/mnist_lc_bp_wd and results/mnist_lc_bp_more (1.30 % best test error in 30 epochs)
    recipes = {preset: {"optimizer": {"lr": 3e-4}} for preset in RECIPE_PRESETS}
    recipes["mnist_lc"] = {"optimizer": {"lr": 3e-4, "weight_decay": 1e-4}}

    def __init__(self, config: BackpropConfig):
        self.config = config

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``grad_above``: ``(B, *out_shape of layer)`` at the pre-activation → ``(B, *in_shape)``."""
        return step.layer_vjp(layer, grad_above)
