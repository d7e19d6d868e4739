"""What an entry point of the group ``bioscale.architectures`` names, and how its network is built.

An architecture is any object with ``description`` (one line for ``bioscale models``) and either

- ``config``: a dict of ``model`` config values (``blocks``, ``widths``, ``activation``, ...),
  merged into the run's config as a preset and built by :func:`~bioscale.architectures.build_network`;
- ``build(in_shape, num_classes, generator) -> torch.nn.Module``: the plugin builds the network
  itself, drawing its initial weights from ``generator`` (the run's seeded model generator, on the
  CPU). A :class:`~bioscale.architectures.Network` is used as it is; any other module goes to
  :func:`bioscale.architectures.convert.from_module`.

:class:`Architecture` is such an object; plugins may use it or any object of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .network import Network

Builder = Callable[[tuple, int, torch.Generator], torch.nn.Module]


@dataclass(frozen=True)
class Architecture:
    """A named network for ``model=NAME``: ``config`` (model config values) or ``build`` (a function)."""

    description: str
    config: dict | None = None
    build: Builder | None = None

    def __post_init__(self) -> None:
        if (self.config is None) == (self.build is None):
            raise ValueError("an Architecture has either config (model config values) or build (a function), not both")


def contract_error(obj) -> str | None:
    """Why ``obj`` is not an architecture (None: it is one)."""
    if not isinstance(getattr(obj, "description", None), str):
        return "it has no description (a str)"
    config, build = getattr(obj, "config", None), getattr(obj, "build", None)
    if (config is None) == (build is None):
        return "it needs exactly one of config (a dict of model config values) and build (a function)"
    if config is not None and not isinstance(config, dict):
        return f"its config is a {type(config).__name__}, not a dict of model config values"
    if build is not None and not callable(build):
        return "its build is not callable"
    return None


def kind_of(obj) -> str:
    """``"build"`` for an architecture that builds its network, ``"config"`` for one given as config values."""
    return "build" if getattr(obj, "build", None) is not None else "config"


def build_from_plugin(obj, in_shape: tuple, num_classes: int, generator: torch.Generator) -> Network:
    """The network ``obj.build`` makes for this data, as a :class:`Network`; a ``ValueError`` if it
    returns no module or one that cannot be converted."""
    module = obj.build(tuple(in_shape), int(num_classes), generator)
    if isinstance(module, Network):
        return module
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"build returned a {type(module).__name__}, not a torch.nn.Module")
    from .convert import from_module

    return from_module(module, tuple(in_shape), int(num_classes))
