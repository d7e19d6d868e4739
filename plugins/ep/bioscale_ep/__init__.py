"""Equilibrium propagation (Scellier & Bengio 2017) with symmetric nudging (Laborieux et al. 2021) on
fully connected chains, as a rule that settles the network itself (ARCHITECTURE.md, "Energy-based rules").

The hidden states ``s_1..s_{L-1}`` (``s_0 = x``) of a layered net settle to a fixed point of

    s_l = σ_l(W_l s_{l-1} + b_l + W_{l+1}ᵀ s_{l+1})           (l < L-1)
    s_{L-1} = σ_{L-1}(W_{L-1} s_{L-2} + b_{L-1} - β W_Lᵀ (softmax(o) - q)),   o = W_L s_{L-1} + b_L

i.e. a stationary point of ``E + β ℓ`` with ``E = Σ_l ∫σ_l⁻¹ - Φ``, ``Φ = Σ_{l<L} s_l·(W_l s_{l-1} + b_l)``
and ``ℓ`` the per-example task loss at the readout ``o`` (outside ``Φ``). Each sweep updates the layers
in order from the latest states (all samples at once). Phases: free (``β = 0``, ``free_steps`` sweeps
from the forward pass's ``h_l``), then from the free fixed point ``nudged_steps`` sweeps at ``+β`` and,
``symmetric``, at ``-β``. Gradients of the mean task loss (``B`` rows):

    hidden W_l, b_l:   (∂Φ/∂θ(s^{-β}) - ∂Φ/∂θ(s^{+β})) / (2 β B)     (one-sided: (∂Φ/∂θ(s^0) - ∂Φ/∂θ(s^β)) / (β B))
    readout W_L, b_L:  ∂ℓ/∂θ at the free state, / B

which tend to ``dℓ(s*)/dθ`` as ``β → 0`` at fixed points (``tests/test_rule_ep.py`` checks it against
autograd through the settled dynamics). Prediction (evaluation and the training error): the free
phase's readout. Settling runs in float32, no host read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioscale import RuleConfig, hookimpl
from bioscale.architectures.ops import LinearOp
from bioscale.config import bounded
from bioscale.errors import ConfigError
from bioscale.rulekit import paper_search_space
from bioscale.rulekit.targets import float32_maths
from bioscale.step import cross_entropy_and_grad


@dataclass
class EPConfig(RuleConfig):
    """The forward optimiser (``optimizer``) plus the phases:"""

    beta: float = bounded(0.5, low=0, low_open=True)  # nudging strength
    free_steps: int = bounded(30, low=1, high=10000)  # sweeps of the free phase (training and evaluation)
    nudged_steps: int = bounded(10, low=1, high=10000)  # sweeps of each nudged phase
    symmetric: bool = True  # nudge at +β and -β (Laborieux et al. 2021); else +β against the free state


class EquilibriumPropagation:
    """Equilibrium propagation: a contrast of the energy's parameter gradients between nudged fixed points."""

    Config = EPConfig
    supports: frozenset = frozenset()  # plain chains; fully connected layers (checked at setup)
    support_note = "equilibrium propagation settles a layered energy: plain fully connected chains"
    search_space = {
        **paper_search_space(),
        "beta": "loguniform:0.05:1",
        "free_steps": "int:10:60",
        "nudged_steps": "int:5:30",
    }

    def __init__(self, config: EPConfig):
        self.config = config
        self.names: dict[int, str] = {}  # id(parameter) -> its name in the model

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        for l in range(1, model.num_layers + 1):
            layer = model.layer(l)
            if not isinstance(layer.op, LinearOp) or not layer.plain:
                raise ConfigError(
                    f"ep: layer {l} of {model.name} is {type(layer.op).__name__}"
                    f"{'' if layer.plain else ' with a post part'}; ep settles fully connected chains only"
                )
        self.names = {id(p): n for n, p in model.named_parameters()}

    # -- the dynamics (float32, no grad) ------------------------------------------------------
    def _settle(self, model, s: list, x: torch.Tensor, sweeps: int, beta: float, q: torch.Tensor | None) -> list:
        """``sweeps`` in-order sweeps of the fixed-point update from the states ``s`` (index 0: the input)."""
        L, ops, acts = model.num_layers, model.ops, model.activations
        s = list(s)
        for _ in range(sweeps):
            for l in range(1, L):
                drive = ops[l - 1](s[l - 1])
                if l < L - 1:
                    drive = drive + ops[l].input_vjp(s[l + 1])
                elif beta != 0.0 and q is not None:  # nudged phases know the labels
                    e = torch.softmax(ops[L - 1](s[l]), dim=1).sub_(q)  # ∂ℓ/∂o per example
                    drive = drive - beta * ops[L - 1].input_vjp(e)
                s[l] = acts[l - 1](drive)
        return s

    def _start(self, model, x: torch.Tensor) -> list:
        """The forward pass's states, float32 (the free phase starts there)."""
        s = [x.float()]
        for op, act in zip(model.ops[:-1], model.activations[:-1]):
            s.append(act(op(s[-1])))
        return s

    def _param_grads(self, op, x, grad_a) -> dict:
        return {self.names[id(getattr(op, n))]: g for n, g in op.param_grads(x, grad_a).items()}

    @hookimpl
    def bioscale_parameter_grads(self, step):
        c, model, L, B = self.config, step.model, step.num_layers, step.batch_size
        with torch.no_grad(), float32_maths(step.logits):
            q = step.label_distribution(torch.float32)
            free = self._settle(model, self._start(model, step.x), step.x, c.free_steps, 0.0, q)
            plus = self._settle(model, free, step.x, c.nudged_steps, c.beta, q)
            minus = self._settle(model, free, step.x, c.nudged_steps, -c.beta, q) if c.symmetric else free
            scale = 1.0 / ((2.0 if c.symmetric else 1.0) * c.beta * B)
            grads: dict = {}
            for l in range(1, L):
                op = model.ops[l - 1]
                low, high = self._param_grads(op, minus[l - 1], minus[l]), self._param_grads(op, plus[l - 1], plus[l])
                grads.update({n: (low[n] - high[n]).mul_(scale) for n in low})
            logits = model.ops[L - 1](free[L - 1])
            e = torch.softmax(logits, dim=1).sub_(q).div_(B)
            grads.update(self._param_grads(model.ops[L - 1], free[L - 1], e))
        # the free phase's prediction: what the training loss and error count
        step.h[L] = logits.to(step.h[L].dtype)
        step.loss = cross_entropy_and_grad(logits, step.y, step.label_smoothing)[0]
        return grads

    @hookimpl
    def bioscale_predict(self, model, x):
        with torch.no_grad(), float32_maths(x):
            free = self._settle(model, self._start(model, x), x, self.config.free_steps, 0.0, None)
            return model.ops[-1](free[-1])
