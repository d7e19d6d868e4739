"""Data sets for bioscale: shipped digits, MNIST / CIFAR-10 (npz or torchvision), ImageNet folders,
downsampled ImageNet (npz batches), each an entry point of the group ``bioscale.datasets``
(``catalog.py``) as third-party data sets are (``dataset.py``: what such an entry point names;
``arrays.py``: ``from_arrays`` for data held as arrays). ``load_data`` loads ``data.name``."""

from .arrays import from_arrays
from .augment import Augmentation
from .dataset import DataSet
from .in_memory import DataBundle, InMemorySplit
from .sources import read_npz


def load_data(cfg, device="cpu") -> DataBundle:
    """Load the installed data set ``cfg.name`` (a ``data`` config section) onto ``device``."""
    from bioscale.named_plugins import load_dataset

    return load_dataset(cfg, device)


__all__ = ["Augmentation", "DataBundle", "DataSet", "InMemorySplit", "from_arrays", "load_data", "read_npz"]
