"""Named architectures from the paper's Table 3 (and a small default).

A preset is a plain dict of model config values: ``blocks`` (spatial layers: ``lc`` locally
connected or ``conv``, zero padding ``kernel // 2`` so stride 1 keeps the size; no pooling
anywhere, strided layers instead, no final spatial averaging), ``widths`` (fully
connected hidden layers) and ``activation``. The network's input shape and class
count come from the data set, so a preset runs on any data of the right rank.
"""

from __future__ import annotations


def _blocks(kind: str, specs: list[tuple]) -> list[dict]:
    """``(kernel, channels, stride)`` triples as block dicts of type ``kind``."""
    return [{"type": kind, "kernel": k, "channels": c, "stride": s} for k, c, s in specs]


MNIST_LC = [(3, 32, 2), (3, 64, 2)]
CIFAR_LC = [(5, 64, 2), (5, 128, 2), (3, 256, 1)]  # the third stride is not printed; 1 is the likely reading
IMAGENET_LC = [(9, 48, 4), (3, 48, 2), (5, 96, 1), (3, 96, 2), (3, 192, 1), (3, 192, 2), (3, 384, 1)]
# the same net for downsampled ImageNet: the first layer scaled to the smaller input (224 / 32 = 7),
# the rest unchanged, so 32 x 32 and 64 x 64 images end at 4 x 4 (224 x 224 at 7 x 7)
IMAGENET32_LC = [(3, 48, 1)] + IMAGENET_LC[1:]
IMAGENET64_LC = [(5, 48, 2)] + IMAGENET_LC[1:]

PRESETS: dict[str, dict] = {
    # default for the embedded 8x8 digits: small enough for a quick comparison of every rule
    "digits_fc": {"blocks": [], "widths": [256, 256, 256], "activation": "tanh"},
    "mnist_fc": {"blocks": [], "widths": [256] * 5, "activation": "tanh"},
    "cifar_fc": {"blocks": [], "widths": [1024] * 3, "activation": "tanh"},
    "mnist_lc": {"blocks": _blocks("lc", MNIST_LC), "widths": [1024], "activation": "tanh"},
    "cifar_lc": {"blocks": _blocks("lc", CIFAR_LC), "widths": [1024], "activation": "tanh"},
    "imagenet_lc": {"blocks": _blocks("lc", IMAGENET_LC), "widths": [], "activation": "tanh"},
    # the "BP convnet" twins: the same nets with shared weights (ordinary convolutions)
    "mnist_conv": {"blocks": _blocks("conv", MNIST_LC), "widths": [1024], "activation": "tanh"},
    "cifar_conv": {"blocks": _blocks("conv", CIFAR_LC), "widths": [1024], "activation": "tanh"},
    "imagenet_conv": {"blocks": _blocks("conv", IMAGENET_LC), "widths": [], "activation": "tanh"},
    "imagenet32_lc": {"blocks": _blocks("lc", IMAGENET32_LC), "widths": [], "activation": "tanh"},
    "imagenet32_conv": {"blocks": _blocks("conv", IMAGENET32_LC), "widths": [], "activation": "tanh"},
    "imagenet64_lc": {"blocks": _blocks("lc", IMAGENET64_LC), "widths": [], "activation": "tanh"},
    "imagenet64_conv": {"blocks": _blocks("conv", IMAGENET64_LC), "widths": [], "activation": "tanh"},
}

DESCRIPTIONS = {
    "digits_fc": "3 x FC 256, tanh (quick default)",
    "mnist_fc": "5 x FC 256, tanh (paper Table 3)",
    "cifar_fc": "3 x FC 1024, tanh (paper Table 3)",
    "mnist_lc": "LC (3x3,32,2) -> LC (3x3,64,2) -> FC 1024 (paper Table 3)",
    "cifar_lc": "LC (5x5,64,2) -> LC (5x5,128,2) -> LC (3x3,256,1) -> FC 1024 (paper Table 3)",
    "imagenet_lc": "7 LC layers after Springenberg et al.'s all-conv net, fewer channels (paper Table 3)",
    "mnist_conv": "mnist_lc with shared weights (BP convnet)",
    "cifar_conv": "cifar_lc with shared weights (BP convnet)",
    "imagenet_conv": "imagenet_lc with shared weights (BP convnet)",
    "imagenet32_lc": "imagenet_lc for 32x32 downsampled ImageNet (first layer 3x3, stride 1)",
    "imagenet32_conv": "imagenet32_lc with shared weights",
    "imagenet64_lc": "imagenet_lc for 64x64 downsampled ImageNet (first layer 5x5, stride 2)",
    "imagenet64_conv": "imagenet64_lc with shared weights",
}
