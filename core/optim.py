"""The optimiser an :class:`OptimizerConfig` names (Adam or SGD), and its learning rate at a
point of the run (warm-up, then a constant, cosine or multistep schedule)."""

from __future__ import annotations

import bisect
import math

import torch

from .config.schema import LRSchedule, OptimizerName

MILESTONE_SLACK = 1e-9  # epochs: the run's position (a float) may fall this short of a milestone it reached


def _fused(params: list) -> bool:
    """Whether torch's fused kernel covers every parameter (CPU and CUDA floating point): several
    times faster than the per-tensor loop on the CPU, and equal to it bit for bit."""
    return bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)


def adam_kwargs(params: list, cfg) -> dict:
    """Keyword arguments of ``torch.optim.Adam`` for ``cfg``; the fused kernel where torch has one."""
    return {
        "lr": cfg.lr,
        "betas": (cfg.beta1, cfg.beta2),
        "eps": cfg.eps,
        "weight_decay": cfg.weight_decay,
        "decoupled_weight_decay": cfg.decoupled_weight_decay,
        "fused": _fused(params) or None,
    }


def sgd_kwargs(params: list, cfg) -> dict:
    """Keyword arguments of ``torch.optim.SGD`` for ``cfg`` (``weight_decay`` is an L2 term); the
    fused kernel where torch has one (on a CPU about 1.5 × faster than foreach, 50 × than the loop)."""
    return {
        "lr": cfg.lr,
        "momentum": cfg.momentum,
        "dampening": cfg.dampening,
        "weight_decay": cfg.weight_decay,
        "nesterov": cfg.nesterov,
        "fused": _fused(params) or None,
    }


def optimizer_name(cfg) -> OptimizerName:
    """``cfg.name`` as an :class:`OptimizerName` (Adam for a config without one)."""
    value = getattr(cfg, "name", OptimizerName.adam)
    return value if isinstance(value, OptimizerName) else OptimizerName(value)


def make_optimizer(params, cfg, scaled: list | None = None, lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """The optimiser ``cfg.name`` names over ``params``, with the config's settings. ``scaled``
    parameters (if any) form a second group whose lr is ``lr_scale`` times the config's, here
    and at every :func:`set_lr`; with ``lr_scale`` 1 they join the one group (each group costs
    a fused kernel call and Python work per step)."""
    params, scaled = list(params), list(scaled or [])
    cls: type[torch.optim.Optimizer] = torch.optim.Adam
    kwargs = adam_kwargs(params + scaled, cfg)
    if optimizer_name(cfg) is OptimizerName.sgd:
        cls, kwargs = torch.optim.SGD, sgd_kwargs(params + scaled, cfg)
    if not scaled or lr_scale == 1.0:
        return cls(params + scaled, **kwargs)
    groups = [{"params": params, "lr_scale": 1.0}, {"params": scaled, "lr_scale": lr_scale, "lr": cfg.lr * lr_scale}]
    return cls(groups, **kwargs)


make_adam = make_optimizer  # the former name (Adam was the only optimiser): builds whatever cfg.name says


def scheduled_lr(cfg, progress: float, planned_epochs: float | None = None) -> float:
    """Learning rate at ``progress`` in [0, 1] of a run planned for ``planned_epochs`` epochs
    (so at epoch ``progress · planned_epochs``): the warm-up ramp times the schedule (see
    :class:`~bioscale.config.schema.OptimizerConfig`). A constant or cosine schedule without
    warm-up needs no ``planned_epochs``; multistep and warm-up do (a ``ValueError`` without)."""
    schedule = _schedule(cfg)
    warmup = getattr(cfg, "warmup_epochs", 0.0)
    if not warmup and schedule is not LRSchedule.multistep:
        return _cosine(cfg.lr, progress) if schedule is LRSchedule.cosine else cfg.lr
    if planned_epochs is None:
        raise ValueError(f"the {schedule.value} schedule with warm-up {warmup} needs the run's planned epochs")
    at = progress * planned_epochs
    ramp = at / warmup if at < warmup else 1.0
    if schedule is LRSchedule.multistep:
        return cfg.lr * cfg.gamma ** bisect.bisect_right(list(cfg.milestones), at + MILESTONE_SLACK) * ramp
    if schedule is LRSchedule.cosine:
        after = (at - warmup) / (planned_epochs - warmup) if planned_epochs > warmup else 0.0
        return _cosine(cfg.lr, after) * ramp
    return cfg.lr * ramp


def _cosine(lr: float, t: float) -> float:
    """``lr · (1 + cos(π t)) / 2`` for ``t`` clipped to [0, 1]: ``lr`` at 0, 0 at 1."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def _schedule(cfg):
    value = cfg.schedule
    return value if isinstance(value, LRSchedule) else LRSchedule(value)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's lr to ``lr`` times the group's ``lr_scale`` (1 if it has none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
