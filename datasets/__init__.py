"""Data sets for bioscale: shipped digits, MNIST / CIFAR-10 (npz or torchvision), ImageNet folders."""

from .augment import Augmentation
from .in_memory import DataBundle, InMemorySplit
from .loading import load_data
from .sources import read_npz

__all__ = ["Augmentation", "DataBundle", "InMemorySplit", "load_data", "read_npz"]
