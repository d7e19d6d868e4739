"""Sign symmetry: BP's backward pass through ``M_l ⊙ sign(W_l)``, only the signs of the forward
weights transported (Liao, Leibo & Poggio 2016; the variants of Sanfiz & Akrout 2021).

``rules.signsym.variant``:
- ``usf``: ``B_l = s_l · sign(W_l)``, ``s_l`` = ``rules.signsym.scale`` or, by default, the std of
  the layer's Glorot-uniform initialisation (``bound / √3``);
- ``brsf``: ``B_l = |R_l| ⊙ sign(W_l)``, ``R_l`` Glorot-uniform, redrawn for every batch (per
  layer, from the rule's generator on the device);
- ``frsf``: the same with ``R_l`` drawn once and kept (checkpointed).

``sign(W_l)`` is read from the current forward weights at every step. ``B_l`` is shaped like
``W_l`` and applied with the layer's own ``input_vjp``, so linear, conv and locally connected
layers are served alike. No state changes in gradient probes: ``brsf`` draws there too, and the
generator it drew from is restored (``NoiseSource.drawing``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import torch
from bioscale import RuleConfig, hookimpl
from bioscale.architectures.ops import glorot_bound
from bioscale.config import bounded
from bioscale.rulekit import FeedbackWeights, NoiseSource, consumers_of, paper_search_space

if TYPE_CHECKING:
    from bioscale.architectures import Network


class SignVariant(Enum):
    usf = "usf"  # uniform magnitude: s_l sign(W_l)
    brsf = "brsf"  # batchwise random magnitudes
    frsf = "frsf"  # fixed random magnitudes


@dataclass
class SignSymmetryConfig(RuleConfig):
    variant: SignVariant = SignVariant.usf
    scale: float | None = bounded(None, low=0, low_open=True)  # usf: s_l for every layer (None: each layer's init std)


class SignSymmetry:
    """Sign symmetry (Liao et al. 2016): feedback through the forward weights' signs (uSF, brSF, frSF)."""

    Config = SignSymmetryConfig
    supports = frozenset({"pooling", "batchnorm", "skip"})  # every net bioscale builds
    # the forward lr of the results/newer_rules/ runs (mnist_fc 100 epochs, cifar_fc 30 epochs)
    recipes = {preset: {"optimizer": {"lr": 3e-4}} for preset in ("mnist_fc", "cifar_fc")}
    search_space = paper_search_space()

    def __init__(self, config: SignSymmetryConfig):
        self.config = config
        self.variant = getattr(config.variant, "value", config.variant)
        self.model: Network | None = None
        self.scales: dict[int, float] = {}
        self.magnitudes: FeedbackWeights | None = None  # frsf: |R_l|
        self.noise: NoiseSource | None = None  # brsf: per-batch magnitudes

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        self.model = model
        layers = consumers_of(model, layers)  # B_l for the signal through each layer l reading a given layer
        for l in layers:
            op = model.ops[l - 1]
            self.scales[l] = (
                self.config.scale
                if self.config.scale is not None
                else glorot_bound(op.fan_in, op.fan_out) / math.sqrt(3.0)
            )
        if self.variant == "frsf":
            self.magnitudes = FeedbackWeights.like_forward(model, generator, layers)
            for w in self.magnitudes.weights.values():
                w.abs_()
        elif self.variant == "brsf":
            self.noise = NoiseSource(generator, next(model.parameters()).device)

    def feedback_weight(self, layer: int) -> torch.Tensor:
        """``B_layer`` for this step, shaped like ``W_layer`` (no grad)."""
        assert self.model is not None  # set by bioscale_setup
        op = self.model.ops[layer - 1]
        signs = torch.sign(op.weight.detach())
        if self.variant == "usf":
            return signs.mul_(self.scales[layer])
        if self.variant == "frsf":
            assert self.magnitudes is not None  # bioscale_setup draws them for frsf
            return signs.mul_(self.magnitudes[layer])
        assert self.noise is not None  # bioscale_setup makes it for brsf
        bound = glorot_bound(op.fan_in, op.fan_out)
        return signs.mul_(self.noise.uniform_like(signs, 0.0, bound))

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``grad_above``: ``(B, *out_shape of layer)`` → ``(B, *in_shape)`` through ``B_layer``."""
        if self.noise is None:
            weight = self.feedback_weight(layer)
        else:
            with self.noise.drawing(step):  # a probe leaves the rule's generators as it found them
                weight = self.feedback_weight(layer)
        return step.layer_vjp(layer, grad_above, weight=weight)

    @hookimpl
    def bioscale_state_dict(self):
        state = {}
        if self.magnitudes is not None:
            state["magnitudes"] = self.magnitudes.state_dict()
        if self.noise is not None:
            state["noise"] = self.noise.state_dict()
        return state

    @hookimpl
    def bioscale_load_state_dict(self, state):
        if self.magnitudes is not None:
            self.magnitudes.load_state_dict(state["magnitudes"])
        if self.noise is not None:
            self.noise.load_state_dict(state.get("noise", {}))
