"""An example bioscale data set, found through the entry point group ``bioscale.datasets``.

``example_patterns``: 10 classes of 16 x 16 grey images. Each class is a random binary template
(drawn once from ``SEED``); an example is its class's template shifted by up to one pixel each
way, plus Gaussian pixel noise, as bytes. 2,000 training and 500 test examples, the same ones on
every machine. The arrays go through ``bioscale.datasets.from_arrays``, so ``data.validation``,
``data.limit_train``, ``data.normalize`` and ``data.augment`` apply as to the built-in data sets.
"""

from __future__ import annotations

import numpy as np
from bioscale.datasets import DataBundle, DataSet, from_arrays

SEED = 20261207
CLASSES, SIDE, TRAIN, TEST = 10, 16, 2000, 500


def make_arrays(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: uint8 images ``(N, 16, 16)`` and int64 labels."""
    rng = np.random.default_rng(seed)
    templates = rng.random((CLASSES, SIDE, SIDE)) < 0.35
    y = np.concatenate([rng.permutation(np.arange(n) % CLASSES) for n in (TRAIN, TEST)])  # balanced splits
    n = TRAIN + TEST
    shifts = rng.integers(-1, 2, (n, 2))
    x = np.stack([np.roll(templates[c], tuple(s), axis=(0, 1)) for c, s in zip(y, shifts)]) * 160.0
    x = np.clip(x + 48 + rng.normal(0, 40, x.shape), 0, 255).astype(np.uint8)
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def load(cfg, device) -> DataBundle:
    """The patterns on ``device``, prepared as the run's ``data`` section ``cfg`` says."""
    x_train, y_train, x_test, y_test = make_arrays()
    return from_arrays(
        cfg,
        x_train,
        y_train,
        x_test,
        y_test,
        device,
        max_value=255,
        num_classes=CLASSES,
        source=f"patterns, seed {SEED}",
    )


example_patterns = DataSet("10 classes of synthetic 16x16 grey patterns, fixed seed (example data set)", load)
