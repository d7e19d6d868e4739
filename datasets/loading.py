"""The shipped digits, MNIST and CIFAR-10 as float32 tensors on the device.

``load_in_memory(cfg, device)`` reads the raw arrays (see ``sources.py``), checks the labels,
holds out validation (``splits.py``), converts the images to ``(N, C, H, W)`` float32
normalised as ``data.normalize`` says (``normalize.py``) and returns a :class:`DataBundle`.
"""

from __future__ import annotations

import numpy as np
import torch
from bioscale.config.schema import plain_value

from .augment import Augmentation
from .errors import DataError
from .in_memory import DataBundle, InMemorySplit
from .normalize import channel_norm
from .sources import load_digits, load_standard
from .splits import hold_out

IN_MEMORY = ("digits", "mnist", "cifar10")
CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10}


def check_labels(name: str, y_train: np.ndarray, y_test: np.ndarray, classes: int) -> None:
    """Labels are class indices in ``[0, classes)`` and the test split has no class the training
    split lacks; else a :class:`DataError` naming the first bad label."""
    for split, y in (("train", y_train), ("test", y_test)):
        bad = (y < 0) | (y >= classes)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{name}: y_{split}[{i}] = {int(y[i])} is not a class of {name} (0..{classes - 1}); "
                f"{int(bad.sum())} such label(s)"
            )
    unseen = sorted(set(np.unique(y_test).tolist()) - set(np.unique(y_train).tolist()))
    if unseen:
        raise DataError(f"{name}: the test split has classes the training split lacks: {unseen}")


def _to_nchw(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


def _raw_arrays(cfg):
    if cfg.name == "digits":
        return load_digits()
    if cfg.name in ("mnist", "cifar10"):
        return load_standard(cfg.name, cfg.root, plain_value(cfg.source), cfg.download)
    raise DataError(
        f"unknown data set {cfg.name!r}; valid: {', '.join(IN_MEMORY + ('imagenet', 'imagenet32', 'imagenet64'))}"
    )


def load_in_memory(cfg, device) -> DataBundle:
    x_train, y_train, x_test, y_test, max_value = _raw_arrays(cfg)
    num_classes = CLASSES[cfg.name]
    check_labels(cfg.name, y_train, y_test, num_classes)
    xtr, xte = _to_nchw(x_train), _to_nchw(x_test)
    ytr, yte = torch.from_numpy(y_train), torch.from_numpy(y_test)

    xtr, ytr, val = hold_out(cfg, xtr, ytr)
    scale = float(max_value)

    def statistics():
        xf = xtr.to(torch.float64) / scale
        return xf.mean((0, 2, 3)), xf.std((0, 2, 3)).clamp_min(1e-8)

    norm = channel_norm(cfg.normalize, xtr.shape[1], scale, statistics)
    mean, std = norm.mean.float()[:, None, None], norm.std.float()[:, None, None]

    def prepare(x, y):
        xf = (x.to(torch.float32) / scale - mean) / std
        return InMemorySplit(xf.to(device), y.to(device))

    augment = Augmentation(cfg.crop_padding, cfg.flip) if cfg.augment else None
    return DataBundle(
        name=cfg.name,
        train=prepare(xtr, ytr),
        test=prepare(xte, yte),
        val=prepare(*val) if val is not None else None,
        in_shape=tuple(xtr.shape[1:]),
        num_classes=num_classes,
        source=cfg.name if cfg.name == "digits" else f"{cfg.name} from {cfg.root}",
        normalization=norm.record(),
        augment=augment,
    )
