"""Checks of a list of structured entries set whole on the command line, such as
``model.blocks=[{type: conv, channels: 8, kernel: 3}]``: a mistake names the entry (its index
and ``type``) and that entry's valid keys, not the top level of the config."""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError


def _element_type(cfg: DictConfig, key: str):
    """The dataclass each entry of the list at ``key`` must be, or None (not such a list)."""
    parent_key, _, leaf = key.rpartition(".")
    try:
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        node = parent._get_node(leaf) if isinstance(parent, DictConfig) else None
    except Exception:  # a path OmegaConf itself will report
        return None
    element = node._metadata.element_type if isinstance(node, ListConfig) else None
    return element if dataclasses.is_dataclass(element) else None


def check_list_entries(cfg: DictConfig, key: str, override: DictConfig, where: str) -> None:
    """When ``key`` is a list of dataclass entries, each dict entry of ``override``'s value has
    only that dataclass's keys, with values it accepts; else a :class:`ConfigError` naming the
    entry, e.g. ``model.blocks[0] (conv): unknown key 'kernal'; valid keys of a model.blocks entry: ...``."""
    element = _element_type(cfg, key)
    value = OmegaConf.select(override, key)
    if element is None or not isinstance(value, ListConfig):
        return
    valid = [f.name for f in dataclasses.fields(element)]
    for index, entry in enumerate(value):
        if not isinstance(entry, DictConfig):
            continue  # not a dict at all: OmegaConf's own message names it
        kind = entry.get("type") if "type" in valid and "type" in entry else None
        label = f"{key}[{index}]" + (f" ({kind})" if kind is not None else "")
        unknown = [str(k) for k in entry if k not in valid]
        if unknown:
            raise ConfigError(
                f"{where}: {label}: unknown key {unknown[0]!r}; valid keys of a {key} entry: {', '.join(valid)}"
            )
        try:
            OmegaConf.merge(OmegaConf.structured(element), entry)
        except OmegaConfBaseException as exc:
            field_name, message = getattr(exc, "full_key", None) or "?", str(exc).splitlines()[0]
            raise ConfigError(f"{where}: {label}: bad value for {field_name!r}: {message}") from exc
