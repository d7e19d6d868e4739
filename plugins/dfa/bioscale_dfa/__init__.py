"""Direct feedback alignment (Nøkland 2016).

The output error ``e = ∂L/∂h_L`` (pre-softmax, ``(B, classes)``) reaches every hidden layer
``l`` directly through its own fixed random matrix ``D_l`` (``(classes, |h_l|)``):
``δh_l = e D_l``, so ``δa_l = (e D_l) ⊙ σ'(a_l)``. There is no backward pass through the
network: no layer's weights are used to compute another layer's signal.

``feedback=shared`` uses one matrix ``(classes, max_l |h_l|)`` and gives layer ``l`` its
first ``|h_l|`` columns (the memory-saving trick of TinyDFA, Launay et al. 2020): the
per-layer matrices of an ImageNet net did not fit in 16 GB in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import torch
from bioscale import RuleConfig, hookimpl
from bioscale.architectures.ops import glorot_bound
from bioscale.rulekit import consumers_of, paper_search_space

MNIST_FC_RECIPE = {"optimizer": {"lr": 9.17e-4, "beta2": 0.99}}


class FeedbackLayout(Enum):
    per_layer = "per_layer"
    shared = "shared"


@dataclass
class DFAConfig(RuleConfig):
    feedback: FeedbackLayout = FeedbackLayout.per_layer


class DirectFeedbackAlignment:
    """Direct feedback alignment (Nøkland 2016): the output error sent to each layer by a fixed random matrix."""

    Config = DFAConfig
    supports = frozenset({"pooling", "batchnorm", "skip"})  # every net bioscale builds
    paper_row = "DFA"
    search_space = paper_search_space()
    # tuned on mnist_fc (results/recipes/dfa/), carried over to the other nets
    recipes = {preset: MNIST_FC_RECIPE for preset in ("mnist_fc", "mnist_lc", "cifar_fc", "cifar_lc", "cifar_conv")}

    def __init__(self, config: DFAConfig):
        self.config = config
        self.feedback: dict[int, torch.Tensor] = {}
        self.shapes: dict[int, tuple] = {}

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        classes = model.num_classes
        device = next(model.parameters()).device
        # D keyed by l - 1 for each layer l reading a given layer: the hidden layer itself in a chain
        self.shapes = {l - 1: model.layer(l).in_shape for l in consumers_of(model, layers)}
        sizes = {l: math.prod(s) for l, s in self.shapes.items()}
        if FeedbackLayout(self.config.feedback) == FeedbackLayout.shared and sizes:
            n = max(sizes.values())
            bound = glorot_bound(classes, n)
            shared = torch.empty(classes, n).uniform_(-bound, bound, generator=generator).to(device)
            self.feedback = {l: shared[:, :size] for l, size in sizes.items()}
        else:
            self.feedback = {}
            for l, size in sizes.items():
                bound = glorot_bound(classes, size)
                self.feedback[l] = torch.empty(classes, size).uniform_(-bound, bound, generator=generator).to(device)

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``e D_{layer-1}``, shaped like the layer's input ``h_{s(layer)}`` (``h_{layer-1}`` in a chain);
        ``grad_above`` is unused. Where several layers read one ``h_k`` the core adds their signals."""
        l = layer - 1
        return (step.output_grad @ self.feedback[l]).reshape(step.batch_size, *self.shapes[l])

    @hookimpl
    def bioscale_state_dict(self):
        return {"feedback": {str(l): d.contiguous() for l, d in self.feedback.items()}}

    @hookimpl
    def bioscale_load_state_dict(self, state):
        saved = state["feedback"]
        if set(saved) != {str(l) for l in self.feedback}:
            raise ValueError(
                f"DFA feedback for layers {sorted(saved)} saved, {sorted(map(str, self.feedback))} expected"
            )
        for l, d in self.feedback.items():
            if saved[str(l)].shape != d.shape:
                raise ValueError(
                    f"DFA feedback of layer {l}: saved {tuple(saved[str(l)].shape)}, expected {tuple(d.shape)}"
                )
            d.copy_(saved[str(l)])
