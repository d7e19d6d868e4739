"""Learning curves of finished runs in one PNG (the plot `bioscale compare` draws).

    python tools/plot_runs.py OUT.png LABEL=RUN_OR_RESULT_FOLDER ... [--title TEXT]

Each folder must hold a ``metrics.jsonl`` (a run folder, or a trial folder under results/).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bioscale.plotting import plot_curves


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+", metavar="LABEL=FOLDER")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    curves = {}
    for item in args.runs:
        label, folder = item.split("=", 1)
        lines = (Path(folder) / "metrics.jsonl").read_text().splitlines()
        curves[label] = [json.loads(line) for line in lines if line.strip()]
    print(plot_curves(curves, Path(args.out), args.title))


if __name__ == "__main__":
    main()
