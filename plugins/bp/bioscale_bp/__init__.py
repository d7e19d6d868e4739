"""Backpropagation: each layer receives the exact gradient, ``δh_{l-1} = W_lᵀ δa_l``."""

from __future__ import annotations

from dataclasses import dataclass

from bioscale import RuleConfig, hookimpl
from bioscale.rulekit import paper_search_space


@dataclass
class BackpropConfig(RuleConfig):
    """Backprop has no settings of its own beyond the forward optimiser."""


class Backprop:
    """Backpropagation (the baseline): exact gradients through every layer."""

    Config = BackpropConfig
    supports = frozenset({"pooling", "batchnorm", "skip"})  # every net bioscale builds
    paper_row = "BP"
    search_space = paper_search_space()
    # tuned on mnist_fc (results/recipes/bp/) and mnist_lc (results/lc_and_cifar/), carried over to CIFAR
    recipes = {
        preset: {"optimizer": {"lr": 3e-4}} for preset in ("mnist_fc", "mnist_lc", "cifar_fc", "cifar_lc", "cifar_conv")
    }
    recipes["mnist_lc"] = {"optimizer": {"lr": 3e-4, "weight_decay": 1e-4}}

    def __init__(self, config: BackpropConfig):
        self.config = config

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``grad_above``: ``(B, *out_shape of layer)`` at the pre-activation → ``(B, *in_shape)``."""
        return step.layer_vjp(layer, grad_above)
