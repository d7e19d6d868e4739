"""ImageNet-style folders: ``<root>/train/<class>/*.jpg`` and ``<root>/val/<class>/*.jpg``.

Images are decoded by ``data.workers`` processes (torchvision ``ImageFolder`` + a
``DataLoader``), resized so the shorter side is ``data.resize`` and cropped to
``data.image_size`` (random crop and horizontal flip for training when ``data.augment``,
centre crop otherwise), normalised with the usual ImageNet channel statistics
(``standardize``) or scaled to [0, 1]. The shuffle order and the workers' random crops
derive from the trainer's data generator, so a resumed run sees the same batches.
Errors report top-1 and top-5.
"""

from __future__ import annotations

from pathlib import Path

import torch
from bioscale.config.schema import plain_value

from .errors import DataError
from .in_memory import DataBundle
from .normalize import ChannelNorm, channel_norm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _published_statistics() -> tuple[torch.Tensor, torch.Tensor]:
    """The usual ImageNet channel mean and std (of x / 255), used for ``standardize``."""
    return torch.tensor(IMAGENET_MEAN, dtype=torch.float64), torch.tensor(IMAGENET_STD, dtype=torch.float64)


class FolderSplit:
    """One split of an image folder, batched by a DataLoader with worker processes."""

    def __init__(self, dataset, device, workers: int, train: bool):
        self.dataset = dataset
        self.device = torch.device(device)
        self.workers = workers
        self.train = train

    def __len__(self) -> int:
        return len(self.dataset)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def shard(self, rank: int, world_size: int) -> FolderSplit:
        """Rank ``rank``'s contiguous share of the split (evaluation across data-parallel ranks)."""
        from torch.utils.data import Subset

        n = len(self)
        part = range(rank * n // world_size, (rank + 1) * n // world_size)
        return FolderSplit(Subset(self.dataset, part), self.device, self.workers, self.train)

    def batches(self, batch_size: int, generator: torch.Generator | None = None, augment=None, rows=None):
        """``(x (B, 3, S, S) float32, y (B,) int64)`` on the device; shuffled when ``generator`` is given.
        ``rows(n) -> slice``: this rank's rows of each ``n``-row global batch (data parallelism)."""
        from torch.utils.data import DataLoader

        n = len(self)
        order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
        loader_gen = None
        if generator is not None:
            loader_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        index_batches = [order[start : start + batch_size] for start in range(0, n, batch_size)]
        if rows is not None:
            index_batches = [b[rows(len(b))] for b in index_batches]
        loader = DataLoader(
            self.dataset,
            batch_sampler=index_batches,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            generator=loader_gen,
            persistent_workers=False,
        )
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _listed(folder: Path):
    from torchvision import datasets

    try:
        return datasets.ImageFolder(str(folder))  # lists (path, class) pairs; decodes nothing
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"ImageNet folder {folder} is unusable: {exc}") from exc


def _device_decoded(cfg, device, root: Path, dirs: dict, norm: ChannelNorm) -> DataBundle:
    """The ``data.decode=device`` path: ``datasets/imagenet_device.py``."""
    from .imagenet_device import DeviceDecodeSplit

    train, val = _listed(dirs["train"]), _listed(dirs["val"])
    if train.classes != val.classes:
        raise DataError(f"{dirs['train']} and {dirs['val']} have different class folders")
    size = cfg.image_size
    common = dict(device=device, workers=cfg.workers, side=size, resize=cfg.resize, flip=cfg.flip, norm=norm)
    return DataBundle(
        name="imagenet",
        train=DeviceDecodeSplit(train.samples, train=True, augment=cfg.augment, **common),
        test=DeviceDecodeSplit(val.samples, train=False, augment=False, **common),
        val=None,
        in_shape=(3, size, size),
        num_classes=len(train.classes),
        source=f"image folders under {root}, decoded on {torch.device(device).type}",
        normalization=norm.record(),
        augment=None,
        top_k=(1, 5),
    )


def load_imagenet(cfg, device) -> DataBundle:
    try:
        from torchvision import datasets, transforms
    except ImportError as exc:
        raise DataError(f"ImageNet folders need torchvision ({exc}); pip install torchvision") from exc
    root = Path(cfg.root).expanduser()
    dirs = {split: root / split for split in ("train", "val")}
    missing = [str(d) for d in dirs.values() if not d.is_dir()]
    if missing:
        raise DataError(
            f"ImageNet data not found: missing {', '.join(missing)}. data.root must hold train/ and val/ with one "
            f"folder of images per class (the standard ImageNet layout; val/ sorted into class folders)"
        )
    if cfg.validation > 0 or cfg.limit_train > 0:
        raise DataError(
            "data.validation and data.limit_train are not supported for ImageNet folders; use a smaller folder"
        )
    norm = channel_norm(cfg.normalize, 3, 255.0, _published_statistics)
    if plain_value(cfg.decode) == "device":
        return _device_decoded(cfg, device, root, dirs, norm)
    # ToTensor gives x / 255; then (x / 255 - mean) / std per channel
    steps_common = [transforms.ToTensor(), transforms.Normalize(norm.mean.tolist(), norm.std.tolist())]
    size = cfg.image_size
    resize = max(cfg.resize, size)
    if cfg.augment:
        train_tf = [transforms.Resize(resize), transforms.RandomCrop(size)] + (
            [transforms.RandomHorizontalFlip()] if cfg.flip else []
        )
    else:
        train_tf = [transforms.Resize(resize), transforms.CenterCrop(size)]
    val_tf = [transforms.Resize(resize), transforms.CenterCrop(size)]
    try:
        train = datasets.ImageFolder(str(dirs["train"]), transforms.Compose(train_tf + steps_common))
        val = datasets.ImageFolder(str(dirs["val"]), transforms.Compose(val_tf + steps_common))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"ImageNet folders under {root} are unusable: {exc}") from exc
    if train.classes != val.classes:
        raise DataError(f"{dirs['train']} and {dirs['val']} have different class folders")
    return DataBundle(
        name="imagenet",
        train=FolderSplit(train, device, cfg.workers, train=True),
        test=FolderSplit(val, device, cfg.workers, train=False),
        val=None,
        in_shape=(3, size, size),
        num_classes=len(train.classes),
        source=f"image folders under {root}",
        normalization=norm.record(),
        augment=None,
        top_k=(1, 5),
    )
