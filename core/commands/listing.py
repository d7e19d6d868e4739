"""``bioscale rules`` / ``observers`` / ``models`` / ``datasets``: what is installed, what it
implements, what broke.

A plugin that fails to import is listed as broken with its error; two distributions that
offer one name are both listed as conflicting. The listing itself never fails because of
a plugin.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from omegaconf import OmegaConf

from ..config.schema import config_dict
from ..discovery import (
    ARCHITECTURES_GROUP,
    DATASETS_GROUP,
    OBSERVERS_GROUP,
    RULES_GROUP,
    conflict_message,
    describe,
    find_entries,
)
from ..hookspecs import OBSERVER_HOOKS, RULE_HOOKS
from ..markers import PROJECT_NAME
from ..named_plugins import CONTRACTS

GROUPS = {"rules": RULES_GROUP, "observers": OBSERVERS_GROUP, "models": ARCHITECTURES_GROUP, "datasets": DATASETS_GROUP}


def _hooks_of(cls) -> list[str]:
    names = RULE_HOOKS + OBSERVER_HOOKS
    return [n for n in names if hasattr(getattr(cls, n, None), f"{PROJECT_NAME}_impl")]


def _default_config(cls):
    config_cls = getattr(cls, "Config", None)
    if config_cls is None or not dataclasses.is_dataclass(config_cls):
        return None
    return config_dict(OmegaConf.structured(config_cls), enum_to_str=True)


def _describe_kind(row: dict, group: str, obj) -> None:
    """What a listing row says of a loaded plugin of ``group``: a rule's hooks, config and recipes,
    an observer's hooks, an architecture's kind and config values; a broken contract as broken."""
    if group in (RULES_GROUP, OBSERVERS_GROUP):
        row["hooks"] = _hooks_of(obj)
    else:
        del row["hooks"]
        problem = CONTRACTS[group](obj)
        if problem:
            row["status"], row["error"] = "broken", f"not a {group} plugin: {problem}"
            return
    if group == RULES_GROUP:
        try:
            row["config"] = _default_config(obj)
        except Exception as exc:  # a Config OmegaConf cannot read
            row["status"] = "broken"
            row["error"] = f"its Config cannot be read: {exc}"
        row["recipes"] = sorted((getattr(obj, "recipes", None) or {}).keys())
    if group == ARCHITECTURES_GROUP:
        row["kind"] = "build" if getattr(obj, "build", None) is not None else "config"
        if row["kind"] == "config":
            row["config"] = obj.config


def collect(group: str) -> list[dict]:
    rows = []
    for name, entries in sorted(find_entries(group).items()):
        for entry in entries:
            row = {
                "name": name,
                "distribution": entry.distribution,
                "version": entry.version,
                "entry_point": entry.value,
                "status": "ok",
                "description": "",
                "hooks": [],
            }
            if len(entries) > 1:
                others = ", ".join(e.origin for e in entries if e is not entry)
                row["status"] = f"conflict: also provided by {others}"
            try:
                cls = entry.load()
            except Exception as exc:  # PluginError with the import error
                row["status"] = "broken"
                row["error"] = str(exc)
                rows.append(row)
                continue
            row["description"] = describe(cls)
            _describe_kind(row, group, cls)
            rows.append(row)
    return rows


def format_table(rows: list[dict], kind: str) -> str:
    if not rows:
        return f"no {kind} installed"
    headers = ("name", "distribution", "version", "status", "description")
    table = [
        [r["name"], r["distribution"], r["version"], r["status"], r.get("error") or r["description"]] for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *table)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines)


def warn_conflicts(group: str) -> None:
    """One warning on stderr per name that several distributions offer (that name cannot be used)."""
    for name, entries in sorted(find_entries(group).items()):
        if len(entries) > 1:
            print(f"bioscale: warning: {conflict_message(group, name, entries)}", file=sys.stderr, flush=True)


def main(kind: str, as_json: bool) -> int:
    group = GROUPS[kind]
    warn_conflicts(group)
    rows = collect(group)
    print(json.dumps(rows, indent=2) if as_json else format_table(rows, kind))
    return 0
