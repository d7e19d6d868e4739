"""``bioscale reproduce table1a|table1b|table2 [rules=[a,b]] [nets=[fc,lc]] [rows=[BP,...]] [seeds=K] [stale=mark|retrain]
[key=value ...]``,
or ``bioscale reproduce SPEC.yaml [cells=[a,b]] [key=value ...]`` for a results question's spec
(``commands/campaign.py``: its format; ``commands/campaign_table.py``: its table).

Runs the paper's grid for a table (its nets × the rows the installed rules declare, each with
its recipe) and writes ``table.md``, ``table.json`` and a learning-curves PNG per net, our
best and final test error beside the paper's, train error beside its bracketed one. A cell
is cached by its resolved config: a finished one is skipped on a rerun, an unfinished one
resumed, so a table can be built over several sittings. ``rules=[...]`` picks the rules
(default: every installed rule with a paper row); a rule the paper lacks gets a row of its own.
``nets=[...]`` picks the table's nets (default: all of them, in the paper's order), ``rows=[...]`` its
rows by label, any case (``"rows=[BP,DTP parallel]"``: one schedule of a rule that has two).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
from pathlib import Path

from .. import __version__
from ..config import build_run_config, resolve_observers, resolve_rule
from ..config.optimizer import without_added_defaults
from ..config.resolve import split_tokens
from ..config.saved import load_run_config
from ..config.schema import block_without_added_defaults, config_dict
from ..discovery import RULES_GROUP, discover, load_rule_class
from ..errors import ConfigError, DivergenceError, PluginFailure
from ..plotting import plot_curves, runs_title
from ..reference import paper_result, paper_results, row_rank
from ..run_dir import SUMMARY, read_metrics, write_json, write_text
from ..trainer import Trainer
from . import campaign, cell_code

FINAL = ("completed", "diverged", "failed")


def _names_arg(key: str, value: str) -> list[str]:
    names = [n.strip() for n in value.strip("[]").split(",") if n.strip()]
    if not names:
        raise ConfigError(f"{key}=[...] needs at least one name")
    return names


def _variants(cls) -> list[dict]:
    return [dict(v) for v in getattr(cls, "paper_variants", None) or [{}]]


def plan_cells(table: dict, rules: list[str], installed: dict, tokens: list[str]) -> list[dict]:
    """Every (net, row, rule, variant) cell: the paper's rows in its order, then extra rules'."""
    cells = []
    for net, preset in table["nets"].items():
        for name in rules:
            _, cls = load_rule_class(name, installed)
            for variant in _variants(cls):
                extra = [f"rules.{name}.{k}={v}" for k, v in variant.items()]
                cfg = build_run_config([f"data={table['data']}", f"model={preset}", *tokens, f"rule={name}", *extra])
                spec = resolve_rule(cfg)
                row = spec.paper_row or name
                paper = paper_result(table["data"], preset, spec.paper_row)
                if paper is None and net == "conv":
                    continue  # the paper trained only BP on its conv nets
                cells.append(
                    {
                        "net": net,
                        "preset": preset,
                        "row": row,
                        "rule": name,
                        "tokens": [*tokens, *extra],
                        "cfg": cfg,
                        "spec": spec,
                        "paper": paper,
                    }
                )
    return sorted(cells, key=lambda c: (list(table["nets"]).index(c["net"]), row_rank(c["spec"].paper_row), c["row"]))


def cell_key(cfg, spec, seed: int) -> str:
    """A hash of what determines a cell's numbers (not where it is written)."""
    plain = config_dict(cfg, resolve=True, enum_to_str=True)
    for k in ("output_dir", "name", "observers"):
        plain.pop(k, None)
    for k in (
        "progress",
        "log_every",
        "checkpoint",
        "backend",
    ):  # where output goes, how processes talk: not what is computed
        plain["trainer"].pop(k, None)
    plain["data"].pop("root", None)
    plain["model"]["blocks"] = [block_without_added_defaults(b) for b in plain["model"]["blocks"]]
    plain["bioscale"] = __version__
    plain["seed"] = seed
    plain["rules"] = {spec.name: without_added_defaults(spec.config, config_dict(spec.config, enum_to_str=True))}
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]


def run_cell(cell: dict, seed: int, folder: Path, index: dict, stale: str = "mark") -> dict:
    """The cell's summary: from the cache when it completed, resumed when it did not, else trained. A cached
    cell that other code trained (in part) carries ``code_changes`` (``stale=mark``) or is trained again from
    scratch (``stale=retrain``)."""
    cfg = cell["cfg"].copy()
    cfg.seed = seed
    key = cell_key(cfg, cell["spec"], seed)
    known = index.get(key)
    if known and (Path(known) / SUMMARY).is_file():
        summary = json.loads((Path(known) / SUMMARY).read_text())
        changes = cell_code.changes_since(Path(known), cell["spec"].name)
        retrain = bool(changes) and stale == "retrain"
        if summary["status"] in FINAL and not retrain:
            return {**summary, "code_changes": changes}  # a diverged or failed cell would end the same way again
        if summary["status"] not in FINAL and not retrain and (Path(known) / "checkpoint.pt").is_file():
            rcfg, rspec = load_run_config(Path(known), [])
            resumed = Trainer.resume(Path(known), rcfg, rspec, resolve_observers(rcfg)).fit()
            return {**resumed, "code_changes": changes}  # its first epochs came from the recorded code
    cfg.output_dir = str(folder / "cells")
    cfg.name = key
    print(f"[bioscale] reproduce: {cell['net']} / {cell['row']} (seed {seed})", file=sys.stderr, flush=True)
    trainer = Trainer.create(cfg, cell["spec"], resolve_observers(cfg))
    index[key] = str(trainer.run_dir)
    write_json(folder / "cells.json", index)
    try:
        return trainer.fit()
    except (DivergenceError, PluginFailure) as exc:  # the cell's result; the table goes on
        print(f"bioscale: warning: {cell['net']} / {cell['row']}: {exc}", file=sys.stderr, flush=True)
        assert trainer.run_dir is not None  # create sets it
        return json.loads((trainer.run_dir / SUMMARY).read_text())


def code_changes_of(summaries: list[dict]) -> list[str]:
    """Every code change any of a row's cached cells was trained before (sorted, once each)."""
    return sorted({change for s in summaries for change in s.get("code_changes", [])})


def _mean_sd(values: list) -> tuple:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _fmt(mean, sd) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")


def main(args: list[str]) -> int:
    if args and campaign.is_spec_path(args[0]):  # a results question's spec (commands/campaign.py)
        from . import campaign_table

        return campaign_table.main(args[0], args[1:])
    name, table = _table_arg(args)
    pairs = split_tokens(args[1:])
    options = {k: v for k, v in pairs if k in ("rules", "nets", "rows", "seeds", "stale")}
    run_tokens = [f"{k}={v}" for k, v in pairs if k not in options]
    installed = discover(RULES_GROUP)
    if "nets" in options:
        table = _pick_nets(name, table, options["nets"])
    rules = _names_arg("rules", options["rules"]) if "rules" in options else None
    if rules is None:
        rules = [n for n in sorted(installed) if _has_paper_row(n, installed)]
    seeds = _seeds_arg(options)
    stale = cell_code.stale_policy(options.get("stale"))
    cells = plan_cells(table, rules, installed, run_tokens)  # every cell validated before any work
    if "rows" in options:
        cells = _pick_rows(cells, options["rows"])
    base_seed = cells[0]["cfg"].seed
    folder = Path(build_run_config([*run_tokens, "rule=" + rules[0]]).output_dir) / "reproduce" / name
    folder.mkdir(parents=True, exist_ok=True)
    index = json.loads((folder / "cells.json").read_text()) if (folder / "cells.json").is_file() else {}
    rows, curves = _run_cells(cells, base_seed, seeds, folder, index, stale)
    budget = " ".join(run_tokens) or "each rule's recipe and the default budget"
    _write(folder, name, table, rows, curves, budget, seeds)
    print((folder / "table.md").read_text())
    print(folder, flush=True)
    return 0


def _table_arg(args: list[str]) -> tuple[str, dict]:
    """The table ``args`` name first, with its name; a ConfigError when none or an unknown one is named."""
    if not args or "=" in args[0]:
        raise ConfigError(
            f"name a table or a spec file: bioscale reproduce {'|'.join(paper_results()['tables'])}|SPEC.yaml [key=value ...]"
        )
    name = args[0]
    tables = paper_results()["tables"]
    if name not in tables:
        raise ConfigError(f"unknown table {name!r}; valid: {', '.join(tables)}, or a spec file (*.yaml)")
    return name, tables[name]


def _pick_nets(name: str, table: dict, value: str) -> dict:
    """``table`` with only the nets ``nets=value`` names (each one the table has)."""
    nets = _names_arg("nets", value)
    unknown = [n for n in nets if n not in table["nets"]]
    if unknown:
        raise ConfigError(f"nets={value}: {name} has no net {unknown[0]!r}; valid: {', '.join(table['nets'])}")
    return {**table, "nets": {n: p for n, p in table["nets"].items() if n in nets}}


def _pick_rows(cells: list[dict], value: str) -> list[dict]:
    """The cells whose row label ``rows=value`` names (case aside); a ConfigError naming a label no cell has."""
    names = _names_arg("rows", value)
    wanted = [n.lower() for n in names]
    labels = list(dict.fromkeys(c["row"] for c in cells))
    unknown = [n for n in names if n.lower() not in {label.lower() for label in labels}]
    if unknown:
        raise ConfigError(f"rows={value}: no row {unknown[0]!r} for these rules; valid: {', '.join(labels)}")
    return [c for c in cells if c["row"].lower() in wanted]


def _seeds_arg(options: dict) -> int:
    """``seeds=K`` (default 1), a whole number >= 1."""
    try:
        seeds = int(options.get("seeds", 1))
    except ValueError:
        raise ConfigError(f"seeds={options['seeds']!r} must be a whole number") from None
    if seeds < 1:
        raise ConfigError(f"seeds={seeds} must be >= 1")
    return seeds


def _run_cells(
    cells: list[dict], base_seed: int, seeds: int, folder: Path, index: dict, stale: str
) -> tuple[list[dict], dict]:
    """Each cell's runs with seeds ``base_seed`` .. ``base_seed + seeds - 1``: the table's rows and,
    per net, each row's first-seed learning curve."""
    rows: list[dict] = []
    curves: dict[str, dict] = {}
    for cell in cells:
        summaries = [run_cell(cell, base_seed + s, folder, index, stale) for s in range(seeds)]
        rows.append(_row(cell, summaries, seeds))
        curves.setdefault(cell["net"], {})[cell["row"]] = read_metrics(Path(summaries[0]["run_dir"]))
    return rows, curves


def _row(cell: dict, summaries: list[dict], seeds: int) -> dict:
    """The table row of one cell from its runs' summaries."""
    return {
        "net": cell["net"],
        "model": cell["preset"],
        "row": cell["row"],
        "rule": cell["rule"],
        "status": sorted({s["status"] for s in summaries}),
        "settings": cell["tokens"],
        "seeds": seeds,
        "best_test_error": _mean_sd([s["best_test_error"] for s in summaries]),
        "final_test_error": _mean_sd([s["final_test_error"] for s in summaries]),
        "final_train_error": _mean_sd([s["final_train_error"] for s in summaries]),
        "paper": cell["paper"],
        "epochs": summaries[0]["epochs"],
        "run_dirs": [s["run_dir"] for s in summaries],
        "code_changes": code_changes_of(summaries),
    }


def _has_paper_row(name: str, installed: dict) -> bool:
    try:
        _, cls = load_rule_class(name, installed)
    except Exception:
        return False
    return getattr(cls, "paper_row", None) is not None


def _write(folder: Path, name: str, table: dict, rows: list, curves: dict, budget: str, seeds: int) -> None:
    paper = lambda r, k: "-" if not r["paper"] or r["paper"].get(k) is None else f"{r['paper'][k]:.2f}"  # noqa: E731
    lines = [
        f"# {name}: {table['title']}",
        "",
        f"Budget and overrides: `{budget}`; {seeds} seed(s) per cell "
        f"(mean ± standard deviation over seeds; the paper reports single runs).",
        "",
        "| net | row | best test err % | final test err % | paper test err % | final train err % | paper train err % | epochs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        status = ("" if r["status"] == ["completed"] else f" ({', '.join(r['status'])})") + cell_code.note(
            r["code_changes"]
        )
        lines.append(
            f"| {r['net']} | {r['row']}{status} | {_fmt(*r['best_test_error'])} | {_fmt(*r['final_test_error'])} | "
            f"{paper(r, 'test_error')} | {_fmt(*r['final_train_error'])} | {paper(r, 'train_error')} | {r['epochs']} |"
        )
    write_text(folder / "table.md", "\n".join(lines) + "\n")
    write_json(
        folder / "table.json", {"table": name, "title": table["title"], "budget": budget, "seeds": seeds, "rows": rows}
    )
    for net, by_row in curves.items():  # each row's first seed, titled from what the runs recorded
        runs = [r["run_dirs"][0] for r in rows if r["net"] == net]
        plot_curves(
            by_row, folder / f"curves_{net}.png", f"{name}, {net} net, each row's learning curves: {runs_title(runs)}"
        )
