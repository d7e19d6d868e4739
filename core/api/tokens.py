"""Python settings as the ``key=value`` tokens a command line would give (then resolved as the CLI's).

``to_tokens(config, sections, overrides)``: ``config`` (a YAML file's path or a nested dict), then
``sections`` (keyword arguments: nested dicts such as ``trainer={"epochs": 3}``, dotted keys such as
``{"trainer.epochs": 3}``, or plain values such as ``seed=1``), then ``overrides`` (``"key=value"``
strings), in that order, so a later token wins as on the command line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ..errors import ConfigError

NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _scalar(value):
    """A numpy scalar or 0-d array, or a 0-d torch tensor, as the Python number or bool it holds."""
    if getattr(value, "ndim", None) == 0 and type(value).__module__.split(".")[0] in ("numpy", "torch"):
        return value.item()
    return value


def _string(text: str) -> str:
    """A str as the dot-list parser must see it to read it back unchanged: as typed when YAML reads it
    so (or reads a plain decimal number, as the command line does: ``"1e-3"`` is a number), else
    JSON-quoted (``"yes"``, ``"/tmp/run #1"``, ``"a: b"``, ``"010"`` stay strings)."""
    if NUMBER.match(text):
        return text
    try:
        read = yaml.safe_load(text)
    except yaml.YAMLError:
        read = None
    return text if isinstance(read, str) and read == text else json.dumps(text)


def value_text(value, key: str) -> str:
    """``value`` as the command line would spell it: strings (and paths) so that they are read back as
    typed, numbers (numpy's too) by ``repr``, booleans and None as YAML, lists and dicts as JSON flow
    (which the dot-list parser reads as YAML)."""
    value = _scalar(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (str, Path)):
        return _string(str(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if hasattr(value, "value") and isinstance(value.value, str):  # an Enum of the schema
        return value.value
    try:
        return json.dumps(_plain(value))
    except (TypeError, ValueError) as exc:
        what = f"{key}: {type(value).__name__} is not a setting value (a number, str, bool, list or dict)"
        raise ConfigError(what) from exc


def _plain(value):
    value = _scalar(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


# dict values that are one setting, not a section of settings
_WHOLE = ("model.blocks",)


def _flatten(prefix: str, value, out: list[str]) -> None:
    if isinstance(value, Mapping) and prefix not in _WHOLE and value:
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{prefix}: key {k!r} is not a str")
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out.append(f"{prefix}={value_text(value, prefix)}")


def config_file_tokens(config) -> list[str]:
    """A YAML file's (or a dict's) settings as tokens."""
    if config is None:
        return []
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config: no such file: {path}")
        try:
            loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        except Exception as exc:  # YAML syntax
            raise ConfigError(f"config: {path} is not a YAML mapping of settings: {exc}") from exc
        config = loaded
    if not isinstance(config, Mapping):
        raise ConfigError(f"config: expected a YAML file or a dict of settings, got a {type(config).__name__}")
    out: list[str] = []
    for key, value in config.items():
        if not isinstance(key, str):
            raise ConfigError(f"config: key {key!r} is not a str")
        _flatten(key, value, out)
    return out


def to_tokens(config=None, sections: Mapping | None = None, overrides: Iterable[str] = ()) -> list[str]:
    """``config``, then keyword ``sections``, then ``overrides``, as ``key=value`` tokens."""
    out = config_file_tokens(config)
    for key, value in (sections or {}).items():
        _flatten(key, value, out)
    if isinstance(overrides, str):
        raise ConfigError(f"overrides: a list of 'key=value' strings, got the str {overrides!r}")
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"overrides: {item!r} is not a 'key=value' string")
        out.append(item)
    return out
