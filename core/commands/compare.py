"""``bioscale compare [RULE ...] [key=value ...]``: several rules, same data, model and seed.

A rule argument is a rule name, optionally with settings for that entry only:
``dtp:schedule=parallel,alpha=0.1``. With no rule argument every installed rule runs.
Writes one run folder per entry inside a comparison folder, plus ``comparison.md``,
``comparison.json`` and ``comparison.png``; prints the table, then the folder last.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from bioscale.datasets import load_data

from ..config import build_run_config, resolve_observers, resolve_rule
from ..config.schema import config_dict
from ..discovery import RULES_GROUP, find_entries
from ..errors import ConfigError, DivergenceError, PluginError
from ..plotting import plot_curves
from ..reference import row_rank
from ..run_dir import create_run_dir, write_json, write_text
from ..trainer import Trainer, resolve_device

ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_\-]+)(?::(?P<settings>.+))?$")


def split_args(args: list[str]) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """Separate rule entries ``(label, name, extra tokens)`` from global ``key=value`` tokens."""
    entries, tokens = [], []
    for arg in args:
        match = ENTRY.match(arg)
        if match and ("=" not in arg or ":" in arg.split("=", 1)[0]):
            name, settings = match["name"], match["settings"]
            extra = []
            for item in _split_settings(settings) if settings else []:
                if "=" not in item:
                    raise ConfigError(f"in {arg!r}: expected key=value after ':', got {item!r}")
                extra.append(f"rules.{name}.{item.strip()}")
            entries.append((arg, name, extra))
        else:
            tokens.append(arg)
    return entries, tokens


def _split_settings(settings: str) -> list[str]:
    """``"a=1,b=[x,y]"`` → ``["a=1", "b=[x,y]"]``: commas inside brackets belong to a list value."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(settings):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(settings[start:i])
            start = i + 1
    items.append(settings[start:])
    return items


def default_rules() -> list[str]:
    """Every installed rule that runs on its defaults, in the paper's row order (by the row each
    declares with its default config), then rules the paper lacks by name. Composite rules
    (``uses_rules``, e.g. ``mix``) need their layers named, so they are compared only when named."""
    entries = {name: found[0] for name, found in find_entries(RULES_GROUP).items()}
    entries = {name: e for name, e in entries.items() if not _is_composite(e)}
    return sorted(entries, key=lambda n: (row_rank(_default_row(entries[n])), n))


def _is_composite(entry) -> bool:
    try:
        return getattr(entry.load(), "uses_rules", None) is not None
    except Exception:  # a broken plugin is listed and skipped later, with its error
        return False


def _default_row(entry) -> str | None:
    try:
        cls = entry.load()
        row = getattr(cls, "paper_row", None)
        return row(cls.Config()) if callable(row) else row
    except Exception:  # a broken plugin sorts last; running it reports its error
        return None


def format_table(rows: list[dict]) -> str:
    """Markdown table; a ``paper`` column (Bartunov et al. 2018, Table 1) when any row has one."""
    with_paper = any(r.get("paper_test_error") is not None for r in rows)
    head = "| rule | best test err % | final test err % | final train err % | s/epoch | epochs |"
    sep = "| --- | ---: | ---: | ---: | ---: | ---: |"
    if with_paper:
        head += " paper test err % |"
        sep += " ---: |"
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [head, sep]
    for r in rows:
        status = "" if r.get("status", "completed") == "completed" else f" ({r['status']})"
        line = (
            f"| {r['label']}{status} | {fmt(r.get('best_test_error'))} | {fmt(r.get('final_test_error'))} | "
            f"{fmt(r.get('final_train_error'))} | {fmt(r.get('seconds_per_epoch'))} | {r.get('epochs')} |"
        )
        if with_paper:
            line += f" {fmt(r.get('paper_test_error'))} |"
        lines.append(line)
    return "\n".join(lines)


def main(args: list[str]) -> int:
    out, table = run_comparison(args)
    print(table)
    print(f"plot: {out / 'comparison.png'}")
    print(out, flush=True)
    return 0


def run_comparison(args: list[str]) -> tuple[Path, str]:
    """Train every rule ``args`` name (``RULE[:k=v,...]`` and shared ``key=value``) on the same data,
    model and seed; returns the comparison folder and its markdown table."""
    entries, tokens = split_args(args)
    chosen = bool(entries)
    if not entries:
        entries = [(name, name, []) for name in default_rules()]
        if not entries:
            raise ConfigError(
                "no rules installed; install a rule distribution (pip install -e plugins/<rule>) or name a rule"
            )
    planned, broken = _plan(entries, tokens, chosen)
    first = planned[0][1]
    device = resolve_device(first.trainer.device)
    data = load_data(first.data, device)
    out = create_run_dir(first.output_dir, ["compare", first.data.name, first.model.preset, f"s{first.seed}"])
    rows, curves = [], {}
    for label, cfg, rule_spec, observers in planned:
        cfg.output_dir = str(out)
        cfg.name = re.sub(r"[^A-Za-z0-9_.=]+", "_", label.split(":", 1)[1]) if ":" in label else ""
        print(f"[bioscale] compare: training {label}", file=sys.stderr, flush=True)
        trainer = Trainer.create(cfg, rule_spec, observers, data=data)
        try:
            summary = trainer.fit()
        except DivergenceError as exc:  # a row of the table, as the paper's tables have them; the others go on
            print(f"bioscale: warning: {label}: {exc}", file=sys.stderr, flush=True)
            assert trainer.run_dir is not None  # create sets it
            summary = json.loads((trainer.run_dir / "summary.json").read_text())
        rows.append({"label": label, **summary})
        curves[label] = trainer.history
    return out, _write_comparison(out, first, tokens, rows, curves, broken)


def _plan(entries: list, tokens: list[str], chosen: bool) -> tuple[list, list[tuple[str, str]]]:
    """Every entry's ``(label, cfg, rule spec, observers)``, validated before any work, and the
    ``(rule, error)`` of each broken plugin; with no rule named (``chosen`` False) a broken plugin
    is listed and skipped, else its error is raised."""
    planned, broken = [], []
    for label, name, extra in entries:
        cfg = build_run_config(tokens + extra + [f"rule={name}"])
        try:
            planned.append((label, cfg, resolve_rule(cfg), resolve_observers(cfg)))
        except PluginError as exc:
            if chosen:
                raise
            broken.append((name, str(exc)))
            print(
                f"bioscale: warning: skipping rule {name!r}, its plugin is broken: {exc}", file=sys.stderr, flush=True
            )
    if not planned:
        raise PluginError("no installed rule loads: " + "; ".join(f"{n}: {e}" for n, e in broken))
    return planned, broken


def _write_comparison(
    out: Path, first, tokens: list[str], rows: list[dict], curves: dict, broken: list[tuple[str, str]]
) -> str:
    """Write ``comparison.md``, ``.json`` and ``.png`` into ``out``; return the table."""
    table = format_table(rows)
    if broken:
        table += "\n\nNot run (broken plugins): " + "; ".join(f"{name}: {error}" for name, error in broken)
    title = f"{first.data.name} / {first.model.preset}, {first.trainer.epochs} epochs, seed {first.seed}"
    write_text(out / "comparison.md", f"# {title}\n\n{table}\n\nOverrides: {' '.join(tokens) or '(none)'}\n")
    write_json(
        out / "comparison.json",
        {
            "title": title,
            "overrides": tokens,
            "rows": rows,
            "broken": [{"rule": n, "error": e} for n, e in broken],
            "config": config_dict(first, enum_to_str=True),
        },
    )
    plot_curves(
        curves,
        out / "comparison.png",
        f"Learning curves of {len(curves)} rules: data {first.data.name}, "
        f"model {first.model.preset}, {first.trainer.epochs} epochs, seed {first.seed}",
    )
    return table
