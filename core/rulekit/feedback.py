"""Fixed random feedback weights, one tensor per layer, checkpointable.

``FeedbackWeights.like_forward(model, generator, layers)`` draws, for each listed layer,
a Glorot-uniform tensor shaped like that layer's forward weight (``op.new_weight``), on the
model's device. Such a tensor ``B_l`` is used through ``step.layer_vjp(l, δ, weight=B_l)``.
"""

from __future__ import annotations

import torch


def consumers_of(model, layers) -> list[int]:
    """The layers whose feedback signals reach the hidden layers ``layers`` (what
    ``bioscale_setup`` receives): every layer whose op reads ``h_k`` for ``k`` in ``layers``, in
    order; ``[k + 1 for k in layers]`` in a chain. ``bioscale_feedback_signal(step, l, ...)`` is
    called for exactly these ``l``."""
    return [l for k in layers for l in model.consumers(k)]


class FeedbackWeights:
    """A dict-like ``{layer: tensor}`` of fixed (never trained) feedback weights."""

    def __init__(self, weights: dict[int, torch.Tensor]):
        self.weights = dict(weights)

    @classmethod
    def like_forward(cls, model, generator: torch.Generator, layers) -> FeedbackWeights:
        return cls({l: model.layer(l).op.new_weight(generator) for l in layers})

    def __getitem__(self, layer: int) -> torch.Tensor:
        return self.weights[layer]

    def __contains__(self, layer: int) -> bool:
        return layer in self.weights

    def state_dict(self) -> dict:
        return {str(l): w for l, w in self.weights.items()}

    def load_state_dict(self, state: dict) -> None:
        """Copy saved tensors in place; a missing layer or a shape change raises ValueError."""
        expected = {str(l) for l in self.weights}
        if set(state) != expected:
            raise ValueError(f"feedback weights for layers {sorted(state)} saved, {sorted(expected)} expected")
        for l, w in self.weights.items():
            saved = state[str(l)]
            if saved.shape != w.shape:
                raise ValueError(
                    f"feedback weight of layer {l}: saved shape {tuple(saved.shape)}, expected {tuple(w.shape)}"
                )
            w.copy_(saved.to(w.device, w.dtype))
