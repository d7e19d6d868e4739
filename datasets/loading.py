"""The shipped digits, MNIST and CIFAR-10 as float32 tensors on the device.

``load_in_memory(cfg, device)`` reads the raw arrays (see ``sources.py``) and hands them to
:func:`~bioscale.datasets.arrays.from_arrays` (label check, validation hold-out, normalisation,
augmentation), the path third-party array data sets take too.
"""

from __future__ import annotations

from bioscale.config.schema import plain_value

from .arrays import from_arrays
from .errors import DataError
from .in_memory import DataBundle
from .sources import load_digits, load_standard

CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10}


def _raw_arrays(cfg):
    if cfg.name == "digits":
        return load_digits()
    if cfg.name in ("mnist", "cifar10"):
        return load_standard(cfg.name, cfg.root, plain_value(cfg.source), cfg.download)
    raise DataError(f"{cfg.name!r} is not an in-memory data set of bioscale's; these are {', '.join(CLASSES)}")


def load_in_memory(cfg, device) -> DataBundle:
    """Data set ``cfg.name`` (digits, mnist or cifar10) prepared as ``cfg`` says, on ``device``."""
    x_train, y_train, x_test, y_test, max_value = _raw_arrays(cfg)
    source = cfg.name if cfg.name == "digits" else f"{cfg.name} from {cfg.root}"
    return from_arrays(
        cfg, x_train, y_train, x_test, y_test, device, max_value=max_value, num_classes=CLASSES[cfg.name], source=source
    )
