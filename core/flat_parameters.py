"""Put a list of parameters into one flat storage, keeping each parameter as a view of it.

``flatten_parameters(params)`` returns one 1-D ``nn.Parameter`` holding every value of
``params`` (in order); each parameter's ``.data`` becomes a view of it, and each ``.grad`` a
view of its ``.grad`` (zeros). Modules, state dicts and optimisers keep seeing the same
parameter objects with the same values. Uses: one Adam tensor instead of one per layer (TP
inverses), and equal-shaped layers whose weights sit at equally spaced offsets, so a
batched call can read them as one strided ``(G, ...)`` view with no copy
(``rulekit.inverse_kernels.stacked_view``). Call it after the parameters reach their device:
``Module.to`` to another device gives each parameter its own storage again (then stacked
reads fall back to copies). No autograd.
"""

from __future__ import annotations

import torch
from torch import nn


def can_flatten(params: list) -> bool:
    """Whether ``params`` is non-empty and all on one device with one dtype."""
    return bool(params) and len({(p.device, p.dtype) for p in params}) == 1


def flatten_parameters(params: list) -> nn.Parameter:
    """One flat parameter over ``params`` (see the module docstring); ``ValueError`` unless
    :func:`can_flatten`."""
    if not can_flatten(params):
        raise ValueError("flatten_parameters needs a non-empty list of parameters on one device with one dtype")
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat.data[offset : offset + n].view_as(p)
        p.grad = flat.grad[offset : offset + n].view_as(p)
        offset += n
    return flat
