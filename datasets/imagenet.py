"""ImageNet-style folders: ``<root>/train/<class>/*.jpg`` and ``<root>/val/<class>/*.jpg``.

Images are decoded by ``data.workers`` processes (torchvision ``ImageFolder`` + a
``DataLoader``), resized so the shorter side is ``data.resize`` and cropped to
``data.image_size`` (random crop and horizontal flip for training when ``data.augment``,
centre crop otherwise), normalised with the usual ImageNet channel statistics
(``standardize``) or scaled to [0, 1]. The shuffle order and the random crops and flips derive
from the trainer's data generator, drawn for each whole global batch (the workers only apply
them), so a resumed run sees the same batches and data-parallel ranks one process's crops.
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


class PlannedCrops:
    """Training images of an ``ImageFolder`` (listed, no transform) resized so the shorter side is
    ``resize``, cropped to ``side x side`` where each item says, flipped if it says so, then
    ``finish`` (to a normalised ``(3, side, side)`` float32 tensor). An item is ``(index, (top,
    left), flip)`` with ``top``, ``left`` in [0, 1): where the crop lies in its free range, as
    ``RandomCrop`` would draw it (``imagenet_device.crop_boxes`` reads offsets alike), or a bare
    index for the centre crop. Runs in the DataLoader's worker processes, drawing nothing."""

    def __init__(self, folder, resize: int, side: int, finish):
        self.folder, self.resize, self.side, self.finish = folder, resize, side, finish

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, item):
        from torchvision.transforms import functional as TF

        index, offsets, flip = item if isinstance(item, tuple) else (item, None, False)
        path, label = self.folder.samples[index]
        image = TF.resize(self.folder.loader(path), self.resize)
        free_w, free_h = image.size[0] - self.side, image.size[1] - self.side
        if offsets is None:
            top, left = round(free_h / 2), round(free_w / 2)
        else:
            top, left = min(int((free_h + 1) * offsets[0]), free_h), min(int((free_w + 1) * offsets[1]), free_w)
        image = TF.crop(image, top, left, self.side, self.side)
        return self.finish(TF.hflip(image) if flip else image), label


class FolderSplit:
    """One split of an image folder, batched by a DataLoader with worker processes. With ``crops``
    (training with augmentation) the crops and flips are drawn for each whole global batch here and
    handed to the workers with the indices, so data-parallel ranks keep their rows of one draw."""

    def __init__(self, dataset, device, workers: int, train: bool, flip: bool | None = None):
        self.dataset = dataset
        self.device = torch.device(device)
        self.workers = workers
        self.train = train
        self.flip = flip  # None: no random crops (the dataset's transform is fixed)

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

    def _plan(self, order: list, batch_size: int, generator: torch.Generator | None) -> list:
        """The global batches' items: indices, with each row's crop offsets and flip when cropping
        at random (drawn for the whole batch from a generator the data generator seeds)."""
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        if generator is None:
            return batches
        crop_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        if self.flip is None:
            return batches
        planned = []
        for b in batches:
            offsets = torch.rand(len(b), 2, generator=crop_gen).tolist()
            flips = (torch.rand(len(b), generator=crop_gen) < 0.5).tolist() if self.flip else [False] * len(b)
            planned.append([(i, tuple(o), f) for i, o, f in zip(b, offsets, flips)])
        return planned

    def batches(self, batch_size: int, generator: torch.Generator | None = None, augment=None, rows=None):
        """``(x (B, 3, S, S) float32, y (B,) int64)`` on the device; shuffled when ``generator`` is given.
        ``rows(n) -> slice``: this rank's rows of each ``n``-row global batch (data parallelism)."""
        from torch.utils.data import DataLoader

        n = len(self)
        order = torch.randperm(n, generator=generator).tolist() if generator is not None else list(range(n))
        index_batches = self._plan(order, batch_size, generator)
        if rows is not None:
            index_batches = [b[rows(len(b))] for b in index_batches]
        loader = DataLoader(
            self.dataset,
            batch_sampler=index_batches,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
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
    val_tf = [transforms.Resize(resize), transforms.CenterCrop(size)]
    try:
        train = datasets.ImageFolder(str(dirs["train"]), transforms.Compose(val_tf + steps_common))
        val = datasets.ImageFolder(str(dirs["val"]), transforms.Compose(val_tf + steps_common))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"ImageNet folders under {root} are unusable: {exc}") from exc
    if train.classes != val.classes:
        raise DataError(f"{dirs['train']} and {dirs['val']} have different class folders")
    train_split = FolderSplit(train, device, cfg.workers, train=True)
    if cfg.augment:  # random crops and flips, drawn per global batch (FolderSplit._plan)
        train.transform = None
        crops = PlannedCrops(train, resize, size, transforms.Compose(steps_common))
        train_split = FolderSplit(crops, device, cfg.workers, train=True, flip=bool(cfg.flip))
    return DataBundle(
        name="imagenet",
        train=train_split,
        test=FolderSplit(val, device, cfg.workers, train=False),
        val=None,
        in_shape=(3, size, size),
        num_classes=len(train.classes),
        source=f"image folders under {root}",
        normalization=norm.record(),
        augment=None,
        top_k=(1, 5),
    )
