"""Kolen-Pollack: feedback weights ``B_l`` that receive exactly the forward weights' updates
(Kolen & Pollack 1994; Akrout et al. 2019, "Deep learning without weight transport").

``B_l`` (layers 2..L) starts Glorot-uniform, shaped like ``W_l`` and applied with the layer's own
``input_vjp`` (so ``B_lᵀ`` plays ``W_lᵀ``'s part, for linear, conv and LC layers alike). Every
forward step, after the forward gradients are written (``bioscale_after_forward_grads``), ``B_l``
gets ``W_l``'s gradient, ``δa_l h_{l-1}ᵀ`` for the signal the rule itself propagated, and one step
of an optimiser with the forward optimiser's settings (Adam by default, or SGD), schedule and
output-layer lr scale: both see the same gradients, so the optimiser moves both by the same amount,
and the weight decay shrinks their difference by ``(1 - lr·λ)`` a step (decoupled decay, the
default here: ``W_l - B_l → 0`` without transporting ``W``; with ``optimizer.name=sgd`` set
``decoupled_weight_decay=false``: SGD's L2 decay without momentum shrinks it the same way, with
momentum the shrinking goes through the momentum buffer). No state changes in gradient probes (the update lives in the after-grads hook).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bioscale import RuleConfig, hookimpl
from bioscale.config.schema import OptimizerConfig
from bioscale.rulekit import FeedbackWeights, RuleOptimizer, consumers_of, paper_search_space


def _decaying_adam() -> OptimizerConfig:
    return OptimizerConfig(weight_decay=0.1, decoupled_weight_decay=True)


@dataclass
class KolenPollackConfig(RuleConfig):
    """The forward optimiser, which ``B`` shares; its weight decay is what aligns ``B`` with ``W``."""

    optimizer: OptimizerConfig = field(default_factory=_decaying_adam)


class KolenPollack:
    """Kolen-Pollack (Akrout et al. 2019): feedback weights trained with the forward weights' updates and decay."""

    Config = KolenPollackConfig
    supports = frozenset({"pooling", "batchnorm", "skip"})  # every net bioscale builds
    # the forward lr of the results/newer_rules/ runs (mnist_fc 100 epochs, cifar_fc 30 epochs)
    recipes = {preset: {"optimizer": {"lr": 3e-4}} for preset in ("mnist_fc", "cifar_fc")}
    search_space = paper_search_space()

    def __init__(self, config: KolenPollackConfig):
        self.config = config
        self.model = None
        self.feedback: FeedbackWeights | None = None
        self.optimizer: RuleOptimizer | None = None

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        self.model = model
        L = model.num_layers
        self.feedback = FeedbackWeights.like_forward(model, generator, layers=consumers_of(model, layers))
        below = [b for l, b in self.feedback.weights.items() if l < L]
        top = [b for l, b in self.feedback.weights.items() if l == L]  # the output layer's lr is scaled
        # reduce=False: B_l.grad is W_l.grad, already the global batch's mean in float32 (reduced by the core)
        self.optimizer = (
            RuleOptimizer(below, self.config.optimizer, scaled=top, lr_scale=self.config.output_lr_scale, reduce=False)
            if self.feedback.weights
            else None
        )  # none: a mix gave kp no layer

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``grad_above``: ``(B, *out_shape of layer)`` → ``(B, *in_shape)`` through ``B_layer``."""
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])

    @hookimpl
    def bioscale_after_forward_grads(self, step):  # no grads: the step's signals may go
        if self.optimizer is None:
            return
        for l, b in self.feedback.weights.items():
            b.grad = self.model.ops[l - 1].weight.grad  # W_l's gradient (already averaged over ranks); read only
        self.optimizer.step(step)

    @hookimpl
    def bioscale_state_dict(self):
        return {
            "feedback": self.feedback.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
        }

    @hookimpl
    def bioscale_load_state_dict(self, state):
        self.feedback.load_state_dict(state["feedback"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
