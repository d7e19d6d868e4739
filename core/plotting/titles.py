"""Figure titles from what the runs recorded (their ``summary.json``), not from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from ..run_dir import SUMMARY


def _span(values: list) -> str:
    try:
        distinct = sorted(set(values))
    except TypeError:  # mixed types (a summary without planned epochs): by their text
        distinct = sorted(set(values), key=str)
    return str(distinct[0]) if len(distinct) == 1 else ", ".join(map(str, distinct))


def runs_title(run_dirs: list) -> str:
    """``"data digits, model mnist_fc, 1 epoch, seed 0"`` from the runs' summaries (planned epochs;
    several values joined with commas). A run without a summary is left out; none: ``""``."""
    summaries = []
    for run_dir in run_dirs:
        path = Path(run_dir) / SUMMARY
        if path.is_file():
            summaries.append(json.loads(path.read_text()))
    if not summaries:
        return ""
    epochs = [s.get("epochs_planned", s.get("epochs")) for s in summaries]
    unit = "epoch" if set(epochs) == {1} else "epochs"
    return (
        f"data {_span([s['data'] for s in summaries])}, model {_span([s['model'] for s in summaries])}, "
        f"{_span(epochs)} {unit}, seed {_span([s['seed'] for s in summaries])}"
    )
