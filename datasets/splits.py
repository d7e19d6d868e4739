"""The validation and ``limit_train`` subsets of a training split, shared by every in-memory loader."""

from __future__ import annotations

import torch

from .errors import DataError


def held_out_rows(cfg, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(train_rows, val_rows)``: int64 indices into an ``n``-row training split, CPU. ``val_rows``
    are ``cfg.validation`` held-out rows (None if 0); ``train_rows`` the rest, cut to
    ``cfg.limit_train`` when set (None: no subset, every row). Drawn with ``cfg.split_seed``,
    independent of the run seed."""
    if cfg.validation < 0 or cfg.validation >= n:
        raise DataError(f"data.validation={cfg.validation} must be in [0, {n - 1}] for {cfg.name}")
    if cfg.validation == 0 and cfg.limit_train == 0:
        return None, None
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.split_seed))
    val_idx, train_idx = order[: cfg.validation], order[cfg.validation :]
    if cfg.limit_train > 0:
        train_idx = train_idx[: cfg.limit_train]
    return train_idx, (val_idx if cfg.validation > 0 else None)


def hold_out(cfg, x: torch.Tensor, y: torch.Tensor):
    """``(x, y, val)``: the training split less the held-out rows (``val``: their ``(x, y)``, or
    None), cut to ``cfg.limit_train`` when set; copies (small data sets; downsampled ImageNet
    keeps index views instead, from :func:`held_out_rows`).

    :param x: ``(N, ...)`` images; :param y: ``(N,)`` labels (any dtype, any device).
    """
    train_idx, val_idx = held_out_rows(cfg, len(y))
    if train_idx is None:
        return x, y, None
    val = (x[val_idx], y[val_idx]) if val_idx is not None else None
    return x[train_idx], y[train_idx], val
