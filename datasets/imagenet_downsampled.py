"""Downsampled ImageNet (Chrabaszcz et al. 2017): ``data=imagenet32`` / ``data=imagenet64``.

``data.root`` holds the npz batches of the official release, ``train_data_batch_1.npz`` ..
``train_data_batch_10.npz`` and ``val_data.npz`` (directly or in one subfolder each, as the
archives unpack). Each file has ``data`` ``(N, 3·S·S)`` uint8, a row being the R, G and B planes
of an ``S × S`` image in turn, and ``labels`` ``(N,)`` in ``1..1000``. The first load converts
them once into memory-mapped ``.npy`` arrays (``npy_cache.py``); the pixels stay uint8
(ImageNet32's 1.28 M training images: 3.9 GB; ImageNet64: 15.7 GB). On the CPU every split is an
index view of the mapped array, so the processes of one machine (torchrun's ranks) share one
copy in the page cache; on another device each split's rows are copied there in chunks. Each
batch is normalised as it is taken; the validation file is the test split. Top-1 and top-5 errors.
"""

from __future__ import annotations

import re
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .augment import Augmentation
from .errors import DataError
from .in_memory import DataBundle, InMemorySplit
from .normalize import channel_norm
from .npy_cache import CLASSES, cached_arrays
from .splits import held_out_rows

SIDES = {"imagenet32": 32, "imagenet64": 64}
STAT_BYTES = 1 << 23  # pixels read at a time when computing the channel statistics


def _find(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` in ``root`` or in its immediate subfolders."""
    found = sorted(root.glob(pattern)) or sorted(root.glob(f"*/{pattern}"))
    return sorted(found, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])


def mapped(array: np.ndarray) -> torch.Tensor:
    """A read-only memory-mapped array as a tensor over the same pages (no copy; never written)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(array)


def channel_stats(x: torch.Tensor, index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std (float64 ``(C,)``, pixels in [0, 1]) of the uint8 images
    ``x[index]`` (``x`` ``(N, C, H, W)``; all rows if ``index`` is None). Exact: per-channel counts of
    each byte value, read ``STAT_BYTES`` at a time, so no float copy of the data is made."""
    rows, (channels, h, w) = (len(x) if index is None else len(index)), x.shape[1:]
    counts = torch.zeros(channels, 256, dtype=torch.int64)
    step = max(1, STAT_BYTES // x[:1].numel())
    for start in range(0, rows, step):  # chunks of rows, not single samples
        part = slice(start, start + step)
        chunk = x[part] if index is None else x.index_select(0, index[part])
        for c in range(channels):
            counts[c] += torch.bincount(chunk[:, c].reshape(-1), minlength=256)
    values = torch.arange(256, dtype=torch.int64)
    n = rows * h * w
    sums, squares = (counts * values).sum(1).tolist(), (counts * values.square()).sum(1).tolist()
    mean = [float(Fraction(s, n * 255)) for s in sums]
    var = [float(Fraction(n * q - s * s, (n * 255) ** 2)) for s, q in zip(sums, squares)]
    return torch.tensor(mean, dtype=torch.float64), torch.tensor(var, dtype=torch.float64).clamp_min(1e-16).sqrt()


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
    folder, arrays = cached_arrays(root, cfg.name, side, train_files, val_files[:1])
    x, y = mapped(arrays["train_x"]), torch.from_numpy(np.array(arrays["train_y"]))  # labels: a small copy
    xte, yte = mapped(arrays["val_x"]), torch.from_numpy(np.array(arrays["val_y"]))
    unseen = sorted(set(torch.unique(yte).tolist()) - set(torch.unique(y).tolist()))
    if unseen:
        raise DataError(f"{cfg.name}: the validation file has classes the training batches lack: {unseen[:10]}")
    train_rows, val_rows = held_out_rows(cfg, len(y))
    norm = channel_norm(cfg.normalize, x.shape[1], 255.0, lambda: channel_stats(x, train_rows))
    scale = (1.0 / (255.0 * norm.std)).float().view(-1, 1, 1)
    shift = (-norm.mean / norm.std).float().view(-1, 1, 1)

    def split(images, labels, rows):  # an index view of the mapped pixels, moved (copied) off the CPU
        return InMemorySplit(images, labels if rows is None else labels[rows], scale, shift, rows).to(device)

    return DataBundle(
        name=cfg.name,
        train=split(x, y, train_rows),
        test=split(xte, yte, None),
        val=split(x, y, val_rows) if val_rows is not None else None,
        in_shape=(3, side, side),
        num_classes=CLASSES,
        source=f"{cfg.name} npz batches under {root} (mapped from {folder})",
        normalization=norm.record(),
        augment=Augmentation(cfg.crop_padding, cfg.flip) if cfg.augment else None,
        top_k=(1, 5),
    )
