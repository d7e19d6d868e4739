"""A campaign spec: the cells of one results question, read and checked before any training.

A spec is a YAML file (``results/<question>/spec.yaml``)::

    title: The rules after the paper on mnist_fc
    data: mnist                       # default for every cell
    model: mnist_fc                   # default for every cell
    settings: {trainer.epochs: 100}   # key=value settings every cell gets
    seeds: [0]                        # default seeds
    cells:
      - {name: wm, rule: wm}
      - {name: signsym_frsf, rule: signsym, settings: {rules.signsym.variant: frsf}}

A cell's ``data``, ``model``, ``settings`` and ``seeds`` override the spec's (its settings
are merged over the spec's); ``name`` labels its row and defaults to the rule's name. A cell's
``reference`` is a published test error (%) shown beside it, from the spec's ``reference_source``.
Command-line ``key=value`` tokens come last and apply to every cell. ``load_spec`` builds
and validates every cell's run config, so an unknown key, rule, preset or setting is an
error (exit 2) that names the cell before anything trains.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..config import build_run_config, resolve_rule
from ..errors import BioscaleError, ConfigError

SPEC_KEYS = ("title", "data", "model", "settings", "seeds", "cells", "reference_source")
CELL_KEYS = ("name", "rule", "data", "model", "settings", "seeds", "reference")


def is_spec_path(arg: str) -> bool:
    """Whether a ``reproduce`` argument names a spec file rather than a paper table."""
    return arg.endswith((".yaml", ".yml"))


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"spec {path}: no such file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"spec {path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"spec {path}: expected a mapping with keys {', '.join(SPEC_KEYS)}")
    return doc


def _check_keys(found: dict, valid: tuple, where: str) -> None:
    unknown = [k for k in found if k not in valid]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(valid)}")


def _tokens(settings, where: str) -> list[str]:
    """``{key: value}`` (or a list of ``key=value`` strings) as override tokens."""
    if settings is None:
        return []
    if isinstance(settings, list) and all(isinstance(t, str) for t in settings):
        return list(settings)
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: settings must be a mapping of key: value")
    plain = lambda v: "[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else str(v)  # noqa: E731
    return [f"{k}={plain(v)}" for k, v in settings.items()]


def _seeds(value, where: str) -> list[int]:
    seeds = value if isinstance(value, list) else [value]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{where}: seeds must be a whole number or a list of them, got {value!r}")
    return seeds


def _cell(raw, index: int, doc: dict, extra: list[str]) -> dict:
    """One cell: its row name, rule, seeds, settings, and its resolved run config and rule spec."""
    if not isinstance(raw, dict) or "rule" not in raw:
        raise ConfigError(f"cells[{index}]: a cell is a mapping with at least a rule (keys: {', '.join(CELL_KEYS)})")
    name = str(raw.get("name", raw["rule"]))
    where = f"cell {name!r} (cells[{index}])"
    _check_keys(raw, CELL_KEYS, where)
    settings = [*_tokens(doc.get("settings"), "spec"), *_tokens(raw.get("settings"), where)]
    presets = [f"{k}={raw.get(k, doc.get(k))}" for k in ("data", "model") if raw.get(k, doc.get(k)) is not None]
    tokens = [*presets, *settings, *extra, f"rule={raw['rule']}"]
    try:
        cfg = build_run_config(tokens)
        spec = resolve_rule(cfg)
    except BioscaleError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return {
        "row": name,
        "net": cfg.model.preset,
        "rule": raw["rule"],
        "data": cfg.data.name,
        "tokens": settings,
        "seeds": _seeds(raw.get("seeds", doc.get("seeds", [0])), where),
        "reference": _reference(raw.get("reference"), where),
        "cfg": cfg,
        "spec": spec,
    }


def _reference(value, where: str) -> float | None:
    if value is None or isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: reference must be a number (a published test error in %), got {value!r}")


def load_spec(path: Path, extra: list[str], only: list[str] | None = None) -> tuple[dict, list[dict]]:
    """The spec's document and its cells (``only``: those row names, in the spec's order), all validated."""
    doc = _read(path)
    _check_keys(doc, SPEC_KEYS, f"spec {path}")
    if not isinstance(doc.get("cells"), list) or not doc["cells"]:
        raise ConfigError(f"spec {path}: needs a non-empty list of cells")
    cells = [_cell(raw, i, doc, extra) for i, raw in enumerate(doc["cells"])]
    names = [c["row"] for c in cells]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"spec {path}: two cells are named {duplicate!r}; give each a distinct name")
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ConfigError(f"cells=[...]: spec {path} has no cell {unknown[0]!r}; valid: {', '.join(names)}")
        cells = [c for c in cells if c["row"] in only]
    return doc, cells
