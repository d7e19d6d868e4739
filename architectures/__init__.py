"""Networks for bioscale: affine ops with transposes, local-graph layer stacks, presets, and the
``Architecture`` that entry points of the group ``bioscale.architectures`` name (``architecture.py``)."""

from .activations import ACTIVATIONS, Activation, make_activation
from .architecture import Architecture
from .build import build_network
from .locally_connected import LocallyConnected2d
from .network import Layer, Network
from .ops import AffineOp, Conv2dOp, LinearOp
from .post import BatchNorm, Pool, Shortcut
from .presets import PRESETS

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "AffineOp",
    "Architecture",
    "BatchNorm",
    "Conv2dOp",
    "Layer",
    "LocallyConnected2d",
    "LinearOp",
    "Network",
    "PRESETS",
    "Pool",
    "Shortcut",
    "build_network",
    "make_activation",
]
