"""Named architectures from the paper's Table 3 (and a small default).

A preset is a plain dict of model config values: ``blocks`` (spatial layers), ``widths``
(fully connected hidden layers) and ``activation``. The network's input shape and class
count come from the data set, so a preset runs on any data of the right rank.
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    # default for the embedded 8x8 digits: small enough for a quick comparison of every rule
    "digits_fc": {"blocks": [], "widths": [256, 256, 256], "activation": "tanh"},
    "mnist_fc": {"blocks": [], "widths": [256] * 5, "activation": "tanh"},
    "cifar_fc": {"blocks": [], "widths": [1024] * 3, "activation": "tanh"},
}

DESCRIPTIONS = {
    "digits_fc": "3 x FC 256, tanh (quick default)",
    "mnist_fc": "5 x FC 256, tanh (paper Table 3)",
    "cifar_fc": "3 x FC 1024, tanh (paper Table 3)",
}
