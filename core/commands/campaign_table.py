"""``bioscale reproduce SPEC.yaml [cells=[a,b]] [key=value ...]``: train a spec's cells and write its table.

Every cell is validated first (:func:`campaign.load_spec`); then each (cell, seed) is trained,
or taken from the cache that ``reproduce``'s paper tables use (a finished cell is reused, an
unfinished one resumed; see :func:`reproduce.run_cell`). The table (``table.md``,
``table.json``: best and final test error, final train error and, with a validation split, best
validation error, mean ± sd over the cell's seeds) is
written to ``<output_dir>/reproduce/<spec name>/``, the spec name being the spec's folder for
a file called ``spec.yaml`` and the file's stem otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import build_run_config
from ..config.resolve import split_tokens
from ..run_dir import write_json, write_text
from .campaign import load_spec
from .cell_code import note, stale_policy


def spec_name(path: Path) -> str:
    """``results/newer_rules/spec.yaml`` -> ``newer_rules``; ``x/cifar.yaml`` -> ``cifar``."""
    return path.resolve().parent.name if path.stem == "spec" else path.stem


def _row(cell: dict, summaries: list[dict]) -> dict:
    from .reproduce import _mean_sd, code_changes_of

    return {
        "row": cell["row"],
        "rule": cell["rule"],
        "data": cell["data"],
        "model": cell["net"],
        "settings": cell["tokens"],
        "seeds": cell["seeds"],
        "status": sorted({s["status"] for s in summaries}),
        "epochs": summaries[0]["epochs"],
        "best_test_error": _mean_sd([s["best_test_error"] for s in summaries]),
        "final_test_error": _mean_sd([s["final_test_error"] for s in summaries]),
        "final_train_error": _mean_sd([s["final_train_error"] for s in summaries]),
        "best_val_error": _mean_sd([s.get("best_val_error") for s in summaries]),  # with data.validation
        "test_error_at_best_val": _mean_sd([s.get("test_error_at_best_val") for s in summaries]),
        "reference": cell.get("reference"),
        "run_dirs": [s["run_dir"] for s in summaries],
        "code_changes": code_changes_of(summaries),
    }


def write_table(folder: Path, title: str, rows: list[dict], overrides: str, source: str | None = None) -> None:
    """``table.md`` (one line per cell) and ``table.json`` (the rows, run folders included). With a
    validation split, the test error at the best validation epoch (the checkpoint a protocol that
    selects on validation would test); with cells' ``reference``, the published figure beside it."""
    from .reproduce import _fmt

    val = any(r.get("test_error_at_best_val", (None,))[0] is not None for r in rows)
    ref = any(r.get("reference") is not None for r in rows)
    head = ["cell", "rule", "data", "model", "seeds", "best test err %", "final test err %", "final train err %"]
    head += ["best val err %", "test err % at best val"] if val else ["best val err %"]
    head += ["reference test err %"] if ref else []
    lines = [
        f"# {title}",
        "",
        f"Command-line overrides: `{overrides or 'none'}`; mean ± standard deviation over each cell's seeds.",
    ]
    lines += [f"References: {source}."] if ref and source else []
    lines += ["", "| " + " | ".join(head + ["epochs"]) + " |", "| --- " * 5 + "| ---: " * (len(head) - 4) + "|"]
    for r in rows:
        status = ("" if r["status"] == ["completed"] else f" ({', '.join(r['status'])})") + note(r["code_changes"])
        cols = [f"{r['row']}{status}", r["rule"], r["data"], r["model"], ",".join(map(str, r["seeds"]))]
        cols += [_fmt(*r[k]) for k in ("best_test_error", "final_test_error", "final_train_error", "best_val_error")]
        cols += [_fmt(*r["test_error_at_best_val"])] if val else []
        cols += ["" if r.get("reference") is None else f"{r['reference']:.2f}"] if ref else []
        lines.append("| " + " | ".join(cols + [str(r["epochs"])]) + " |")
    write_text(folder / "table.md", "\n".join(lines) + "\n")
    write_json(folder / "table.json", {"title": title, "overrides": overrides, "rows": rows})


def main(path_arg: str, tokens: list[str]) -> int:
    from .reproduce import _names_arg, run_cell

    pairs = split_tokens(tokens)
    only = _names_arg("cells", dict(pairs)["cells"]) if "cells" in dict(pairs) else None
    stale = stale_policy(dict(pairs).get("stale"))
    extra = [f"{k}={v}" for k, v in pairs if k not in ("cells", "stale")]
    path = Path(path_arg)
    doc, cells = load_spec(path, extra, only)  # every cell validated before any work
    folder = Path(build_run_config(extra).output_dir) / "reproduce" / spec_name(path)
    folder.mkdir(parents=True, exist_ok=True)
    index = json.loads((folder / "cells.json").read_text()) if (folder / "cells.json").is_file() else {}
    rows = [_row(cell, [run_cell(cell, seed, folder, index, stale) for seed in cell["seeds"]]) for cell in cells]
    write_table(folder, str(doc.get("title", spec_name(path))), rows, " ".join(extra), doc.get("reference_source"))
    print((folder / "table.md").read_text())
    print(folder, flush=True)
    return 0
