"""Data presets selectable with ``data=<name>`` (model presets live in bioscale.architectures)."""

DATA_PRESETS: dict[str, dict] = {
    "digits": {"name": "digits"},
    "mnist": {"name": "mnist"},
    "cifar10": {"name": "cifar10"},
    "imagenet": {"name": "imagenet"},
    "imagenet32": {"name": "imagenet32"},  # downsampled ImageNet, npz batches (datasets/imagenet_downsampled.py)
    "imagenet64": {"name": "imagenet64"},
}
