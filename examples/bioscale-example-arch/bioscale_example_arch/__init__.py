"""Two example bioscale architectures, found through the entry point group ``bioscale.architectures``.

- ``example_mlp`` is given as ``model`` config values: bioscale merges them into the run's config
  (``bioscale config model=example_mlp`` shows them; ``model.widths=[...]`` still overrides them)
  and builds the network itself.
- ``example_convnet`` builds its network: ``build(in_shape, num_classes, generator)`` returns a
  bioscale ``Network`` for the data's input shape ``(C, H, W)`` and class count, its initial weights
  drawn from ``generator`` (the run's seeded model generator), so runs stay reproducible.
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
