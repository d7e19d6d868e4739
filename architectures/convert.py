"""Plain ``torch.nn.Module`` networks as bioscale :class:`~bioscale.architectures.Network` s.

:func:`from_module` is called for a ``build`` architecture whose result is not already a
``Network``. No conversion exists yet: it refuses every module.
"""

from __future__ import annotations

import torch

from .network import Network


def from_module(module: torch.nn.Module, in_shape: tuple, num_classes: int) -> Network:
    """``module`` (taking ``(N, *in_shape)``, giving ``(N, num_classes)`` logits) as a ``Network``."""
    raise ValueError("plain torch modules are not converted yet")
