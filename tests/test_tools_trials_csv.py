"""tools/trials_csv.py: every trial under a folder, with its numbers and its record, as one CSV."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location("trials_csv", ROOT / "tools" / "trials_csv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_folder(path: Path, **summary) -> None:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"rule": "bp", "status": "completed", "epochs": 2, **summary}))


def test_sweep_trials_log_only_trials_and_loose_runs_each_get_a_row(tmp_path, monkeypatch, capsys):
    q = tmp_path / "results" / "q"
    run_folder(q / "old" / "00-lr1e-3", best_test_error=2.5)  # benchmarks/sweep.py layout
    (q / "old" / "sweep.json").write_text(
        json.dumps(
            {
                "commit": "abc1234",
                "machine": {"cpu": "AMD EPYC", "cores": 2},
                "trials": [
                    {
                        "label": "00-lr1e-3",
                        "command": "bioscale train rule=bp lr",
                        "run_dir": "/x/20261127-161001-bp-s0",
                        "best_test_error": 2.4,
                    },
                    {
                        "label": "01-lr1",
                        "command": "bioscale train rule=bp big",
                        "run_dir": "/x/20261127-161002-bp-s0",
                        "status": "diverged",
                    },
                ],
            }
        )
    )
    run_folder(q / "new" / "trials" / "20261202-073513-bp-t000", best_val_error=3.1)  # bioscale sweep layout
    (q / "new" / "sweep.json").write_text(
        json.dumps(
            {
                "commit": "def5678",
                "machine": "Intel Xeon, 2 cores",
                "trials": [
                    {
                        "trial": 0,
                        "tokens": ["rule=bp", "seed=0"],
                        "run_dir": "results/q/new/trials/20261202-073513-bp-t000",
                        "best_val_error": 3.0,
                    }
                ],
            }
        )
    )
    run_folder(q / "loose" / "20261207-032541-bp-s0-default", best_test_error=1.9)
    monkeypatch.chdir(tmp_path)
    assert load_tool().main(["results/q", "--record", "results/q/loose/=1981ede; Intel Xeon"]) == 0
    rows = {r["run"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert set(rows) == {
        "results/q/old/00-lr1e-3",
        "results/q/old/01-lr1",
        "results/q/new/trials/20261202-073513-bp-t000",
        "results/q/loose/20261207-032541-bp-s0-default",
    }  # the trial run folder is not listed twice
    old = rows["results/q/old/00-lr1e-3"]
    assert (old["best_test_error"], old["commit"], old["command"]) == ("2.4", "abc1234", "bioscale train rule=bp lr")
    assert old["machine"].startswith("AMD EPYC, 2 cores") and old["launched"] == "2026-11-27 16:10:01"
    assert rows["results/q/old/01-lr1"]["status"] == "diverged"  # a trial that left only a log
    new = rows["results/q/new/trials/20261202-073513-bp-t000"]
    assert (new["command"], new["best_val_error"], new["commit"]) == ("bioscale train rule=bp seed=0", "3.0", "def5678")
    assert rows["results/q/loose/20261207-032541-bp-s0-default"]["commit"] == "1981ede; Intel Xeon"


def test_a_missing_folder_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert load_tool().main(["nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err
