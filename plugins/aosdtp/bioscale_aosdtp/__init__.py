"""Auxiliary-output simplified DTP (Bartunov et al. 2018).

The output is ``h_L = [o, z]``: ``o`` are the model's logits (trained on the task loss),
``z = tanh(R h_{L-1})`` are ``aux_units`` fixed random features of the penultimate layer
(``aux_activation`` in place of tanh when set, e.g. ``identity`` for linear features; ``R``
uniform within ``aux_gain`` times the Glorot bound, drawn once from the run's seed, never
trained, checkpointed). The top inverse reads ``[softmax(o), z]`` (probability space,
as in SDTP):
``g_L(o, z) = tanh(V_o softmax(o) + V_z z + c)``. Penultimate target, with the same ``z``
in both terms: ``ĥ_{L-1} = h_{L-1} - g_L(o, z) + g_L(ô, z)``, ``ô`` the label distribution
(``step.label_distribution()``: one-hot, or label-smoothed under ``trainer.label_smoothing``).
Lower targets and denoising inverses as in SDTP (``top_sigma``, when set, is the noise std for
training ``g_L`` alone; ``sigma`` otherwise; ``g_L``'s lr is ``top_inverse_lr_scale`` times
the inverse optimiser's). No gradient of the task loss reaches a hidden layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from bioscale.architectures import make_activation
from bioscale.architectures.ops import glorot_bound
from bioscale.config import bounded
from bioscale.errors import ConfigError
from bioscale.rulekit import DenseInverse, TargetPropagation, TPConfig, per_schedule_recipes
from bioscale.rulekit.settings import TARGETS_NEED_A_CHAIN
from bioscale.rulekit.targets import float32_maths


@dataclass
class AOSDTPConfig(TPConfig):
    aux_units: int = bounded(512, low=0)  # size of z; the paper: more is better, saturating near 1000
    aux_gain: float = bounded(1.0, low=0, low_open=True)  # R is uniform within aux_gain x the Glorot bound
    aux_activation: str = "tanh"  # z = aux_activation(R h_{L-1}): tanh, identity, relu or sigmoid
    top_sigma: float | None = bounded(None, low=0)  # noise std for training g_L alone; None: sigma
    top_inverse_lr_scale: float = bounded(1.0, low=0, low_open=True)  # g_L's lr: inverse_optimizer.lr times this
    shared_noise: bool = False  # per-layer draws: shared measured no better (results/shared_noise/)


# Recipes per schedule, tuned on mnist_fc (results/recipes/aosdtp-*/), carried over to the other nets.
# Parallel: the paper-space sweep's best (results/recipes/aosdtp-parallel/sweep_mnist_fc_20ep, trial 12).
PARALLEL = {
    "optimizer": {"lr": 1.91e-4, "beta2": 0.999, "eps": 1e-6},
    "inverse_optimizer": {"lr": 1.51e-5, "beta2": 0.999, "eps": 1e-6, "schedule": "constant"},
    "sigma": 0.124,
}
ALTERNATING = {
    "optimizer": {"lr": 1e-3, "beta2": 0.99},
    "inverse_optimizer": {"lr": 5e-4, "schedule": "cosine", "beta2": 0.99},
    "top_inverse_lr_scale": 0.3,
    "sigma": 0.251,
    "aux_units": 1024,
}
RECIPES = per_schedule_recipes(
    AOSDTPConfig, ("mnist_fc", "mnist_lc", "cifar_fc", "cifar_lc", "cifar_conv"), ALTERNATING, PARALLEL
)


class AuxiliaryOutputSDTP(TargetPropagation):
    """Auxiliary-output SDTP (Bartunov et al. 2018): label target plus fixed random features z."""

    Config = AOSDTPConfig
    supports = frozenset({"pooling"})  # chains with pooling: a pooled layer's inverse unpools first
    support_note = TARGETS_NEED_A_CHAIN
    paper_name = "AO-SDTP"
    noise_preserving = False
    recipes = RECIPES

    def __init__(self, config) -> None:
        try:
            aux_activation = make_activation(config.aux_activation)
        except ValueError as exc:
            raise ConfigError(f"aux_activation: {exc}") from None
        super().__init__(config)
        self.aux_weight: torch.Tensor | None = None
        self._aux_activation = aux_activation

    def inverse_layers(self, model):
        return range(2, model.num_layers + 1)

    def build_inverse(self, model, l, generator):
        if l < model.num_layers:
            return super().build_inverse(model, l, generator)
        top = model.layer(l).op
        n_in = top.out_shape[0] + self.config.aux_units
        device = top.weight.device
        n_pen = math.prod(top.in_shape)
        bound = self.config.aux_gain * glorot_bound(n_pen, self.config.aux_units)
        self.aux_weight = (
            torch.empty(self.config.aux_units, n_pen).uniform_(-bound, bound, generator=generator).to(device)
        )
        return DenseInverse(n_in, top.in_shape, self.config.inverse_activation, generator, device, self.inverse_init)

    def inverse_sigma(self, l):
        top = l == self.model.num_layers and self.config.top_sigma is not None
        return self.config.top_sigma if top else self.config.sigma

    def top_inverse_lr_scale(self):
        return self.config.top_inverse_lr_scale

    def aux(self, h_penultimate: torch.Tensor) -> torch.Tensor:
        """``z = tanh(R h_{L-1})`` (or ``aux_activation``): ``(B, *in_shape of layer L)`` →
        ``(B, aux_units)``; never trained."""
        assert self.aux_weight is not None  # drawn by build_inverse of the top layer
        return self._aux_activation.forward_(h_penultimate.reshape(h_penultimate.shape[0], -1) @ self.aux_weight.t())

    def read_top(self, h_out, h_in):
        return torch.cat([F.softmax(h_out, dim=1), self.aux(h_in)], dim=1)

    def top_target(self, step, target_above):
        L = step.num_layers
        read = self.read_top(step.h[L], step.h[L - 1])  # [softmax(o), z]
        label = step.label_distribution(torch.float32)
        inputs = torch.cat([torch.cat([label, read[:, label.shape[1] :]], 1), read])  # [ô, z] and [o, z]: the same z
        B = step.batch_size
        with float32_maths(inputs):  # bf16: g_L(ô, z) - g_L(o, z) may lie below bf16's spacing
            both = self.inverses[str(L)](inputs.float())  # [g_L(ô, z); g_L(o, z)], float32
        return torch.sub(step.h[L - 1], both[B:]).add_(both[:B])

    def extra_state(self):
        return {"aux_weight": self.aux_weight}

    def load_extra_state(self, state):
        if state["aux_weight"].shape != self.aux_weight.shape:
            raise ValueError(f"aux weight shape {tuple(state['aux_weight'].shape)} != {tuple(self.aux_weight.shape)}")
        self.aux_weight.copy_(state["aux_weight"])
