"""Turn a data config into tensors on the device: split, normalise, hold out validation.

``load_data(cfg, device)`` reads the raw arrays (see ``sources.py``), converts them to
``(N, C, H, W)`` float32, applies the normalisation the config names explicitly and
returns a :class:`DataBundle`. The validation split is a fixed subset of the training
data (chosen with ``cfg.split_seed``, independent of the run seed).
"""

from __future__ import annotations

import numpy as np
import torch

from .augment import Augmentation
from .errors import DataError
from .in_memory import DataBundle, InMemorySplit
from .sources import load_digits, load_standard

IN_MEMORY = ("digits", "mnist", "cifar10")
CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10}


def check_labels(name: str, y_train: np.ndarray, y_test: np.ndarray, classes: int) -> None:
    """Labels are class indices in ``[0, classes)`` and the test split has no class the training
    split lacks; else a :class:`DataError` naming the first bad label."""
    for split, y in (("train", y_train), ("test", y_test)):
        bad = (y < 0) | (y >= classes)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{name}: y_{split}[{i}] = {int(y[i])} is not a class of {name} (0..{classes - 1}); "
                            f"{int(bad.sum())} such label(s)")
    unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y_train).tolist()))
    if unseen:
        raise DataError(f"{name}: the test split has classes the training split lacks: {unseen}")
NORMALIZATIONS = ("standardize", "scale", "none")


def _plain(value):
    """Enum members (from structured configs) as their string values."""
    return getattr(value, "value", value)


def _to_nchw(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


def _raw_arrays(cfg):
    if cfg.name == "digits":
        return load_digits()
    if cfg.name in ("mnist", "cifar10"):
        return load_standard(cfg.name, cfg.root, _plain(cfg.source), cfg.download)
    raise DataError(f"unknown data set {cfg.name!r}; valid: {', '.join(IN_MEMORY + ('imagenet', 'imagenet32', 'imagenet64'))}")


def hold_out(cfg, x: torch.Tensor, y: torch.Tensor):
    """``(x, y, val)``: the training split less ``cfg.validation`` held-out examples (``val``:
    their ``(x, y)``, or None), cut to ``cfg.limit_train`` when set; the subsets are drawn with
    ``cfg.split_seed``, independent of the run seed."""
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


def load_in_memory(cfg, device) -> DataBundle:
    x_train, y_train, x_test, y_test, max_value = _raw_arrays(cfg)
    num_classes = CLASSES[cfg.name]
    check_labels(cfg.name, y_train, y_test, num_classes)
    xtr, xte = _to_nchw(x_train), _to_nchw(x_test)
    ytr, yte = torch.from_numpy(y_train), torch.from_numpy(y_test)

    xtr, ytr, val = hold_out(cfg, xtr, ytr)
    scale = float(max_value)
    normalize = _plain(cfg.normalize)
    if normalize not in NORMALIZATIONS:
        raise DataError(f"data.normalize={normalize!r}; valid: {', '.join(NORMALIZATIONS)}")
    if normalize == "standardize":
        xf = xtr.to(torch.float64) / scale
        dims = (0, 2, 3)
        mean = xf.mean(dims)
        std = xf.std(dims).clamp_min(1e-8)
    elif normalize == "scale":
        mean = torch.zeros(xtr.shape[1], dtype=torch.float64)
        std = torch.ones(xtr.shape[1], dtype=torch.float64)
    else:
        mean = torch.zeros(xtr.shape[1], dtype=torch.float64)
        std = torch.full((xtr.shape[1],), 1.0 / scale, dtype=torch.float64)

    def prepare(x, y):
        xf = (x.to(torch.float32) / scale - mean.float()[:, None, None]) / std.float()[:, None, None]
        return InMemorySplit(xf.to(device), y.to(device))

    normalization = {
        "kind": normalize,
        "max_value": scale,
        "mean": [round(float(m), 6) for m in mean],
        "std": [round(float(s), 6) for s in std],
    }
    augment = Augmentation(cfg.crop_padding, cfg.flip) if cfg.augment else None
    return DataBundle(
        name=cfg.name,
        train=prepare(xtr, ytr),
        test=prepare(xte, yte),
        val=prepare(*val) if val is not None else None,
        in_shape=tuple(xtr.shape[1:]),
        num_classes=num_classes,
        source=cfg.name if cfg.name == "digits" else f"{cfg.name} from {cfg.root}",
        normalization=normalization,
        augment=augment,
    )


def load_data(cfg, device="cpu") -> DataBundle:
    """Load the data set ``cfg.name`` onto ``device`` (see the module doc)."""
    if cfg.name == "imagenet":
        from .imagenet import load_imagenet

        return load_imagenet(cfg, device)
    from .imagenet_downsampled import SIDES, load_downsampled

    if cfg.name in SIDES:
        return load_downsampled(cfg, device)
    return load_in_memory(cfg, device)
