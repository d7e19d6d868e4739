"""The enabled observers and their validated settings (``observers.<name>.*``)."""

from __future__ import annotations

import dataclasses
from typing import cast

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..discovery import OBSERVERS_GROUP, PluginEntry, discover
from ..errors import ConfigError
from .bounds import check_bounds
from .messages import explain
from .schema import config_dict
from .specs import ObserverSpec


def resolve_observers(cfg: DictConfig, observers: dict[str, PluginEntry] | None = None) -> list[ObserverSpec]:
    """Enabled observers with validated settings (``observers.<name>.enabled=false`` disables one)."""
    observers = discover(OBSERVERS_GROUP) if observers is None else observers
    sections = config_dict(cfg.observers, resolve=True) if cfg.observers else {}
    for name, section in sections.items():
        if name not in observers:
            raise ConfigError(
                f"observers.{name}: no installed observer is called {name!r}; installed: {', '.join(sorted(observers))}"
            )
        if not isinstance(section, dict):
            raise ConfigError(f"observers.{name}: expected observers.{name}.<key>=value, got {section!r}")
    specs = []
    for name, entry in sorted(observers.items()):
        section = dict(sections.get(name, {}))
        enabled = section.pop("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"observers.{name}.enabled must be true or false, got {enabled!r}")
        if not enabled:
            continue
        cls = entry.load()
        config_cls = getattr(cls, "Config", None)
        obs_cfg = None
        if config_cls is not None and dataclasses.is_dataclass(config_cls):
            where = f"observers.{name} ({entry.origin})"
            try:
                merged = cast(DictConfig, OmegaConf.merge(OmegaConf.structured(config_cls), section))
            except OmegaConfBaseException as exc:
                raise explain(exc, OmegaConf.structured(config_cls), where) from exc
            check_bounds(merged, f"observers.{name}")
            obs_cfg = OmegaConf.to_object(merged)
        elif section:
            raise ConfigError(
                f"observers.{name} ({entry.origin}) takes no settings besides 'enabled'; got {sorted(section)}"
            )
        specs.append(ObserverSpec(name, entry, cls, obs_cfg))
    return specs
