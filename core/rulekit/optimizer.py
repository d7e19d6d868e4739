"""An optimiser for a rule's own parameters that follows the run's learning-rate schedule."""

from __future__ import annotations

from bioscale.optim import make_adam, scheduled_lr, set_lr


class RuleOptimizer:
    """Adam over ``params`` with the settings of an :class:`bioscale.config.schema.AdamConfig`
    (``lr``, betas, ``eps``, weight decay, ``schedule``): at every :meth:`step` its learning
    rate is the config's schedule at ``step.progress``, by the formula the forward optimiser
    uses. Give it the forward optimiser's config (``self.config.optimizer``) for parameters
    that must move exactly as the forward weights do (Kolen-Pollack), or a section of its own.
    """

    def __init__(self, params, cfg, scaled=None, lr_scale: float = 1.0):
        """``scaled``: parameters whose lr is ``lr_scale`` times the schedule's (as the forward
        optimiser scales the output layer's by ``output_lr_scale``)."""
        self.cfg = cfg
        params, scaled = list(params), list(scaled or [])
        self.params = params + scaled
        self.lr_scale = lr_scale if scaled and not params else 1.0  # only scaled ones: one group, scaled here
        self.adam = make_adam(params, cfg, scaled=scaled, lr_scale=lr_scale) if params else make_adam(scaled, cfg)

    def step(self, step) -> None:
        """One update from the parameters' ``.grad`` at the schedule's lr for ``step.progress``."""
        set_lr(self.adam, scheduled_lr(self.cfg, step.progress) * self.lr_scale)
        self.adam.step()

    @property
    def lr(self) -> float:
        return self.adam.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return self.adam.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.adam.load_state_dict(state)


__all__ = ["RuleOptimizer"]
