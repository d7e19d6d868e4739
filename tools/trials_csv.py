"""Every trial under a results folder as one CSV: its numbers and its record (command, commit, machine, date).

    python tools/trials_csv.py results/recipes/bp > results/recipes/bp/trials.csv

Rows come from each ``sweep.json`` below the folder (``bioscale sweep``'s, and the older
``benchmarks/sweep.py``'s, which also lists trials that left only a log), then from every run
folder (``summary.json``) that no sweep lists. ``run`` is the trial's folder relative to the
repository root as it was when the CSV was written; ``launched`` is the run folder's time stamp
(UTC). ``--record PREFIX=TEXT`` fills commit/machine for the loose runs under ``PREFIX``
(repeatable), from the README that reported them, since older run folders record no commit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from pathlib import Path

COLUMNS = [
    "run",
    "rule",
    "data",
    "model",
    "seed",
    "status",
    "epochs",
    "best_test_error",
    "best_epoch",
    "final_test_error",
    "final_train_error",
    "best_val_error",
    "test_error_at_best_val",
    "seconds_per_epoch",
    "command",
    "commit",
    "machine",
    "launched",
]
NUMBERS = COLUMNS[5:14]  # the numeric columns a sweep record may carry


def _launched(run_dir: str) -> str:
    m = re.search(r"(\d{8})-(\d{6})", Path(run_dir or "").name)
    if not m:
        return ""
    d, t = m.groups()
    return f"{d[:4]}-{d[4:6]}-{d[6:]} {t[:2]}:{t[2:4]}:{t[4:]}"


def _machine(value) -> str:
    if isinstance(value, dict):
        return f"{value.get('cpu', '')}, {value.get('cores', '?')} cores, torch {value.get('torch', '?')}"
    return str(value or "")


def _sweep_rows(path: Path, base: Path) -> tuple[list[dict], set[Path]]:
    """Rows of one sweep.json and the run folders below it that those rows cover."""
    doc = json.loads(path.read_text())
    rows, covered = [], set()
    for t in doc.get("trials", []):
        if "label" in t:  # benchmarks/sweep.py: the run folder is <sweep>/<label> in results/
            folder, command = path.parent / t["label"], t.get("command", "")
        else:  # bioscale sweep: the run folder is recorded relative to the repository root
            folder = base / t["run_dir"] if t.get("run_dir") else path.parent / f"trial-{t['trial']}"
            command = "bioscale train " + " ".join(t.get("tokens", []))
        summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
        covered.add(folder.resolve())
        row = {**{k: summary.get(k, "") for k in COLUMNS}, **{k: t[k] for k in NUMBERS if t.get(k) is not None}}
        if "seconds" in t and not row.get("seconds_per_epoch"):
            row["seconds_per_epoch"] = round(t["seconds"] / max(int(t.get("epochs") or 1), 1), 2)
        row.update(
            run=os.path.relpath(folder, base),
            command=command,
            commit=doc.get("commit", ""),
            machine=_machine(doc.get("machine")),
            launched=_launched(t.get("run_dir") or summary.get("run_dir")),
        )
        rows.append(row)
    return rows, covered


def _loose_row(folder: Path, base: Path, records: dict) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    rel = os.path.relpath(folder, base)
    record = next((text for prefix, text in records.items() if rel.startswith(prefix)), "")
    return {
        **{k: summary.get(k, "") for k in COLUMNS},
        "run": rel,
        "command": "",
        "commit": record,
        "machine": "",
        "launched": _launched(summary.get("run_dir") or folder.name),
    }


def trials(folder: Path, base: Path, records: dict) -> list[dict]:
    rows, covered = [], set()
    for sweep in sorted(folder.rglob("sweep.json")):
        found, seen = _sweep_rows(sweep, base)
        rows += found
        covered |= seen
    for summary in sorted(folder.rglob("summary.json")):
        if summary.parent.resolve() not in covered:
            rows.append(_loose_row(summary.parent, base, records))
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--record", action="append", default=[], metavar="PREFIX=TEXT")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"trials_csv: {args.folder} is not a folder", file=sys.stderr)
        return 2
    base = Path.cwd()
    records = dict(r.split("=", 1) for r in args.record)
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(trials(args.folder, base, records))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
