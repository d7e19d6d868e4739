"""pc and ep under the commands researchers use: sweep (their search spaces) and reproduce (a spec's
cells). Exact resume and 2 processes = 1 are the kit's checks (tests/test_rule_pc.py, test_rule_ep.py);
compare is the README's main command."""

import json

import pytest
import yaml
from conftest import TINY, run_cli

FAST = {"pc": ["rules.pc.steps=5"], "ep": ["rules.ep.free_steps=8", "rules.ep.nudged_steps=4"]}


@pytest.mark.parametrize("rule", ["pc", "ep"])
def test_a_sweep_searches_the_rules_settling_settings(tmp_path, rule):
    folder = tmp_path / "sweep"
    result = run_cli(
        "sweep", f"rule={rule}", *TINY, *FAST[rule], "trainer.epochs=1", "sweep.trials=2", f"sweep.dir={folder}"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads((folder / "sweep.json").read_text())
    assert [t["status"] for t in doc["trials"]] == ["complete"] * 2
    searched = {"pc": "rules.pc.state_lr", "ep": "rules.ep.beta"}[rule]
    assert all(searched in t["settings"] for t in doc["trials"]), doc["trials"][0]["settings"]


def test_a_spec_reproduces_pc_and_ep_beside_bp(tmp_path):
    spec = tmp_path / "spec.yaml"
    settings = {"trainer.epochs": 1, "model.widths": [32, 32], "rules.ep.free_steps": 8, "rules.pc.steps": 5}
    cells = [{"name": r, "rule": r} for r in ("bp", "pc", "ep")]
    spec.write_text(yaml.safe_dump({"title": "energy rules", "data": "digits", "model": "digits_fc",
                                    "settings": settings, "seeds": [0], "cells": cells}))  # fmt: skip
    result = run_cli("reproduce", str(spec), "trainer.progress=false", f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    table = json.loads(next((tmp_path / "out").rglob("table.json")).read_text())
    assert {"bp", "pc", "ep"} <= set(json.dumps(table).replace('"', " ").split())
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "out").rglob("cells/*/summary.json")]
    assert len(summaries) == 3 and all(s["status"] == "completed" for s in summaries), summaries
