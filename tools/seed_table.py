"""Markdown table of a folder of runs grouped by run name over seeds: best and final test error as
mean ± sample standard deviation (min-max), and seconds per epoch. Reads each run's summary.json;
runs that did not complete are listed, not averaged.

    python tools/seed_table.py RUNS_FOLDER   (runs named <time>-<rule>-<data>-<model>-s<seed>-<name>, as `bioscale train name=NAME` makes them)
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

RUN_NAME = re.compile(r"-s(\d+)-(?P<name>[^/]+)$")  # <time>-<rule>-<data>-<model>-s<seed>-<name>


def spread(values: list[float]) -> str:
    """``mean ± sd (min-max)`` with two decimals; one value prints alone."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    sd = statistics.stdev(values)
    return f"{statistics.mean(values):.2f} ± {sd:.2f} ({min(values):.2f}-{max(values):.2f})"


def collect(folder: Path) -> tuple[dict[str, list[dict]], list[str]]:
    groups: dict[str, list[dict]] = {}
    unfinished = []
    for path in sorted(folder.glob("*/summary.json")):
        match = RUN_NAME.search(path.parent.name)
        if match is None:
            continue
        summary = json.loads(path.read_text())
        if summary.get("status") != "completed":
            unfinished.append(f"{path.parent.name} ({summary.get('status')})")
            continue
        groups.setdefault(match["name"], []).append(summary)
    return groups, unfinished


def table(groups: dict[str, list[dict]]) -> str:
    rows = ["| run | seeds | best test err % | final test err % | s / epoch |", "| --- | --- | --- | --- | ---: |"]
    for name, runs in sorted(groups.items(), key=lambda item: statistics.mean(r["best_test_error"] for r in item[1])):
        seeds = ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))
        seconds = statistics.mean(r["seconds_per_epoch"] for r in runs)
        rows.append(
            f"| {name} | {seeds} | {spread([r['best_test_error'] for r in runs])} | "
            f"{spread([r['final_test_error'] for r in runs])} | {seconds:.1f} |"
        )
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python tools/seed_table.py RUNS_FOLDER", file=sys.stderr)
        return 2
    groups, unfinished = collect(Path(argv[0]))
    print(table(groups))
    for line in unfinished:
        print(f"not completed: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
