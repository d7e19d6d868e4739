"""The validation and ``limit_train`` subsets of a training split, shared by every in-memory loader."""

from __future__ import annotations

import torch

from .errors import DataError


def hold_out(cfg, x: torch.Tensor, y: torch.Tensor):
    """``(x, y, val)``: the training split less ``cfg.validation`` held-out examples (``val``:
    their ``(x, y)``, or None), cut to ``cfg.limit_train`` when set; the subsets are drawn with
    ``cfg.split_seed``, independent of the run seed.

    :param x: ``(N, ...)`` images; :param y: ``(N,)`` labels (any dtype, any device).
    """
    if cfg.validation < 0 or cfg.validation >= len(y):
        raise DataError(f"data.validation={cfg.validation} must be in [0, {len(y) - 1}] for {cfg.name}")
    if cfg.validation == 0 and cfg.limit_train == 0:
        return x, y, None
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.split_seed))
    val_idx, train_idx = order[: cfg.validation], order[cfg.validation :]
    if cfg.limit_train > 0:
        train_idx = train_idx[: cfg.limit_train]
    val = (x[val_idx], y[val_idx]) if cfg.validation > 0 else None
    return x[train_idx], y[train_idx], val
