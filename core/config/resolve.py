"""From command-line tokens to a validated run configuration.

Order of precedence (later wins): schema defaults, the data preset (``data=NAME``), the
model preset (``model=NAME``), the rule's recipe for that model preset, the command
line's ``key=value`` pairs. Every failure is a :class:`ConfigError` or
:class:`PluginError` (exit status 2) that names the key and lists what is valid, raised
before any data is loaded or file written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from bioscale.architectures.presets import PRESETS as MODEL_PRESETS

from ..discovery import OBSERVERS_GROUP, RULES_GROUP, PluginEntry, discover, load_rule_class
from ..errors import ConfigError, PluginError
from .bounds import check_bounds
from .list_items import check_list_entries
from .presets import DATA_PRESETS
from .schema import RunConfig, plain_value

SELECTORS = {"data": DATA_PRESETS, "model": MODEL_PRESETS}


def split_tokens(tokens: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for token in tokens:
        if "=" not in token:
            raise ConfigError(f"expected key=value, got {token!r} (for example trainer.epochs=10)")
        key, value = token.split("=", 1)
        if not key:
            raise ConfigError(f"empty key in {token!r}")
        pairs.append((key.strip(), value))
    return pairs


def _keys_of(node) -> str:
    try:
        return ", ".join(str(k) for k in node.keys())
    except Exception:
        return "?"


def _explain(exc: OmegaConfBaseException, root: DictConfig, where: str) -> ConfigError:
    """A message naming the offending key and what is valid there."""
    full_key = getattr(exc, "full_key", None) or "?"
    if isinstance(exc, ConfigKeyError):
        parent_key = full_key.rsplit(".", 1)[0] if "." in full_key else ""
        parent = OmegaConf.select(root, parent_key) if parent_key else root
        scope = f"under {parent_key!r}" if parent_key else "at the top level"
        return ConfigError(f"{where}: unknown key {full_key!r}; valid keys {scope}: {_keys_of(parent)}")
    message = str(exc).splitlines()[0]
    node = OmegaConf.select(root, full_key) if full_key != "?" else None
    hint = ""
    enum_type = _enum_type(root, full_key)
    if enum_type is not None and "expected one of" not in message:
        hint = f"; valid values: {', '.join(m.name for m in enum_type)}"
    elif node is not None and not isinstance(node, (DictConfig,)):
        hint = f" (current value {node!r})"
    return ConfigError(f"{where}: bad value for {full_key!r}: {message}{hint}")


def _enum_type(root, full_key):
    try:
        parent_key, leaf = full_key.rsplit(".", 1) if "." in full_key else ("", full_key)
        parent = OmegaConf.select(root, parent_key) if parent_key else root
        node = parent._get_node(leaf)
        ref = node._metadata.ref_type
        import enum

        return ref if isinstance(ref, type) and issubclass(ref, enum.Enum) else None
    except Exception:
        return None


def apply_dotlist(cfg: DictConfig, pairs: list[tuple[str, str]], where: str) -> DictConfig:
    """Merge ``key=value`` pairs into a structured config, with friendly errors."""
    if not pairs:
        return cfg
    for key, value in pairs:
        try:
            override = OmegaConf.from_dotlist([f"{key}={value}"])
        except Exception as exc:  # YAML syntax, unknown tags such as !!python/...
            raise ConfigError(f"{where}: cannot parse {key}={value!r}: {str(exc).splitlines()[0]}") from exc
        try:
            if any(part.isdigit() for part in key.split(".")):  # a list index: model.blocks.0.kernel=5
                cfg = cfg.copy()
                _check_list_path(cfg, key, where)
                OmegaConf.update(cfg, key, OmegaConf.select(override, key), merge=True)
            else:
                check_list_entries(cfg, key, override, where)  # model.blocks=[{...}]: name the entry
                cfg = OmegaConf.merge(cfg, override)
        except ConfigError:
            raise
        except OmegaConfBaseException as exc:
            raise _explain(exc, cfg, where) from exc
        except Exception as exc:  # e.g. a value of the wrong container type
            raise ConfigError(f"{where}: cannot set {key}={value!r}: {str(exc).splitlines()[0]}") from exc
    return cfg


def _check_list_path(cfg: DictConfig, key: str, where: str) -> None:
    """Each step of ``key`` exists (list indices in range, known keys), else a ConfigError
    listing what is valid there."""
    node, walked = cfg, []
    for part in key.split(".")[:-1]:
        walked.append(part)
        if isinstance(node, ListConfig):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{where}: {'.'.join(walked)} does not exist: {'.'.join(walked[:-1])} has {len(node)} entries")
            node = node[int(part)]
        elif isinstance(node, DictConfig) and part in node:
            node = node[part]
        else:
            raise ConfigError(f"{where}: unknown key {'.'.join(walked)!r}; valid keys under {'.'.join(walked[:-1]) or 'the top level'!r}: {_keys_of(node)}")
    leaf = key.split(".")[-1]
    if isinstance(node, DictConfig) and leaf not in node:
        parent = ".".join(key.split(".")[:-1])
        raise ConfigError(f"{where}: unknown key {key!r}; valid keys under {parent!r}: {_keys_of(node)}")


def check_resolvable(cfg: DictConfig, where: str) -> None:
    """Every ``${...}`` interpolation in ``cfg`` resolves (else a :class:`ConfigError` naming it)."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:
        raise ConfigError(f"{where}: {str(exc).splitlines()[0]}") from exc


def build_run_config(tokens: list[str], base: DictConfig | None = None) -> DictConfig:
    """Top-level config from tokens: presets selected, keys and types checked.

    Rule-specific keys (``rules.<name>.*``) are only stored here; :func:`resolve_run`
    validates them against each rule's own schema.
    """
    cfg = OmegaConf.structured(RunConfig) if base is None else base
    rest = []
    for key, value in split_tokens(tokens):
        if key in SELECTORS and "." not in value and "[" not in value and "{" not in value:
            presets = SELECTORS[key]
            if value not in presets:
                raise ConfigError(f"unknown {key} preset {value!r}; valid: {', '.join(sorted(presets))}")
            preset = dict(presets[value])
            if key == "model":
                preset["preset"] = value
                preset.setdefault("blocks", [])
            try:
                cfg = OmegaConf.merge(cfg, {key: preset})
            except OmegaConfBaseException as exc:
                raise _explain(exc, cfg, f"{key} preset {value!r}") from exc
        else:
            rest.append((key, value))
    cfg = apply_dotlist(cfg, rest, "config")
    check_resolvable(cfg, "config")
    check_bounds(cfg, "")
    return cfg


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
                from ..plugin_host import rule_hooks_for

                return self.cls(config_obj, {name: rule_hooks_for(spec, spec.instantiate()) for name, spec in self.companions.items()})
            return self.cls(config_obj)
        except ConfigError as exc:
            raise ConfigError(f"rules.{self.name}.{exc}") from exc
        except Exception as exc:
            raise PluginError(f"rule {self.name!r} from {self.entry.origin} failed to start: {exc}") from exc


@dataclass
class ObserverSpec:
    name: str
    entry: PluginEntry
    cls: type
    config: object  # dataclass instance or None


def _merge_recipe(cfg, recipe, where: str, label: str):
    try:
        return OmegaConf.merge(cfg, recipe)
    except OmegaConfBaseException as exc:
        raise PluginError(f"{where}: its recipe {label!r} is invalid: {_explain(exc, cfg, where)}") from exc


def _conditional_recipes(recipes: dict, model_preset: str) -> list[tuple[str, str, str, dict]]:
    """Recipes keyed ``"<preset>:<key>=<value>"``: apply when the rule config has key == value."""
    found = []
    for label, recipe in recipes.items():
        preset, _, condition = label.partition(":")
        if preset == model_preset and "=" in condition:
            key, value = condition.split("=", 1)
            found.append((label, key, value, recipe))
    return found


def rule_config(name: str, cls, entry: PluginEntry, model_preset: str, user: dict | None) -> DictConfig:
    """``cls.Config`` defaults ← recipe for ``model_preset`` ← conditional recipes ← user overrides.

    A rule's ``recipes`` maps ``"<preset>"`` to tuned settings, and may map
    ``"<preset>:<key>=<value>"`` to settings that apply on top when the final config has
    ``key == value`` (e.g. ``"mnist_fc:schedule=parallel"``).
    """
    where = f"rules.{name} ({entry.origin})"
    recipes = getattr(cls, "recipes", None) or {}
    if user and not isinstance(user, (dict, DictConfig)):
        raise ConfigError(f"{where}: expected rules.{name}.<key>=value, got rules.{name}={user!r}")

    def build(extra: list) -> DictConfig:
        cfg = OmegaConf.structured(cls.Config)
        if recipes.get(model_preset):
            cfg = _merge_recipe(cfg, recipes[model_preset], where, model_preset)
        for label, recipe in extra:
            cfg = _merge_recipe(cfg, recipe, where, label)
        if user:
            try:
                cfg = OmegaConf.merge(cfg, user)
            except OmegaConfBaseException as exc:
                raise _explain(exc, cfg, where) from exc
        return cfg

    cfg = build([])
    conditional = [(label, recipe) for label, key, value, recipe in _conditional_recipes(recipes, model_preset)
                   if str(plain_value(OmegaConf.select(cfg, key))) == value]
    cfg = build(conditional) if conditional else cfg
    check_bounds(cfg, f"rules.{name}")
    return cfg


def resolve_rule(cfg: DictConfig, rules: dict[str, PluginEntry] | None = None) -> RuleSpec:
    """Load the active rule (``cfg.rule``) and validate every ``rules.<name>`` section."""
    rules = discover(RULES_GROUP) if rules is None else rules
    if OmegaConf.is_missing(cfg, "rule"):
        raise ConfigError(f"no rule chosen: add rule=NAME; installed: {', '.join(sorted(rules))}")
    user_sections = OmegaConf.to_container(cfg.rules, resolve=True) if cfg.rules else {}
    for other in user_sections:
        if other not in rules:
            raise ConfigError(f"rules.{other}: no installed rule is called {other!r}; installed: {', '.join(sorted(rules))}")
    entry, cls = load_rule_class(cfg.rule, rules)
    config = rule_config(cfg.rule, cls, entry, cfg.model.preset, user_sections.get(cfg.rule))
    companions = companion_specs(cfg.rule, cls, config, rules, cfg.model.preset, user_sections)
    for other, section in user_sections.items():  # settings for rules not active now must still be valid
        if other != cfg.rule and other not in companions:
            o_entry, o_cls = load_rule_class(other, rules)
            rule_config(other, o_cls, o_entry, cfg.model.preset, section)
    return RuleSpec(cfg.rule, entry, cls, config, companions)


def companion_specs(name: str, cls, config: DictConfig, rules: dict, preset: str, sections: dict) -> dict:
    """For a composite rule (one declaring ``uses_rules``): name → :class:`RuleSpec` of each rule
    it is made of, configured from ``sections`` (``rules.<name>``) like a plain run; ``{}`` otherwise."""
    companions = {}
    for used in _used_rules(name, cls, config):
        if used not in rules:
            raise ConfigError(f"rules.{name}: no installed rule is called {used!r}; installed: {', '.join(sorted(rules))}")
        c_entry, c_cls = load_rule_class(used, rules)
        if getattr(c_cls, "uses_rules", None) is not None:
            raise ConfigError(f"rules.{name}: {used!r} is itself made of other rules; a composite rule cannot contain one")
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


def unused_rule_sections(cfg: DictConfig, spec: "RuleSpec | None" = None) -> list[str]:
    """The ``rules.<name>`` sections of rules the run does not use (checked, but ignored):
    neither its rule nor one that rule is made of (``spec.companions``)."""
    used = {cfg.rule, *(spec.companions if spec is not None else ())}
    return sorted(name for name in (cfg.rules or {}) if name not in used)


def resolve_observers(cfg: DictConfig, observers: dict[str, PluginEntry] | None = None) -> list[ObserverSpec]:
    """Enabled observers with validated settings (``observers.<name>.enabled=false`` disables one)."""
    observers = discover(OBSERVERS_GROUP) if observers is None else observers
    sections = OmegaConf.to_container(cfg.observers, resolve=True) if cfg.observers else {}
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
                merged = OmegaConf.merge(OmegaConf.structured(config_cls), section)
            except OmegaConfBaseException as exc:
                raise _explain(exc, OmegaConf.structured(config_cls), where) from exc
            check_bounds(merged, f"observers.{name}")
            obs_cfg = OmegaConf.to_object(merged)
        elif section:
            raise ConfigError(f"observers.{name} ({entry.origin}) takes no settings besides 'enabled'; got {sorted(section)}")
        specs.append(ObserverSpec(name, entry, cls, obs_cfg))
    return specs
