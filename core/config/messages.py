"""Error wording for config failures: which key, what is wrong, what is valid there."""

from __future__ import annotations

import enum

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from ..errors import ConfigError


def keys_of(node) -> str:
    try:
        return ", ".join(str(k) for k in node.keys())
    except Exception:
        return "?"


def explain(exc: OmegaConfBaseException, root: DictConfig, where: str) -> ConfigError:
    """A message naming the offending key and what is valid there."""
    full_key = getattr(exc, "full_key", None) or "?"
    if isinstance(exc, ConfigKeyError):
        parent_key = full_key.rsplit(".", 1)[0] if "." in full_key else ""
        parent = OmegaConf.select(root, parent_key) if parent_key else root
        scope = f"under {parent_key!r}" if parent_key else "at the top level"
        return ConfigError(f"{where}: unknown key {full_key!r}; valid keys {scope}: {keys_of(parent)}")
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
        return ref if isinstance(ref, type) and issubclass(ref, enum.Enum) else None
    except Exception:
        return None
