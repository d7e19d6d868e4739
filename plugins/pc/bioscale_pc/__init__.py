"""Discriminative predictive coding (Whittington & Bogacz 2017; Millidge et al. 2020; pcx, Pinchetti et
al. 2025) as a target rule.

States ``x_l`` (``l = 1..L-1``) start at the forward's ``h_l`` (``x_0 = x`` is clamped) and take ``T``
gradient steps on the energy, in units that make a step batch-size free (ARCHITECTURE.md,
"Energy-based rules"):

    F = Σ_{l<L} ‖x_l - μ_l‖² / B + β ℓ(f_L(x_{L-1}), y),       ε_l = x_l - μ_l
    x_l ← x_l - η v_l,  v_l ← m v_l + ε_l - J_{l+1}ᵀ ε_{l+1}   (l = L-1: ... + β J_Lᵀ g, g = (B/2) ∂ℓ/∂logits)

with ``ℓ`` the run's task loss (mean cross-entropy; ``β = 1`` clamps the label through it, as pcx's
PC-CE; small ``β`` is the nudged regime) and ``J_lᵀ`` the transpose of layer ``l`` (its post part and
op). ``variant``:

- ``strict``: predictions ``μ_l = f_l(x_{l-1})`` and Jacobians at the current states; each layer then
  learns at the settled states, ``f_l(x*_{l-1})`` regressed onto the target, the input given to the
  core as a ``LayerTarget`` (the output layer: the task loss at ``f_L(x*_{L-1})``).
- ``fixed_prediction``: ``μ_l = h_l`` and the Jacobians of the forward pass stay fixed; layers learn
  from their forward inputs. With ``η = 1`` and ``T ≥ L - 1`` the settled errors are BP's signals,
  exactly (Millidge et al. 2020; Song et al. 2020); ``tests/test_rule_pc.py`` checks it.

Under ``mix`` PC must own every hidden layer (it settles them all, with their true transposes); another
rule may own the output layer, which then learns at its forward input. The target handed to the core is ``μ*_l + ε*_l / β`` (the error rescaled by ``β``): the core's signal
``2 (h - t) / B`` is then ``-2 ε* / (β B)``, BP's gradient in the limit, whatever ``β``. (Fixed
prediction adds the error to the core's own ``h_l``; strict PC's inputs are run again by the core in
float32, which reproduces ``μ*_l``: under bf16 the error is not rounded away.) The settling
runs once per step in ``output_target``, in float32 (states and products; bf16 would round the small
errors away), batched over samples; a loop over the ``T`` steps and the layers, no host read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from bioscale import LayerTarget, RuleConfig, hookimpl
from bioscale.config import bounded
from bioscale.errors import ConfigError
from bioscale.rulekit import paper_search_space
from bioscale.rulekit.targets import float32_maths
from bioscale.step import cross_entropy_and_grad


class PCVariant(Enum):
    strict = "strict"  # predictions, Jacobians and weight updates at the settled states
    fixed_prediction = "fixed_prediction"  # at the forward pass's


@dataclass
class PCConfig(RuleConfig):
    """The forward optimiser (``optimizer``) plus the inference settings:"""

    variant: PCVariant = PCVariant.strict
    steps: int = bounded(20, low=1, high=10000)  # T: inference steps per training step
    state_lr: float = bounded(0.1, low=0, low_open=True)  # η: the states' step size
    state_momentum: float = bounded(0.0, low=0, high=1, high_open=True)  # m: heavy-ball momentum of the states
    beta: float = bounded(1.0, low=0, low_open=True)  # weight of the task loss in the energy (1: clamped)


class PredictiveCoding:
    """Discriminative predictive coding: T inference steps on the energy, local updates at the settled states."""

    Config = PCConfig
    supports = frozenset({"pooling"})  # a pooled layer's Jacobian unpools at its own indices
    support_note = "predictive coding settles a chain of layers: each state is predicted by the one below alone"
    search_space = {
        **paper_search_space(),
        "steps": "int:5:50",
        "state_lr": "loguniform:0.01:1",
        "state_momentum": "choice:0.0,0.5,0.9",
    }

    def __init__(self, config: PCConfig):
        self.config = config
        self._targets: dict = {}  # this step's targets for h_1..h_{L-1}; emptied as they are handed out
        self._inputs: dict = {}  # strict: the settled input of each layer above the first

    # -- the layers as functions of an input (float32, no side effects) ---------------------------
    @staticmethod
    def _forward(layer, x: torch.Tensor) -> tuple:
        """``(f(x), what its transpose needs)`` for one layer, post part included; running statistics untouched."""
        if layer.plain:
            return layer.activation(layer.op(x)), None
        _, h, saved = layer.train_forward(x, None, None, False)
        return h, saved

    @staticmethod
    def _transpose(layer, h: torch.Tensor, saved, v: torch.Tensor) -> torch.Tensor:
        """``J_fᵀ v`` at the evaluation ``(h, saved)``: through the post part, then the op's transpose."""
        grad_a = layer.activation.backward(h, v) if saved is None else layer.post_backward(h, v, saved)[0]
        return layer.op.input_vjp(grad_a)

    def _settle(self, step) -> tuple[list, list]:
        """The settled states ``x*`` and predictions ``μ*``, lists by layer (index 0: the input), float32."""
        c, model, L = self.config, step.model, step.num_layers
        layers = [model.layer(l) for l in range(1, L + 1)]
        strict = c.variant is PCVariant.strict
        with torch.no_grad(), float32_maths(step.logits):
            x = [step.x.float()]
            saved: list = [None]
            for layer in layers:  # the forward pass again, in float32: μ⁰ = h, and the states start there
                h, kept = self._forward(layer, x[-1])
                x.append(h)
                saved.append(kept)
            mu = list(x)
            g = cross_entropy_and_grad(x[L], step.y, step.label_smoothing)[1].mul_(c.beta * step.batch_size / 2)
            velocity: list = [None] * L
            for t in range(c.steps):
                if strict and t > 0:  # predictions and Jacobians at the current states
                    for l in range(1, L + 1):
                        mu[l], saved[l] = self._forward(layers[l - 1], x[l - 1])
                    g = cross_entropy_and_grad(mu[L], step.y, step.label_smoothing)[1].mul_(
                        c.beta * step.batch_size / 2
                    )
                eps: list = [None] + [x[l] - mu[l] for l in range(1, L)]
                above: list = [None] * L  # J_{l+1}ᵀ ε_{l+1} (the top: -β J_Lᵀ g)
                for l in range(1, L):
                    v = g.neg() if l == L - 1 else eps[l + 1]
                    above[l] = self._transpose(layers[l], mu[l + 1], saved[l + 1], v)
                for l in range(1, L):
                    grad = eps[l] - above[l]
                    if c.state_momentum:
                        velocity[l] = grad if velocity[l] is None else velocity[l].mul_(c.state_momentum).add_(grad)
                        grad = velocity[l]
                    x[l] = x[l] - c.state_lr * grad
            if strict:  # the predictions at the settled states
                for l in range(1, L):
                    mu[l] = self._forward(layers[l - 1], x[l - 1])[0]
        return x, mu

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        if tuple(layers) != tuple(range(1, model.num_layers)):
            raise ConfigError(
                f"pc settles every hidden state of the net, so it must give every hidden layer its target; "
                f"here it has layers {list(layers)} of 1..{model.num_layers - 1} (rules.mix.layers)"
            )

    # -- credit ----------------------------------------------------------------------------------
    @hookimpl
    def bioscale_output_target(self, step):
        """Settles the states; hands the output layer its settled input (strict) or nothing (fixed prediction)."""
        return self._prepare(step)

    def _prepare(self, step):
        """This step's targets and inputs (kept until layer 1's is handed out); the output layer's answer."""
        x, mu = self._settle(step)
        L, beta = step.num_layers, self.config.beta
        strict = self.config.variant is PCVariant.strict
        # strict: the core runs layer l again on x*_{l-1} in float32, which gives μ*_l bit for bit; fixed
        # prediction: the core's h_l (bf16 under bf16) plus the float32 error, which bf16 would round away
        # (layer 1 reads x in both variants: the core's h_1 is its prediction)
        base = {l: mu[l] if strict and l > 1 else step.h[l].float() for l in range(1, L)}
        self._targets = {l: base[l] + (x[l] - mu[l]) / beta for l in range(1, L)}
        if strict:
            self._inputs = {l: x[l - 1] for l in range(2, L + 1)}
            return LayerTarget(None, x[L - 1])
        self._inputs = {}
        return None

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        """The target for ``h_{layer-1}``, with its settled input where it has one (strict, above layer 1)."""
        if not self._targets:  # a step whose output layer another rule owns (mix): settle here
            self._prepare(step)
        l = layer - 1
        target = self._targets.pop(l)
        given = self._inputs.pop(l, None)
        if l == 1:  # the step's last call: nothing of it stays with the rule
            self._targets, self._inputs = {}, {}
        return target if given is None else LayerTarget(target, given)
