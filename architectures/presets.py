"""Named architectures: the paper's Table 3, the field's LeNet, SimpleVGG and ResNets, a small default.

A preset is a plain dict of model config values: ``blocks`` (spatial layers: ``lc`` locally
connected, ``conv`` or ``residual``; see architectures/build.py), ``widths`` (fully connected
hidden layers) and ``activation``. The paper's nets have no pooling, normalisation or skips
(strided layers instead, zero padding ``kernel // 2``); the field's newer nets (LeNet, VGG,
ResNets) have them. The network's input shape and class
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


def _conv(channels: int, kernel: int = 3, stride: int = 1, padding: int | None = None, **more) -> dict:
    return {"type": "conv", "channels": channels, "kernel": kernel, "stride": stride, "padding": padding, **more}


def _stage(channels: int, blocks: int, stride: int, shortcut: str) -> list[dict]:
    """``blocks`` residual basic blocks of ``channels``, the first with ``stride``."""
    first = {"type": "residual", "channels": channels, "kernel": 3, "stride": stride, "bias": False, "norm": True}
    rest = {**first, "stride": 1}
    return [{**first, "shortcut": shortcut}] + [dict(rest) for _ in range(blocks - 1)]


def _cifar_resnet(n: int) -> list[dict]:
    """He et al.'s CIFAR ResNet-(6n+2): 3x3 stem, stages of 16 / 32 / 64 channels with n blocks each,
    option A (pad) shortcuts, global average pooling (BioTorch's and akamaster's layout)."""
    blocks = [_conv(16, bias=False, norm=True)]
    for i, channels in enumerate((16, 32, 64)):
        blocks += _stage(channels, n, 1 if i == 0 else 2, "pad")
    blocks[-1]["pool"] = "global"
    return blocks


def _resnet18(small: bool) -> list[dict]:
    """ResNet-18 (He et al. 2016; torchvision's layout): 7x7 / 2 stem and 3x3 / 2 max pooling, or for
    small inputs (32x32, 64x64) a 3x3 / 1 stem and no pooling; stages of 64-512 channels, 2 blocks each,
    projection shortcuts, global average pooling."""
    stem = (
        _conv(64, bias=False, norm=True)
        if small
        else _conv(64, 7, 2, 3, bias=False, norm=True, pool="max", pool_kernel=3, pool_stride=2, pool_padding=1)
    )
    blocks = [stem]
    for i, channels in enumerate((64, 128, 256, 512)):
        blocks += _stage(channels, 2, 1 if i == 0 else 2, "projection")
    blocks[-1]["pool"] = "global"
    return blocks


# BioTorch's CIFAR-10 LeNet: three 3x3 convs without padding, max pooling after the first two,
# global average pooling after the third, FC 256, ReLU throughout
LENET = [_conv(32, padding=0, pool="max"), _conv(64, padding=0, pool="max"), _conv(128, padding=0, pool="global")]
# scalingDTP's SimpleVGG: five (3x3 conv, ELU, 2x2 max pooling) blocks
SIMPLE_VGG = [_conv(c, pool="max") for c in (128, 128, 256, 256, 512)]
# the DLL harness's CIFAR-10 CNN (Lv et al. 2025, its code's cifar10 net): 3x3 convs with padding 1 of 64 / 128 /
# 64 channels, 2x2 max / max / average pooling, FC 256, tanh throughout
DLL_CNN = [_conv(64, pool="max"), _conv(128, pool="max"), _conv(64, pool="avg", pool_kernel=2)]

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
    # the nets the field assesses rules on today (BioTorch, scalingDTP): pooling, batch norm, skips
    "lenet": {"blocks": LENET, "widths": [256], "activation": "relu"},
    "simple_vgg": {"blocks": SIMPLE_VGG, "widths": [], "activation": "elu"},
    "dll_cnn": {"blocks": DLL_CNN, "widths": [256], "activation": "tanh"},
    "resnet20": {"blocks": _cifar_resnet(3), "widths": [], "activation": "relu"},
    "resnet56": {"blocks": _cifar_resnet(9), "widths": [], "activation": "relu"},
    "resnet18": {"blocks": _resnet18(small=False), "widths": [], "activation": "relu"},
    "resnet18_small": {"blocks": _resnet18(small=True), "widths": [], "activation": "relu"},
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
    "lenet": "BioTorch's CIFAR-10 LeNet: 3 x (3x3 conv, ReLU), max / max / global average pooling, FC 256",
    "simple_vgg": "scalingDTP's SimpleVGG: 5 x (3x3 conv, ELU, 2x2 max pooling), 128-512 channels",
    "dll_cnn": "the DLL harness's CIFAR-10 CNN: 3 x (3x3 conv, tanh), max / max / average pooling, FC 256",
    "resnet20": "ResNet-20 for CIFAR (He et al. 2016): 3 stages x 3 basic blocks, option A shortcuts",
    "resnet56": "ResNet-56 for CIFAR (He et al. 2016): 3 stages x 9 basic blocks, option A shortcuts",
    "resnet18": "ResNet-18 (He et al. 2016, torchvision's layout): 7x7 stem, max pooling, projections",
    "resnet18_small": "ResNet-18 for 32x32 / 64x64 input: 3x3 stem, no max pooling",
}
