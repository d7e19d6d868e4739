"""Per-channel normalisation, chosen once for every data set (``data.normalize``).

Every loader turns pixels ``x`` (0..``max_value``) into ``(x / max_value - mean_c) / std_c``;
this module says what ``mean`` and ``std`` are for each choice:

- ``standardize``: the training split's channel statistics (or, for ImageNet folders, the usual
  published ones) from the loader's ``statistics`` callable;
- ``scale``: mean 0, std 1, i.e. pixels in [0, 1];
- ``none``: mean 0, std ``1 / max_value``, i.e. the raw pixel values as floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from bioscale.config.schema import plain_value

from .errors import DataError

KINDS = ("standardize", "scale", "none")


@dataclass(frozen=True)
class ChannelNorm:
    """``kind``, ``max_value`` and the float64 ``(C,)`` ``mean`` / ``std`` in units of ``x / max_value``."""

    kind: str
    max_value: float
    mean: torch.Tensor
    std: torch.Tensor

    def record(self) -> dict:
        """What a run records (``run_info.data.normalization``)."""
        return {
            "kind": self.kind,
            "max_value": self.max_value,
            "mean": [round(float(m), 6) for m in self.mean],
            "std": [round(float(s), 6) for s in self.std],
        }


def channel_norm(
    kind, channels: int, max_value: float, statistics: Callable[[], tuple[torch.Tensor, torch.Tensor]]
) -> ChannelNorm:
    """The normalisation ``kind`` (a name or the config's enum member) of ``channels`` channels.

    :param statistics: returns ``(mean, std)``, float64 ``(C,)``, in units of ``x / max_value``;
        called only for ``standardize`` (it may read the whole training split).
    """
    kind = plain_value(kind)
    if kind not in KINDS:
        raise DataError(f"data.normalize={kind!r}; valid: {', '.join(KINDS)}")
    zeros = torch.zeros(channels, dtype=torch.float64)
    if kind == "standardize":
        mean, std = statistics()
    elif kind == "scale":
        mean, std = zeros, torch.ones(channels, dtype=torch.float64)
    else:
        mean, std = zeros, torch.full((channels,), 1.0 / max_value, dtype=torch.float64)
    return ChannelNorm(kind, float(max_value), mean, std)
