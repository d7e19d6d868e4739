"""An example third-party rule: feedback alignment whose random feedback weights are scaled.

``B_l = gain · R_l`` with ``R_l`` Glorot-uniform, drawn once from the rule's generator and kept
in the checkpoint; the signal for ``h_{l-1}`` is ``B_lᵀ δa_l`` through the layer's own transpose,
so linear, conv and locally connected layers all work. ``gain = 1`` is plain FA.
Everything here uses bioscale's public API only: ``RuleConfig``, ``hookimpl``, ``bounded`` and
``bioscale.rulekit``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioscale import RuleConfig, hookimpl
from bioscale.config import bounded
from bioscale.rulekit import FeedbackWeights, paper_search_space


@dataclass
class ScaledFeedbackConfig(RuleConfig):
    gain: float = bounded(1.0, low=0, low_open=True)  # the feedback weights' scale against Glorot's


class ScaledFeedback:
    """Feedback alignment with scaled random feedback (an example third-party rule)."""

    Config = ScaledFeedbackConfig
    search_space = {**paper_search_space(), "gain": "loguniform:0.1:10"}

    def __init__(self, config: ScaledFeedbackConfig):
        self.config = config
        self.feedback: FeedbackWeights | None = None

    @hookimpl
    def bioscale_setup(self, model, generator):
        self.feedback = FeedbackWeights.like_forward(model, generator, layers=range(2, model.num_layers + 1))
        for weight in self.feedback.weights.values():
            weight.mul_(self.config.gain)

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        """``grad_above``: ``(B, *out_shape of layer)`` → ``(B, *in_shape)`` through ``B_layer``."""
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])

    @hookimpl
    def bioscale_state_dict(self):
        return {"feedback": self.feedback.state_dict()}

    @hookimpl
    def bioscale_load_state_dict(self, state):
        self.feedback.load_state_dict(state["feedback"])
