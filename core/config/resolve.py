"""From command-line tokens to a validated run configuration.

Order of precedence (later wins): schema defaults, the data set (``data=NAME``), the
model preset (``model=NAME``; both name installed plugins, ``selectors.py``), the rule's
recipe for that model preset, the command line's ``key=value`` pairs. Every failure is a :class:`ConfigError` or
:class:`PluginError` (exit status 2) that names the key and lists what is valid, raised
before any data is loaded or file written.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..discovery import RULES_GROUP, PluginEntry, discover, load_rule_class
from ..errors import ConfigError
from .bounds import check_bounds
from .composite import companion_specs, unused_rule_sections
from .dotlist import apply_dotlist, check_resolvable, split_tokens
from .messages import explain
from .observers import resolve_observers
from .recipes import rule_config
from .schema import RunConfig, config_dict
from .selectors import SELECTORS, check_model_tokens, selected
from .specs import ObserverSpec, RuleSpec
from .structures import block_structures, check_supported

__all__ = [  # the names importers of this module used before it was split by job
    "ObserverSpec",
    "RuleSpec",
    "apply_dotlist",
    "build_run_config",
    "check_resolvable",
    "companion_specs",
    "resolve_observers",
    "resolve_rule",
    "rule_config",
    "split_tokens",
    "unused_rule_sections",
]


def build_run_config(tokens: list[str], base: DictConfig | None = None) -> DictConfig:
    """Top-level config from tokens: presets selected, keys and types checked.

    Rule-specific keys (``rules.<name>.*``) are only stored here; :func:`resolve_run`
    validates them against each rule's own schema.
    """
    cfg = OmegaConf.structured(RunConfig) if base is None else base
    rest, model = [], None
    for key, value in split_tokens(tokens):
        if key in SELECTORS and "." not in value and "[" not in value and "{" not in value:
            preset = selected(key, value)
            if key == "model":
                model = value
            try:
                cfg = OmegaConf.merge(cfg, {key: preset})
            except OmegaConfBaseException as exc:
                raise explain(exc, cfg, f"{key} preset {value!r}") from exc
        else:
            rest.append((key, value))
    check_model_tokens(model, rest)
    cfg = apply_dotlist(cfg, rest, "config")
    check_resolvable(cfg, "config")
    check_bounds(cfg, "")
    return cfg


def resolve_rule(cfg: DictConfig, rules: dict[str, PluginEntry] | None = None) -> RuleSpec:
    """Load the active rule (``cfg.rule``) and validate every ``rules.<name>`` section."""
    rules = discover(RULES_GROUP) if rules is None else rules
    if OmegaConf.is_missing(cfg, "rule"):
        raise ConfigError(f"no rule chosen: add rule=NAME; installed: {', '.join(sorted(rules))}")
    user_sections = config_dict(cfg.rules, resolve=True) if cfg.rules else {}
    for other in user_sections:
        if other not in rules:
            raise ConfigError(
                f"rules.{other}: no installed rule is called {other!r}; installed: {', '.join(sorted(rules))}"
            )
    entry, cls = load_rule_class(cfg.rule, rules)
    config = rule_config(cfg.rule, cls, entry, cfg.model.preset, user_sections.get(cfg.rule))
    companions = companion_specs(cfg.rule, cls, config, rules, cfg.model.preset, user_sections)
    for other, section in user_sections.items():  # settings for rules not active now must still be valid
        if other != cfg.rule and other not in companions:
            o_entry, o_cls = load_rule_class(other, rules)
            rule_config(other, o_cls, o_entry, cfg.model.preset, section)
    blocks = [config_dict(b, resolve=True, enum_to_str=True) for b in cfg.model.blocks]
    try:
        found = block_structures(blocks)
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from exc
    check_supported(cfg.model.preset, found, [(cfg.rule, cls)] + [(n, c.cls) for n, c in companions.items()])
    return RuleSpec(cfg.rule, entry, cls, config, companions)
