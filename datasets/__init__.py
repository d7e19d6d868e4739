"""Data sets for bioscale: shipped digits, MNIST / CIFAR-10 (npz or torchvision), ImageNet folders,
downsampled ImageNet (npz batches). ``load_data`` picks the loader by ``data.name``."""

from .augment import Augmentation
from .in_memory import DataBundle, InMemorySplit
from .sources import read_npz


def load_data(cfg, device="cpu") -> DataBundle:
    """Load the data set ``cfg.name`` (a ``data`` config section) onto ``device``."""
    if cfg.name == "imagenet":
        from .imagenet import load_imagenet

        return load_imagenet(cfg, device)
    from .imagenet_downsampled import SIDES, load_downsampled

    if cfg.name in SIDES:
        return load_downsampled(cfg, device)
    from .loading import load_in_memory

    return load_in_memory(cfg, device)


__all__ = ["Augmentation", "DataBundle", "InMemorySplit", "load_data", "read_npz"]
