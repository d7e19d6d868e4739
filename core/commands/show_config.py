"""``bioscale config key=value ...``: the fully resolved config of a run, without running it."""

from __future__ import annotations

from omegaconf import OmegaConf

from ..config import build_run_config, resolve_observers, resolve_rule
from ..config.schema import config_dict


def main(tokens: list[str]) -> int:
    cfg = build_run_config(tokens)
    rule_spec = resolve_rule(cfg)
    observers = resolve_observers(cfg)
    resolved = config_dict(cfg, enum_to_str=True)
    resolved["rules"] = {rule_spec.name: config_dict(rule_spec.config, enum_to_str=True)}
    resolved["observers_enabled"] = [o.name for o in observers]
    resolved["rule_info"] = rule_spec.info
    print(OmegaConf.to_yaml(OmegaConf.create(resolved)), end="")
    return 0
