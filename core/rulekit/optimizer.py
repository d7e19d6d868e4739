"""The optimiser of a rule's own parameters: the run's lr schedule, data parallelism and bf16 handled.

A rule that trains parameters of its own writes their ``.grad`` as the mean over its rows of the
step and calls :meth:`RuleOptimizer.step`. That call does the contract's duties for it:
- bf16: :meth:`RuleOptimizer.set_grad` writes a gradient formed under autocast (bf16 products)
  into a parameter's ``.grad`` in the parameter's dtype (float32 master weights; torch refuses
  a ``.grad`` of another dtype);
- data parallelism: the gradients are reduced to the global batch's mean on every rank
  (``step.reduce_gradients``, one all-reduce per tensor: give it flat parameters where there are many);
- the learning rate follows the config's schedule at ``step.progress`` of ``step.planned_epochs``.
"""

from __future__ import annotations

import torch
from bioscale.optim import make_optimizer, scheduled_lr, set_lr


class RuleOptimizer:
    """The optimiser an :class:`bioscale.config.schema.OptimizerConfig` names (Adam or SGD, with
    its settings) over ``params``: at every :meth:`step` its learning rate is the config's
    schedule (warm-up included) at ``step.progress``, by the formula the forward optimiser
    uses. Give it the forward optimiser's config (``self.config.optimizer``) for parameters
    that must move exactly as the forward weights do (Kolen-Pollack), or a section of its own.
    """

    def __init__(self, params, cfg, scaled=None, lr_scale: float = 1.0, reduce: bool = True):
        """``scaled``: parameters whose lr is ``lr_scale`` times the schedule's (as the forward
        optimiser scales the output layer's by ``output_lr_scale``). ``reduce=False`` (an explicit
        opt-out): the ``.grad`` given are already the global batch's, identical on every rank
        (Kolen-Pollack's ``B_l.grad`` is ``W_l.grad``, reduced by the core): no all-reduce."""
        self.cfg = cfg
        self.reduce = reduce
        params, scaled = list(params), list(scaled or [])
        self.params = params + scaled
        self.lr_scale = lr_scale if scaled and not params else 1.0  # only scaled ones: one group, scaled here
        self.optimizer = (  # Adam or SGD, as cfg.name says
            make_optimizer(params, cfg, scaled=scaled, lr_scale=lr_scale) if params else make_optimizer(scaled, cfg)
        )

    def step(self, step) -> None:
        """One update from the parameters' ``.grad`` (no grad): reduced over data-parallel ranks
        (unless ``reduce=False``), at the schedule's lr for ``step.progress``. Parameters without
        a ``.grad`` are left alone."""
        with torch.no_grad():
            if self.reduce:
                step.reduce_gradients([p.grad for p in self.params if p.grad is not None])
            set_lr(
                self.optimizer,
                scheduled_lr(self.cfg, step.progress, getattr(step, "planned_epochs", None)) * self.lr_scale,
            )
            self.optimizer.step()

    @staticmethod
    def set_grad(param: torch.Tensor, grad: torch.Tensor) -> None:
        """``param.grad = grad`` in ``param``'s dtype (a bf16 product becomes a float32 gradient)."""
        param.grad = grad.to(param.dtype)

    @property
    def adam(self) -> torch.optim.Optimizer:
        """The torch optimiser (its former name, from when it was always Adam)."""
        return self.optimizer

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        """The torch optimiser's state (Adam moments or SGD momentum buffers): checkpointed by the rule."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


__all__ = ["RuleOptimizer"]
