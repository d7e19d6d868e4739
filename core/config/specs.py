"""What resolution produces: the active rule's and each observer's spec (entry, class, config)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..discovery import PluginEntry
from ..errors import ConfigError, PluginError
from ..plugin_host import rule_hooks_for


@dataclass
class RuleSpec:
    """The active rule: where it comes from, its class and its validated config."""

    name: str
    entry: PluginEntry
    cls: type
    config: DictConfig  # typed by cls.Config
    companions: dict = dataclasses.field(default_factory=dict)  # name -> RuleSpec of the rules a composite rule uses

    @property
    def info(self) -> dict:
        return {"name": self.name, "distribution": self.entry.distribution, "version": self.entry.version}

    @property
    def paper_row(self) -> str | None:
        """The rule's row label in the paper's tables (its ``paper_row``: a string, or a
        function of its config object), or None."""
        row = getattr(self.cls, "paper_row", None)
        if callable(row):
            try:
                row = row(OmegaConf.to_object(self.config))
            except Exception as exc:
                raise PluginError(f"rule {self.name!r} from {self.entry.origin}: paper_row failed: {exc}") from exc
        if row is not None and not isinstance(row, str):
            raise PluginError(f"rule {self.name!r} from {self.entry.origin}: paper_row gave {row!r}, not a string")
        return row

    def instantiate(self):
        """The rule object (config converted to its dataclass); errors name the plugin. A rule
        refusing one of its own settings raises :class:`ConfigError` with a message relative to
        its section; it is passed on with ``rules.<name>.`` in front."""
        config_obj = OmegaConf.to_object(self.config)
        try:
            if self.companions:  # a composite rule gets the rules it uses, built, behind checked facades
                return self.cls(
                    config_obj,
                    {name: rule_hooks_for(spec, spec.instantiate()) for name, spec in self.companions.items()},
                )
            return self.cls(config_obj)
        except ConfigError as exc:
            raise ConfigError(f"rules.{self.name}.{exc}") from exc
        except Exception as exc:
            raise PluginError(f"rule {self.name!r} from {self.entry.origin} failed to start: {exc}") from exc


@dataclass
class ObserverSpec:
    name: str
    entry: PluginEntry
    cls: Callable[..., Any]  # the observer's class (the sweep's reporter: a factory of its one instance)
    config: object  # dataclass instance or None
