"""DDTP-linear (Meulemans et al. 2020, "A Theoretical Framework for Target Propagation"): direct
linear feedback ``Q_l`` from the output to each hidden layer, trained so that it inverts the
forward map's differences.

Targets: the output target is ``ĥ_L = h_L - β e`` (``e = softmax(h_L) - q(y)``, the per-sample
task-loss gradient); each hidden layer ``l`` gets ``ĥ_l = h_l + (ĥ_L - h_L) Q_l = h_l - β e Q_l``,
``Q_l`` ``(classes, size of h_l)``. Feedback training (difference reconstruction loss), per hidden
layer, the forward weights only read: with ``ε ~ N(0, 1)`` shaped like ``h_l``,

    Δ_l = f_{L←l}(h_l + σ ε) - h_L           (the output's response, through layers l+1..L)
    loss_l = mean_b || Δ_l Q_l - σ ε ||² + λ ||Q_l||²,   ∂loss_l / ∂Q_l = (2 / B) Δ_lᵀ (Δ_l Q_l - σ ε) + 2 λ Q_l

whose minimiser for small ``σ`` is ``Q_l = J_l⁺``, the pseudo-inverse of the output's Jacobian
``J_l = ∂h_L/∂h_l`` (a Gauss-Newton target; ``tests/test_rule_ddtp.py`` checks it on a linear net).
Schedules as the paper's TP rules: ``parallel`` (a feedback and a forward update every batch) or
``alternating`` (a pass of each). ``Q_l`` starts as a Glorot-uniform draw; one Adam over all
(``rulekit.RuleOptimizer``: it reduces the gradients over data-parallel ranks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from bioscale import hookimpl
from bioscale.architectures.ops import glorot_bound
from bioscale.config import bounded
from bioscale.rulekit import FeedbackConfig, FeedbackRule, NoiseSource, RuleOptimizer, paper_search_space
from bioscale.rulekit.settings import TARGETS_NEED_A_CHAIN
from bioscale.rulekit.targets import output_error, output_step_target

if TYPE_CHECKING:
    from bioscale.architectures import Network


@dataclass
class DirectDTPConfig(FeedbackConfig):
    """``FeedbackConfig`` (schedule, default parallel; ``inverse_optimizer`` trains every ``Q_l``) plus:"""

    beta: float = bounded(0.5, low=0, low_open=True)  # output target step: ĥ_L = h_L - β e
    sigma: float = bounded(0.1, low=0, low_open=True)  # std of the noise on h_l in feedback training
    feedback_decay: float = bounded(0.0, low=0)  # λ: L2 penalty on Q_l


class DirectDTP(FeedbackRule):
    """DDTP-linear (Meulemans et al. 2020): direct linear feedback from the output, difference reconstruction loss."""

    Config = DirectDTPConfig
    # chains with pooling: Q_l maps to h_l, the pooled output, and f_{L←l} runs layers l+1..L in order
    supports = frozenset({"pooling"})
    support_note = TARGETS_NEED_A_CHAIN
    # the forward lr of the results/newer_rules/ runs (mnist_fc 100 epochs, cifar_fc 30 epochs)
    recipes = {preset: {"optimizer": {"lr": 3e-4}} for preset in ("mnist_fc", "cifar_fc")}
    search_space = {**paper_search_space(("optimizer", "inverse_optimizer"), sigma=True), "beta": "loguniform:0.01:1"}

    def __init__(self, config: DirectDTPConfig):
        self.config = config
        self.model: Network | None = None
        self.feedback: dict[int, torch.Tensor] = {}
        self.noise: NoiseSource | None = None
        self.optimizer: RuleOptimizer | None = None

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        self.model = model
        device = next(model.parameters()).device
        classes = model.num_classes
        for l in layers:
            n = math.prod(model.layer(l).out_shape)
            bound = glorot_bound(classes, n)
            q = torch.empty(classes, n).uniform_(-bound, bound, generator=generator)
            self.feedback[l] = q.to(device).requires_grad_(False)
        self.noise = NoiseSource(generator, device)
        self.optimizer = (
            RuleOptimizer(list(self.feedback.values()), self.config.inverse_optimizer) if self.feedback else None
        )

    @hookimpl
    def bioscale_output_target(self, step):
        return output_step_target(step, self.config.beta)

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        """Target of ``h_{layer-1}``: ``h - β e Q`` (``target_above`` is not needed: the feedback is direct)."""
        l = layer - 1
        h = step.h[l]
        shift = (output_error(step) @ self.feedback[l]).mul_(-self.config.beta)
        return shift.reshape(h.shape).float().add_(h)  # float32: bf16 would round the shift away

    def _output_from(self, l: int, h: torch.Tensor) -> torch.Tensor:
        """``h_L`` computed from ``h_l = h`` through layers ``l+1..L`` (no grad)."""
        assert self.model is not None  # set by bioscale_setup
        for layer in self.model.layers[l:]:
            h = layer(h)[1]
        return h

    @hookimpl
    def bioscale_update_inverse(self, step):
        if self.optimizer is None:
            return None
        c, B = self.config, step.batch_size
        losses = {}
        with torch.no_grad(), self.noise.drawing(step):
            for l, q in self.feedback.items():
                h = step.h[l]
                noise = self.noise.perturb(torch.zeros_like(h), c.sigma)  # σ ε, shaped like h_l
                delta = self._output_from(l, h + noise) - step.logits  # (B, classes)
                residual = (delta @ q).sub_(noise.reshape(B, -1))  # (B, n_l)
                losses[l] = residual.square().sum(1).mean()
                grad = (delta.t() @ residual).mul_(2.0 / B)
                if c.feedback_decay:
                    grad.add_(q, alpha=2.0 * c.feedback_decay)
                self.optimizer.set_grad(q, grad)  # bf16 autocast: a bf16 product, Q's gradient float32
        self.optimizer.step(step)  # reduced over data-parallel ranks
        return losses

    @hookimpl
    def bioscale_inverse_error(self, step):
        """Per layer, ``mean_b ||Δ_l Q_l - σ ε||²`` on a fresh draw, no update (diagnostics)."""
        if not self.feedback:
            return None
        errors = {}
        with torch.no_grad(), self.noise.drawing(step, restore=True):  # diagnostics change no state
            for l, q in self.feedback.items():
                h = step.h[l]
                noise = self.noise.normal_like(h, self.config.sigma)
                delta = self._output_from(l, h + noise) - step.logits
                errors[l] = (delta @ q - noise.reshape(h.shape[0], -1)).square().sum(1).mean()
        return errors

    @hookimpl
    def bioscale_state_dict(self):
        return {
            "feedback": {str(l): q for l, q in self.feedback.items()},
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "noise": self.noise.state_dict(),
        }

    @hookimpl
    def bioscale_load_state_dict(self, state):
        for l, q in self.feedback.items():
            q.copy_(state["feedback"][str(l)])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.noise.load_state_dict(state["noise"])
