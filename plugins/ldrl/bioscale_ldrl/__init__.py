"""L-DRL target propagation (Ernoult et al. 2022, "Towards Scaling Difference Target Propagation by
Learning Backprop Targets"): layer-wise feedback ``G_l`` trained so that its Jacobian approaches the
transpose of the forward layer's, which makes the difference-corrected targets approximate BP's.

Feedback ``G_l(h) = σ(op_l.input_vjp(h, V_l) + c_l)`` (``rulekit.LayerInverse``: ``V_l`` shaped like
``W_l``, any layer kind) for ``l = 2..L``. Feedback training, the forward weights only read, with
``ε ~ N(0, σ²)`` shaped like ``h_{l-1}`` and ``η ~ N(0, σ²)`` shaped like ``h_l``:

    dr   = G_l(F_l(h_{l-1} + ε)) - G_l(h_l),     dr_y = G_l(h_l + η) - G_l(h_l)
    loss_l = mean_b ( -2 <ε, dr> + ||dr_y||² )

(for linear maps ``E[loss] = σ² (||V||² - 2 tr(Wᵀ V))``, minimal at ``V = W``: the feedback's Jacobian
``Vᵀ`` is the forward one's transpose). Its gradients come in closed form through the inverses'
``param_grads`` on the three inputs stacked (no autograd), ``feedback_iterations`` Adam steps per
batch. Targets: ``t_L = h_L - β e`` (``e = softmax(h_L) - q(y)``), ``t_{l-1} = h_{l-1} + G_l(t_l) - G_l(h_l)``.
Schedules as the paper's TP rules.

Pooled layers: ``F_l = pool ∘ σ ∘ op`` and ``G_l`` unpools first (``Pᵀ``, the transpose of the
pooling at the evaluation it inverts): ``G_l(F_l(h + ε))`` with the noisy forward's max-pooling
indices; ``G_l(h_l)``, ``G_l(h_l + η)`` and the targets' ``G_l(t_l)`` with the clean forward's
(as scalingDTP). Batch norm and skips are refused: targets need a chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioscale import hookimpl
from bioscale.config import bounded
from bioscale.config.schema import plain_value
from bioscale.rulekit import (
    FeedbackRule,
    InverseConfig,
    LayerInverse,
    NoiseSource,
    RuleOptimizer,
    check_inverse_activation,
    paper_search_space,
)
from bioscale.rulekit.settings import TARGETS_NEED_A_CHAIN
from bioscale.rulekit.targets import difference_target, output_step_target, pool_context


@dataclass
class LDRLConfig(InverseConfig):
    """``InverseConfig`` (schedule, default parallel; inverse activation, init and optimiser) plus:"""

    beta: float = bounded(0.5, low=0, low_open=True)  # output target step: t_L = h_L - β e
    sigma: float = bounded(0.1, low=0, low_open=True)  # std of ε and η in feedback training
    feedback_iterations: int = bounded(1, low=1)  # feedback Adam steps per batch


class LDRL(FeedbackRule):
    """L-DRL (Ernoult et al. 2022): difference target propagation with feedback trained by the L-DRL loss."""

    Config = LDRLConfig
    supports = frozenset({"pooling"})  # chains with pooling: G_l unpools with the indices of the evaluation it inverts
    support_note = TARGETS_NEED_A_CHAIN
    # the forward lr of the results/newer_rules/ runs (mnist_fc 100 epochs, cifar_fc 30 epochs)
    recipes = {preset: {"optimizer": {"lr": 3e-4}} for preset in ("mnist_fc", "cifar_fc")}
    search_space = {**paper_search_space(("optimizer", "inverse_optimizer"), sigma=True), "beta": "loguniform:0.01:1"}

    def __init__(self, config: LDRLConfig):
        check_inverse_activation(config)
        self.config = config
        self.model = None
        self.inverses: dict[int, LayerInverse] = {}
        self.noise: NoiseSource | None = None
        self.optimizer: RuleOptimizer | None = None

    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        self.model = model
        act, init = self.config.inverse_activation, plain_value(self.config.inverse_init)
        self.inverses = {
            k + 1: LayerInverse(model.layer(k + 1).op, act, generator, init, pool=model.layer(k + 1).pool)
            for k in layers
        }
        self.noise = NoiseSource(generator, next(model.parameters()).device)
        params = [p for g in self.inverses.values() for p in g.parameters()]
        self.optimizer = RuleOptimizer(params, self.config.inverse_optimizer) if params else None

    @hookimpl
    def bioscale_output_target(self, step):
        return output_step_target(step, self.config.beta)

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        """``t_{layer-1} = h_{layer-1} + G(t_layer) - G(h_layer)``, both reads in one call."""
        target_above = step.h[layer] if target_above is None else target_above
        ctx = pool_context(step, layer)  # a pooled layer: both reads unpooled with the clean forward's indices
        return difference_target(self.inverses[layer], step.h[layer - 1], target_above, step.h[layer], ctx)

    @hookimpl
    def bioscale_update_inverse(self, step):
        if self.optimizer is None:
            return None
        losses = {}
        with torch.no_grad():
            for _ in range(self.config.feedback_iterations):
                with self.noise.drawing(step):
                    self._feedback_grads(step, losses)
                self.optimizer.step(step)  # reduced over data-parallel ranks
        return losses

    def _feedback_grads(self, step, losses: dict) -> None:
        """Write each ``G_l``'s L-DRL loss gradient into its ``.grad`` and its loss into ``losses``."""
        sigma, B = self.config.sigma, step.batch_size
        assert self.noise is not None and self.optimizer is not None  # bioscale_update_inverse checks
        for l, g in self.inverses.items():
            h_in, h_out = step.h[l - 1], step.h[l]
            eps = self.noise.perturb(torch.zeros_like(h_in), sigma)
            eta = self.noise.perturb(torch.zeros_like(h_out), sigma)
            _, noisy, saved = step.layer(l).train_forward(h_in + eps, None, None, False)
            reads = torch.cat([noisy, h_out, h_out + eta])  # F(h+ε); h_l; h_l+η
            ctx = self._contexts(step, l, saved)
            outs = g(reads) if ctx is None else g(reads, ctx)
            g1, g2, g3 = outs[:B], outs[B : 2 * B], outs[2 * B :]
            d = g3 - g2
            losses[l] = (-2.0 * (eps * (g1 - g2)).flatten(1).sum(1) + d.square().flatten(1).sum(1)).mean()
            grad_out = torch.cat([-2.0 * eps, 2.0 * (eps - d), 2.0 * d]).div_(B)  # ∂loss/∂G(each read)
            for name, grad in g.param_grads(reads, outs, grad_out, ctx).items():
                self.optimizer.set_grad(getattr(g, name), grad)  # bf16: a float32 gradient

    @staticmethod
    def _contexts(step, l: int, noisy_saved) -> torch.Tensor | None:
        """The pooling contexts of the three reads ``[F(h+ε); h_l; h_l+η]`` ``(3B, C, h, w)``: each
        unpools with the indices of the forward that produced it (the noisy forward's, then the
        clean one's twice, as scalingDTP does); None for a layer without max pooling."""
        clean = pool_context(step, l)
        if clean is None:
            return None
        return torch.cat([noisy_saved[1], clean, clean])

    @hookimpl
    def bioscale_state_dict(self):
        return {
            "inverses": {str(l): g.state_dict() for l, g in self.inverses.items()},
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "noise": self.noise.state_dict(),
        }

    @hookimpl
    def bioscale_load_state_dict(self, state):
        for l, g in self.inverses.items():
            g.load_state_dict(state["inverses"][str(l)])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.noise.load_state_dict(state["noise"])
