"""Feedback alignment: BP's backward pass with each ``W_lᵀ`` replaced by a fixed random ``B_l``.

``B_l`` is shaped like layer ``l``'s forward weight (so the same code serves linear,
convolutional and locally connected layers: the transpose is applied with the layer's own
``input_vjp``), drawn once from the rule's generator (the run's seed) with Glorot-uniform
scale, never trained, and saved in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioscale import RuleConfig, hookimpl
from bioscale.rulekit import FeedbackWeights, consumers_of, paper_search_space


@dataclass
class FeedbackAlignmentConfig(RuleConfig):
    """FA has no settings of its own beyond the forward optimiser."""


class FeedbackAlignment:
    """Feedback alignment (Lillicrap et al. 2016): fixed random feedback weights in place of Wᵀ."""

    Config = FeedbackAlignmentConfig
    supports = frozenset({"pooling", "batchnorm", "skip"})  # every net bioscale builds
    paper_row = "FA"
    search_space = paper_search_space()
    # tuned on mnist_fc (results/recipes/fa/) and mnist_lc (results/lc_and_cifar/), carried over to CIFAR
    recipes = {
        preset: {"optimizer": {"lr": 3e-4, "weight_decay": 1e-4}}
        for preset in ("mnist_fc", "mnist_lc", "cifar_fc", "cifar_lc", "cifar_conv")
    }
    recipes["mnist_lc"] = {"optimizer": {"lr": 1e-3, "weight_decay": 2e-5}}

    def __init__(self, config: FeedbackAlignmentConfig):
        self.config = config
        self.feedback: FeedbackWeights | None = None

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        self.feedback = FeedbackWeights.like_forward(model, generator, layers=consumers_of(model, layers))

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``grad_above``: ``(B, *out_shape of layer)`` → ``B_lᵀ``-propagated ``(B, *in_shape)``."""
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])

    @hookimpl
    def bioscale_state_dict(self):
        return {"feedback": self.feedback.state_dict()}

    @hookimpl
    def bioscale_load_state_dict(self, state):
        self.feedback.load_state_dict(state["feedback"])
