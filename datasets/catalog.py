"""The built-in data sets as entry point objects, declared in the root ``pyproject.toml`` under
``bioscale.datasets`` (``NAME = "bioscale.datasets.catalog:NAME"``) as a third party's would be.
Each loader is imported when the data set is loaded, not when it is listed."""

from __future__ import annotations

from .dataset import DataSet


def _in_memory(cfg, device):
    from .loading import load_in_memory

    return load_in_memory(cfg, device)


def _imagenet(cfg, device):
    from .imagenet import load_imagenet

    return load_imagenet(cfg, device)


def _downsampled(cfg, device):
    from .imagenet_downsampled import load_downsampled

    return load_downsampled(cfg, device)


digits = DataSet("UCI 8x8 handwritten digits, 10 classes (shipped with bioscale)", _in_memory)
mnist = DataSet("MNIST 28x28 digits, 10 classes (data.root: mnist.npz or torchvision's files)", _in_memory)
cifar10 = DataSet("CIFAR-10 32x32 colour images, 10 classes (data.root: cifar10.npz or torchvision's)", _in_memory)
imagenet = DataSet("ImageNet (ILSVRC-2012) from train/ and val/ class folders under data.root, 1000 classes", _imagenet)
imagenet32 = DataSet("downsampled ImageNet 32x32 (npz batches under data.root), 1000 classes", _downsampled)
imagenet64 = DataSet("downsampled ImageNet 64x64 (npz batches under data.root), 1000 classes", _downsampled)
