"""Two example bioscale architectures, found through the entry point group ``bioscale.architectures``.

- ``example_mlp`` is given as ``model`` config values: bioscale merges them into the run's config
  (``bioscale config model=example_mlp`` shows them; ``model.widths=[...]`` still overrides them)
  and builds the network itself.
- ``example_convnet`` builds its network: ``build(in_shape, num_classes, generator)`` returns a
  bioscale ``Network`` for the data's input shape ``(C, H, W)`` and class count, its initial weights
  drawn from ``generator`` (the run's seeded model generator), so runs stay reproducible.
- ``example_torch_resnet`` builds a plain ``torch.nn.Module`` (a small ResNet with batch norm and a
  residual block, written as any PyTorch user writes one); bioscale converts it into layers that
  rules train (``bioscale.architectures.convert`` lists the forms it accepts).
"""

from __future__ import annotations

import torch
from bioscale.architectures import Architecture, Network, build_network

example_mlp = Architecture(
    "two tanh layers of 64 and 32 units (example config architecture)",
    config={"blocks": [], "widths": [64, 32], "activation": "tanh"},
)


def build_convnet(in_shape: tuple, num_classes: int, generator: torch.Generator) -> Network:
    """A strided 3x3 convolution with 8 channels, then 32 tanh units, then the linear output."""
    conv = {"type": "conv", "channels": 8, "kernel": 3, "stride": 2}
    return build_network(
        in_shape,
        num_classes,
        blocks=[conv],
        widths=[32],
        activation="tanh",
        generator=generator,
        name="example_convnet",
    )


example_convnet = Architecture(
    "conv 3x3 (8 channels, stride 2) -> FC 32, tanh (example build architecture)", build=build_convnet
)


class TinyResNet(torch.nn.Module):
    """conv 3x3 (8) + batch norm + ReLU, one residual block of two such convolutions, global average
    pooling, a linear output: a plain PyTorch module."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU()
        )
        self.conv1, self.norm1 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8)
        self.conv2, self.norm2 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8)
        self.pool, self.fc = torch.nn.AdaptiveAvgPool2d(1), torch.nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.stem(x)
        out = self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x)))))
        return self.fc(torch.flatten(self.pool(torch.relu(out + x)), 1))


def build_torch_resnet(in_shape: tuple, num_classes: int, generator: torch.Generator) -> torch.nn.Module:
    """A :class:`TinyResNet` for ``(C, H, W)`` input, its weights drawn from ``generator``."""
    net = TinyResNet(in_shape[0], num_classes)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.copy_(torch.nn.init.xavier_uniform_(torch.empty_like(p), generator=generator))
    return net


example_torch_resnet = Architecture(
    "a plain torch module: conv-BN-ReLU stem, one residual block, global average pooling (converted)",
    build=build_torch_resnet,
)
