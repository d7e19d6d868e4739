"""The settings of an optimiser and its learning-rate schedule (``OptimizerConfig``).

One section of this type configures every optimiser bioscale builds: a rule's forward
optimiser (``rules.<name>.optimizer``), a target-propagation rule's ``inverse_optimizer`` and
any optimiser a rule builds with :class:`bioscale.rulekit.RuleOptimizer`.
:func:`bioscale.optim.make_optimizer` builds it and :func:`bioscale.optim.scheduled_lr` gives
its learning rate at each step. ``AdamConfig`` is the same class under its former name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from .added_fields import plain_default, without_defaults
from .bounds import bounded


class OptimizerName(Enum):
    adam = "adam"  # torch.optim.Adam (AdamW with decoupled_weight_decay=true)
    sgd = "sgd"  # torch.optim.SGD: momentum, dampening, nesterov; weight_decay is an L2 term


class LRSchedule(Enum):
    constant = "constant"  # lr throughout
    cosine = "cosine"  # lr · (1 + cos(π t)) / 2, t the fraction of the run after warm-up: 0 at the end
    multistep = "multistep"  # lr · gamma^(milestones passed), milestones in epochs


@dataclass
class OptimizerConfig:
    """An optimiser and its learning-rate schedule.

    ``beta1``, ``beta2`` and ``eps`` are read by Adam only; ``momentum``, ``dampening`` and
    ``nesterov`` by SGD only (both sets are always present, so a sweep may switch ``name``).
    ``weight_decay`` λ adds ``λ·w`` to the gradient (L2) for both; ``decoupled_weight_decay``
    (Adam only, AdamW) multiplies the weights by ``1 - lr·λ`` each step instead.

    Schedule: ``warmup_epochs`` W > 0 multiplies the lr by ``e / W`` (a linear ramp from 0 at
    the run's first step) until epoch ``e = W``; the ``schedule`` then gives the rest: cosine
    decays over the epochs after W, multistep multiplies by ``gamma`` at each milestone
    (epochs since the start of the run, fractions allowed; a milestone takes effect from the
    first step at or after it). Epochs are counted over the planned ``trainer.epochs``.
    """

    name: OptimizerName = OptimizerName.adam
    lr: float = bounded(1e-3, low=0)  # peak learning rate (the schedule's value before any decay)
    beta1: float = bounded(0.9, low=0, high=1, high_open=True)  # Adam: first-moment decay
    beta2: float = bounded(0.999, low=0, high=1, high_open=True)  # Adam: second-moment decay
    eps: float = bounded(1e-8, low=0)  # Adam: added to the root of the second moment
    weight_decay: float = bounded(0.0, low=0)  # λ: L2 (λ·w added to the gradient), or AdamW's decay
    decoupled_weight_decay: bool = False  # AdamW: decay the weights directly instead of adding L2 to the gradient
    schedule: LRSchedule = LRSchedule.cosine
    # SGD only; 0 is plain SGD (torch's default), 0.9 the usual momentum SGD: give it explicitly
    momentum: float = bounded(0.0, low=0, high=1, high_open=True)
    dampening: float = bounded(0.0, low=0, high=1)  # SGD only: the new gradient enters the buffer × (1 - this)
    nesterov: bool = False  # SGD only: Nesterov momentum (needs momentum > 0 and dampening 0)
    milestones: list[float] = bounded(default_factory=list, low=0)  # multistep: increasing epochs
    gamma: float = bounded(0.1, low=0, low_open=True)  # multistep: lr factor at each milestone
    warmup_epochs: float = bounded(0.0, low=0)  # linear warm-up from 0 over this many epochs (0: none)

    @staticmethod
    def check_fields(cfg, where: str) -> None:
        """Refuse combinations torch would refuse mid-run, or that would silently do nothing:
        a :class:`ConfigError` naming the key (``where`` is the section's prefix)."""
        name, schedule = plain_default(cfg.name), plain_default(cfg.schedule)
        if cfg.nesterov and not cfg.momentum > 0:
            raise ConfigError(f"{where}.nesterov=true needs {where}.momentum > 0, got {where}.momentum={cfg.momentum}")
        if cfg.nesterov and cfg.dampening != 0:
            raise ConfigError(f"{where}.nesterov=true needs {where}.dampening=0, got {where}.dampening={cfg.dampening}")
        if name == "sgd" and cfg.decoupled_weight_decay:
            raise ConfigError(
                f"{where}.decoupled_weight_decay=true is Adam's (AdamW); with {where}.name=sgd set it to "
                f"false ({where}.weight_decay is then an L2 term, as torch.optim.SGD has it)"
            )
        milestones = list(cfg.milestones)
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ConfigError(f"{where}.milestones must be strictly increasing epochs, got {milestones}")
        if schedule == "multistep" and not milestones:
            raise ConfigError(f"{where}.schedule=multistep needs {where}.milestones (epochs), e.g. [100,150]")


AdamConfig = OptimizerConfig  # the former name, kept for rules written against it

# fields added after run records were first keyed by their resolved settings (``bioscale reproduce``'s
# cell keys): left out of such keys while they hold their defaults, so the records keep their keys
ADDED_FIELDS = ("name", "momentum", "dampening", "nesterov", "milestones", "gamma", "warmup_epochs")


def without_added_defaults(section, plain: dict) -> dict:
    """``plain`` (``section`` as a plain dict, enums as strings) without the :data:`ADDED_FIELDS`
    of each :class:`OptimizerConfig` inside it that hold their defaults; ``section`` is the
    structured DictConfig that tells which nested sections are optimisers."""
    if OmegaConf.get_type(section) is OptimizerConfig:
        return without_defaults(plain, OptimizerConfig(), ADDED_FIELDS)
    return {
        k: without_added_defaults(section[k], v) if isinstance(section.get(k), DictConfig) else v
        for k, v in plain.items()
    }


__all__ = ["AdamConfig", "LRSchedule", "OptimizerConfig", "OptimizerName"]
