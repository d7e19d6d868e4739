"""The network of a run, built from its config: a ``build`` architecture plugin's, or the ``model``
section's blocks and widths (the trainer's, and ``bioscale.load_run(...).model``'s)."""

from __future__ import annotations

import torch
from bioscale.architectures import build_network

from .config.schema import config_dict, plain_value
from .config.structures import check_supported
from .errors import ConfigError
from .named_plugins import plugin_network


def block_dict(block) -> dict:
    """A ``model.blocks`` entry (a DictConfig or a dict) as plain values, enums as their names."""
    return config_dict(block, enum_to_str=True) if not isinstance(block, dict) else dict(block)


def build_run_model(cfg, in_shape: tuple, num_classes: int, generator: torch.Generator, rules=None):
    """The run's network on the CPU, its weights drawn from ``generator``. ``rules``: ``[(name, class)]``
    whose supported structures a ``build`` net is checked against (None: not checked). An unknown
    activation or init, or a layer that does not fit its input: a ConfigError naming the model."""
    try:
        built = plugin_network(cfg.model.preset, in_shape, num_classes, generator)
        if built is not None:  # an architecture plugin with build: model.blocks / widths are not used
            if rules is not None:  # its structures are known only now: checked before any training
                check_supported(cfg.model.preset, built.structures(), rules, unit="layer")
            return built
        return build_network(
            in_shape,
            num_classes,
            blocks=[block_dict(b) for b in cfg.model.blocks],
            widths=list(cfg.model.widths),
            activation=cfg.model.activation,
            generator=generator,
            name=cfg.model.preset,
            weight_init=plain_value(cfg.model.weight_init),
        )
    except ValueError as exc:  # an unknown activation or init, a layer that does not fit its input
        raise ConfigError(f"model: {exc}") from exc
