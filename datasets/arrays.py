"""Arrays in memory as a :class:`DataBundle`: the path every in-memory data set takes.

``from_arrays`` is what the built-in digits, MNIST and CIFAR-10 loaders and third-party data
sets hand their arrays to. Images are ``(N, H, W)`` (one channel) or ``(N, H, W, C)`` (channels
last), numpy arrays or torch tensors of any real dtype, pixel values in ``[0, max_value]``; labels
are integer class indices ``(N,)``. It checks the labels, holds out ``data.validation`` examples
and cuts the training split to ``data.limit_train`` (``splits.py``, drawn with
``data.split_seed``), normalises as ``data.normalize`` says (``normalize.py``, statistics of the
training split) and sets up augmentation when ``data.augment`` is on.
"""

from __future__ import annotations

import numpy as np
import torch

from .augment import Augmentation
from .errors import DataError
from .in_memory import DataBundle, InMemorySplit
from .normalize import channel_norm
from .splits import hold_out


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


def _numpy(a, what: str, name: str) -> np.ndarray:
    """``a`` (numpy or torch, on any device) as a numpy array."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    if not isinstance(a, np.ndarray):
        raise DataError(f"{name}: {what} is a {type(a).__name__}, not a numpy array or torch tensor")
    return a


def _images(x, what: str, name: str) -> torch.Tensor:
    """``(N, H, W)`` or ``(N, H, W, C)`` images as an ``(N, C, H, W)`` tensor (original dtype)."""
    x = _numpy(x, what, name)
    if x.ndim not in (3, 4) or not (np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)):
        raise DataError(f"{name}: {what} must be real-valued images (N, H, W) or (N, H, W, C); got {x.dtype} {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


def _labels(y, what: str, name: str, n: int) -> np.ndarray:
    y = _numpy(y, what, name)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name}: {what} must be {n} integer class indices, shape ({n},); got {y.dtype} {y.shape}")
    return y.astype(np.int64)


def from_arrays(
    cfg,
    x_train,
    y_train,
    x_test,
    y_test,
    device="cpu",
    max_value: float = 255,
    num_classes: int | None = None,
    source: str | None = None,
) -> DataBundle:
    """A :class:`DataBundle` on ``device`` from training and test arrays, prepared as ``cfg`` (the
    run's ``data`` section) says; a :class:`DataError` for arrays of the wrong shape or labels.

    :param max_value: the largest pixel value (255 for bytes); pixels are divided by it.
    :param num_classes: the class count (default: the largest label in either split, plus one).
    :param source: where the data came from, for the run record (default: ``cfg.name``).
    """
    name = cfg.name
    xtr, xte = _images(x_train, "x_train", name), _images(x_test, "x_test", name)
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(
            f"{name}: training images are {tuple(xtr.shape[1:])} (C, H, W), test images {tuple(xte.shape[1:])}"
        )
    y_tr, y_te = _labels(y_train, "y_train", name, len(xtr)), _labels(y_test, "y_test", name, len(xte))
    if num_classes is None:
        num_classes = int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    check_labels(name, y_tr, y_te, num_classes)
    xtr, ytr, val = hold_out(cfg, xtr, torch.from_numpy(y_tr))
    scale = float(max_value)

    def statistics():
        xf = xtr.to(torch.float64) / scale
        return xf.mean((0, 2, 3)), xf.std((0, 2, 3)).clamp_min(1e-8)

    norm = channel_norm(cfg.normalize, xtr.shape[1], scale, statistics)
    mean, std = norm.mean.float()[:, None, None], norm.std.float()[:, None, None]

    def prepare(x, y):
        xf = (x.to(torch.float32) / scale - mean) / std
        return InMemorySplit(xf.to(device), y.to(device))

    return DataBundle(
        name=name,
        train=prepare(xtr, ytr),
        test=prepare(xte, torch.from_numpy(y_te)),
        val=prepare(*val) if val is not None else None,
        in_shape=tuple(xtr.shape[1:]),
        num_classes=num_classes,
        source=source or name,
        normalization=norm.record(),
        augment=Augmentation(cfg.crop_padding, cfg.flip) if cfg.augment else None,
    )
