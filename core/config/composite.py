"""Composite rules (a rule class declaring ``uses_rules(config)``, e.g. ``mix``): the rules it is
made of, each configured like a plain run's, and which ``rules.<name>`` sections a run ignores."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from ..discovery import load_rule_class
from ..errors import ConfigError
from .recipes import rule_config
from .specs import RuleSpec


def companion_specs(name: str, cls, config: DictConfig, rules: dict, preset: str, sections: dict) -> dict:
    """For a composite rule (one declaring ``uses_rules``): name → :class:`RuleSpec` of each rule
    it is made of, configured from ``sections`` (``rules.<name>``) like a plain run; ``{}`` otherwise."""
    companions = {}
    for used in _used_rules(name, cls, config):
        if used not in rules:
            raise ConfigError(
                f"rules.{name}: no installed rule is called {used!r}; installed: {', '.join(sorted(rules))}"
            )
        c_entry, c_cls = load_rule_class(used, rules)
        if getattr(c_cls, "uses_rules", None) is not None:
            raise ConfigError(
                f"rules.{name}: {used!r} is itself made of other rules; a composite rule cannot contain one"
            )
        companions[used] = RuleSpec(used, c_entry, c_cls, rule_config(used, c_cls, c_entry, preset, sections.get(used)))
    return companions


def _used_rules(name: str, cls, config: DictConfig) -> list[str]:
    """The names a composite rule declares with ``uses_rules(config)`` (none for a plain rule)."""
    uses = getattr(cls, "uses_rules", None)
    if uses is None:
        return []
    try:
        names = list(uses(OmegaConf.to_object(config)))
    except ConfigError as exc:
        raise ConfigError(f"rules.{name}.{exc}") from exc
    if name in names:
        raise ConfigError(f"rules.{name}: a composite rule cannot use itself")
    return list(dict.fromkeys(names))


def unused_rule_sections(cfg: DictConfig, spec: RuleSpec | None = None) -> list[str]:
    """The ``rules.<name>`` sections of rules the run does not use (checked, but ignored):
    neither its rule nor one that rule is made of (``spec.companions``)."""
    used = {cfg.rule, *(spec.companions if spec is not None else ())}
    return sorted(name for name in (cfg.rules or {}) if name not in used)
