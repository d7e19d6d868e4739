"""Adam from an :class:`AdamConfig`, and the learning rate at a point of the run."""

from __future__ import annotations

import math

import torch

from .config.schema import LRSchedule


def adam_kwargs(params: list, cfg) -> dict:
    """Keyword arguments of ``torch.optim.Adam`` for ``cfg``; the fused kernel where torch
    has one for every parameter (CPU and CUDA floating point), which is several times
    faster than the per-tensor loop on the CPU."""
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return {
        "lr": cfg.lr,
        "betas": (cfg.beta1, cfg.beta2),
        "eps": cfg.eps,
        "weight_decay": cfg.weight_decay,
        "decoupled_weight_decay": cfg.decoupled_weight_decay,
        "fused": fused or None,
    }


def make_adam(params, cfg, scaled: list | None = None, lr_scale: float = 1.0) -> torch.optim.Adam:
    """Adam over ``params`` with the config's lr, betas, eps and weight decay. ``scaled``
    parameters (if any) form a second group whose lr is ``lr_scale`` times the config's,
    here and at every :func:`set_lr`; with ``lr_scale`` 1 they join the one group (each
    group costs a fused kernel call and Python work per step)."""
    params, scaled = list(params), list(scaled or [])
    if not scaled or lr_scale == 1.0:
        return torch.optim.Adam(params + scaled, **adam_kwargs(params + scaled, cfg))
    kwargs = adam_kwargs(params + scaled, cfg)
    groups = [{"params": params, "lr_scale": 1.0}, {"params": scaled, "lr_scale": lr_scale, "lr": cfg.lr * lr_scale}]
    return torch.optim.Adam(groups, **kwargs)


def scheduled_lr(cfg, progress: float) -> float:
    """Learning rate at ``progress`` in [0, 1] of the run (cosine decays to 0 at 1)."""
    if _schedule(cfg) == LRSchedule.cosine:
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return cfg.lr


def _schedule(cfg):
    value = cfg.schedule
    return value if isinstance(value, LRSchedule) else LRSchedule(value)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's lr to ``lr`` times the group's ``lr_scale`` (1 if it has none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
