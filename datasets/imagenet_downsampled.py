"""Downsampled ImageNet (Chrabaszcz et al. 2017): ``data=imagenet32`` / ``data=imagenet64``.

``data.root`` holds the npz batches of the official release, ``train_data_batch_1.npz`` ..
``train_data_batch_10.npz`` and ``val_data.npz`` (directly or in one subfolder each, as the
archives unpack). Each file has ``data`` ``(N, 3·S·S)`` uint8, a row being the R, G and B planes
of an ``S × S`` image in turn, and ``labels`` ``(N,)`` in ``1..1000``. The images stay uint8 in
memory on the device (ImageNet32's 1.28 M training images: 3.9 GB; ImageNet64: 15.7 GB) and
each batch is normalised as it is taken; the validation file is the test split. Top-1 and
top-5 errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .augment import Augmentation
from .errors import DataError
from .in_memory import DataBundle, InMemorySplit
from .normalize import channel_norm
from .sources import read_arrays
from .splits import hold_out

SIDES = {"imagenet32": 32, "imagenet64": 64}
CLASSES = 1000
STAT_CHUNK = 65536  # images per chunk when computing the channel statistics


def _find(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` in ``root`` or in its immediate subfolders."""
    found = sorted(root.glob(pattern)) or sorted(root.glob(f"*/{pattern}"))
    return sorted(found, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])


def _read(path: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 3, S, S) uint8, labels (N,) int64 in 0..999)`` of one npz batch."""
    data, labels = read_arrays(path, ("data", "labels"), "a downsampled ImageNet batch")
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * side * side:
        raise DataError(
            f"{path}: 'data' must be uint8 (N, {3 * side * side}) for {side}x{side} images; "
            f"got {data.dtype} {data.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: 'labels' must be (N,) integers with N = {len(data)}; got {labels.dtype} {labels.shape}"
        )
    bad = (labels < 1) | (labels > CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: labels[{i}] = {int(labels[i])} is not a class (1..{CLASSES}); {int(bad.sum())} such label(s)"
        )
    return data.reshape(-1, 3, side, side), labels.astype(np.int64) - 1


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (float64) of uint8 images ``(N, C, H, W)`` in [0, 1], in chunks."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    square = torch.zeros(x.shape[1], dtype=torch.float64)
    for start in range(0, len(x), STAT_CHUNK):
        chunk = x[start : start + STAT_CHUNK].to(torch.float64).div_(255.0)
        total += chunk.sum((0, 2, 3)).cpu()
        square += chunk.square_().sum((0, 2, 3)).cpu()
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    return mean, (square / count - mean.square()).clamp_min(1e-16).sqrt()


def load_downsampled(cfg, device) -> DataBundle:
    side = SIDES[cfg.name]
    root = Path(cfg.root).expanduser()
    train_files, val_files = _find(root, "train_data_batch_*.npz"), _find(root, "val_data.npz")
    if not train_files or not val_files:
        raise DataError(
            f"{cfg.name} data not found under {root}: it needs train_data_batch_<k>.npz and val_data.npz "
            f"(the npz release of downsampled ImageNet, {side}x{side}; found {len(train_files)} training "
            f"batch(es), {len(val_files)} val_data.npz)"
        )
    parts = [_read(p, side) for p in train_files]
    xtr = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    ytr = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    xte, yte = (torch.from_numpy(a) for a in _read(val_files[0], side))
    unseen = sorted(set(torch.unique(yte).tolist()) - set(torch.unique(ytr).tolist()))
    if unseen:
        raise DataError(f"{cfg.name}: the validation file has classes the training batches lack: {unseen[:10]}")
    xtr, ytr, val = hold_out(cfg, xtr, ytr)
    norm = channel_norm(cfg.normalize, xtr.shape[1], 255.0, lambda: channel_stats(xtr))
    mean, std = norm.mean, norm.std
    scale = (1.0 / (255.0 * std)).float().view(-1, 1, 1).to(device)
    shift = (-mean / std).float().view(-1, 1, 1).to(device)

    def split(x, y):
        return InMemorySplit(x.to(device), y.to(device), scale, shift)

    return DataBundle(
        name=cfg.name,
        train=split(xtr, ytr),
        test=split(xte, yte),
        val=split(*val) if val is not None else None,
        in_shape=(3, side, side),
        num_classes=CLASSES,
        source=f"{cfg.name} npz batches under {root}",
        normalization=norm.record(),
        augment=Augmentation(cfg.crop_padding, cfg.flip) if cfg.augment else None,
        top_k=(1, 5),
    )
