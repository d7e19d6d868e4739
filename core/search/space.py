"""Search spaces: config keys with a distribution each, written as spec strings.

``loguniform:LOW:HIGH`` and ``uniform:LOW:HIGH`` (floats), ``int:LOW:HIGH`` (inclusive) and
``choice:A,B,...`` (YAML scalars). A rule declares its default space as ``search_space``
(keys relative to its ``rules.<name>`` section); a user's space (a YAML file of ``key: spec``
or ``sweep.space.<key>=<spec>`` tokens) uses full config keys and wins key by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError

KINDS = ("loguniform", "uniform", "int", "choice")


@dataclass(frozen=True)
class Param:
    key: str  # full config key, e.g. rules.dtp.optimizer.lr
    kind: str
    values: tuple  # (low, high) or the choices

    def suggest(self, trial):
        """This parameter's value for an Optuna ``trial``."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.key, *self.values)
        return trial.suggest_float(self.key, *self.values, log=self.kind == "loguniform")

    def extremes(self) -> list:
        """Values a check of the config's ranges must accept: both ends, or every choice."""
        return list(self.values)


def _scalar(text: str, key: str):
    for number in (int, float):  # 1e-4 is a float here (YAML 1.1 would read a string)
        try:
            return number(text)
        except ValueError:
            pass
    value = yaml.safe_load(text)
    if isinstance(value, (dict, list)) or value is None:
        raise ConfigError(f"sweep.space.{key}: {text!r} is not a scalar value")
    return value


def parse_spec(key: str, spec) -> Param:
    """``Param`` from a spec string (see the module doc); a :class:`ConfigError` names the key."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"sweep.space.{key}: expected KIND:ARGS with KIND one of {', '.join(KINDS)}; got {spec!r}")
    kind, _, rest = spec.partition(":")
    if kind not in KINDS:
        raise ConfigError(f"sweep.space.{key}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "choice":
        values = tuple(_scalar(v.strip(), key) for v in rest.split(",") if v.strip())
        if not values:
            raise ConfigError(f"sweep.space.{key}: choice needs at least one value")
        return Param(key, kind, values)
    parts = rest.split(":")
    try:
        low, high = (int(p) if kind == "int" else float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"sweep.space.{key}: {kind} needs LOW:HIGH numbers; got {rest!r}") from None
    if not low < high or (kind == "loguniform" and low <= 0):
        raise ConfigError(
            f"sweep.space.{key}: need LOW < HIGH{' and LOW > 0' if kind == 'loguniform' else ''}; got {rest!r}"
        )
    return Param(key, kind, (low, high))


def rule_space(rule: str, cls) -> dict[str, Param]:
    declared = getattr(cls, "search_space", None) or {}
    return {f"rules.{rule}.{k}": parse_spec(f"rules.{rule}.{k}", v) for k, v in declared.items()}


def user_space(file: str, tokens: dict[str, str]) -> dict[str, Param]:
    """The space of ``sweep.space=FILE`` (a YAML mapping key → spec) and ``sweep.space.<key>``."""
    specs = {}
    if file:
        try:
            loaded = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"sweep.space={file}: cannot read it: {str(exc).splitlines()[0]}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"sweep.space={file}: expected a mapping of config key to spec")
        specs.update({str(k): v for k, v in loaded.items()})
    specs.update(tokens)
    return {k: parse_spec(k, v) for k, v in specs.items()}


def format_value(value) -> str:
    """A drawn value as a command-line token value (round-trips through OmegaConf exactly)."""
    return repr(value) if isinstance(value, float) else str(value)
