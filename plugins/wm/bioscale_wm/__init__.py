"""Weight mirrors (Akrout et al. 2019, "Deep learning without weight transport"): each feedback
weight ``B_l`` learns ``W_l`` from the layer's response to noise, with no transport of ``W_l``.

After every forward step (``bioscale_after_forward_grads``) a mirror step drives each layer
``l = 2..L`` with ``mirror_batch`` white-noise inputs ``x ~ N(0, σ²)`` shaped like ``h_{l-1}`` and
reads its linear response ``y = op_l(x) - b_l`` (the pre-activation without the bias); then

    B_l ← (1 - λ) B_l + η · (y xᵀ) / (mirror_batch · n)   (``y xᵀ`` in ``W_l``'s layout: ``op.weight_grad(x, y)``;
                                                          ``n``: the positions a shared conv weight meets, else 1)

Since ``E[y xᵀ] = W_l E[x xᵀ] = σ² W_l``, ``B_l`` tends to ``(η σ² / λ) W_l``: the default ``λ = η σ²``
(``decay: null``) makes that ``W_l`` itself. ``B_l`` is shaped like ``W_l`` and applied with the
layer's own ``input_vjp`` (linear, conv and LC layers alike), starting Glorot-uniform. In a
zero-padded conv or LC layer the entries that only ever meet the padding get no mirror signal and
decay to 0; they never carry a signal either way (they multiply the padding in ``W_l`` and
``B_l`` alike), but they keep ``B_l``'s angle to ``W_l`` above 0. The noise
comes from the rule's generator on the device, the same on every data-parallel rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from bioscale import RuleConfig, hookimpl
from bioscale.config import bounded
from bioscale.rulekit import FeedbackWeights, NoiseSource, consumers_of, paper_search_space

if TYPE_CHECKING:
    from bioscale.architectures import Network


@dataclass
class WeightMirrorsConfig(RuleConfig):
    mirror_lr: float = bounded(0.05, low=0, low_open=True)  # η
    mirror_sigma: float = bounded(1.0, low=0, low_open=True)  # σ of the mirror noise
    mirror_decay: float | None = bounded(None, low=0, high=1, high_open=True)  # λ (None: η σ², so B -> W)
    mirror_batch: int = bounded(64, low=1)  # noise inputs per mirror step


class WeightMirrors:
    """Weight mirrors (Akrout et al. 2019): feedback weights learned from each layer's response to noise."""

    Config = WeightMirrorsConfig
    supports = frozenset({"pooling", "batchnorm", "skip"})  # every net bioscale builds
    # the forward lr of the results/newer_rules/ runs (mnist_fc 100 epochs, cifar_fc 30 epochs)
    recipes = {preset: {"optimizer": {"lr": 3e-4}} for preset in ("mnist_fc", "cifar_fc")}
    search_space = paper_search_space()

    def __init__(self, config: WeightMirrorsConfig):
        self.config = config
        self.model: Network | None = None
        self.feedback: FeedbackWeights | None = None
        self.noise: NoiseSource | None = None
        c = config
        self.decay = c.mirror_decay if c.mirror_decay is not None else c.mirror_lr * c.mirror_sigma**2
        if not 0 <= self.decay < 1:
            from bioscale.errors import ConfigError

            raise ConfigError(f"mirror_decay: mirror_lr × mirror_sigma² = {self.decay:g} must be < 1; set mirror_decay")

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        self.model = model
        self.feedback = FeedbackWeights.like_forward(model, generator, layers=consumers_of(model, layers))
        self.noise = NoiseSource(generator, next(model.parameters()).device)
        # how many (input, output) pairs meet at each weight entry: 1 for linear and LC layers, the
        # output positions for a shared conv weight (0 where only padding is met: counted as 1)
        self.counts = {}
        for l, b in self.feedback.weights.items():
            op = model.ops[l - 1]
            ones = torch.ones((1, *op.in_shape), device=b.device, dtype=b.dtype)
            self.counts[l] = op.weight_grad(
                ones, torch.ones((1, *op.out_shape), device=b.device, dtype=b.dtype)
            ).clamp_(min=1)

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``grad_above``: ``(B, *out_shape of layer)`` → ``(B, *in_shape)`` through ``B_layer``."""
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])

    def mirror_step(self) -> None:
        """One mirror update of every ``B_l`` (no grad; reads ``W_l`` only through ``op_l``'s output)."""
        c = self.config
        assert self.feedback is not None and self.model is not None and self.noise is not None  # bioscale_setup
        for l, b in self.feedback.weights.items():
            op = self.model.ops[l - 1]
            x = self.noise.normal_like(
                torch.empty((c.mirror_batch, *op.in_shape), device=b.device, dtype=b.dtype), c.mirror_sigma
            )
            y = op(x) - op(torch.zeros_like(x[:1]))  # the linear response: the bias removed
            b.mul_(1.0 - self.decay).add_(op.weight_grad(x, y).div_(self.counts[l]), alpha=c.mirror_lr / c.mirror_batch)

    @hookimpl
    def bioscale_after_forward_grads(self, step):  # no grads: the step's signals may go
        self.mirror_step()

    @hookimpl
    def bioscale_state_dict(self):
        return {"feedback": self.feedback.state_dict(), "noise": self.noise.state_dict()}

    @hookimpl
    def bioscale_load_state_dict(self, state):
        self.feedback.load_state_dict(state["feedback"])
        self.noise.load_state_dict(state.get("noise", {}))
