"""``reproduce`` never reuses a cell trained by other code silently: it marks the row (``stale=mark``, the
default) or trains the cell again (``stale=retrain``); the code is the run record's ``run_info.code``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from bioscale.commands import reproduce
from bioscale.errors import ConfigError

SPEC = """\
title: One rule on the shipped digits
data: digits
model: digits_fc
settings: {trainer.epochs: 1, data.limit_train: 200, model.widths: [16], observers.diagnostics.enabled: false,
           observers.console.enabled: false, trainer.progress: false}
seeds: [0]
cells:
  - {rule: fa}
"""


def _table(folder: Path) -> dict:
    return json.loads((folder / "table.json").read_text())


def _forge_code(run_dir: Path, **changes) -> None:
    """Rewrite the code a run folder says trained it, as if an older core or rule had."""
    path = run_dir / "config.yaml"
    doc = yaml.safe_load(path.read_text())
    code = doc["run_info"]["code"]
    for where, value in changes.items():
        section, name = where.split("__") if "__" in where else (where, None)
        (code[section][name] if name else code[section])["source_hash"] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture()
def trained(tmp_path, capsys):
    spec = tmp_path / "question" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC)
    out = f"output_dir={tmp_path / 'out'}"
    assert reproduce.main([str(spec), out]) == 0
    capsys.readouterr()
    folder = tmp_path / "out" / "reproduce" / "question"
    row = _table(folder)["rows"][0]
    assert row["code_changes"] == []  # trained just now by this code
    return spec, out, folder, Path(row["run_dirs"][0])


def test_a_cell_from_other_core_or_rule_code_is_reused_but_marked(trained, capsys):
    spec, out, folder, run_dir = trained
    _forge_code(run_dir, bioscale="0" * 64, rules__fa="1" * 64)
    assert reproduce.main([str(spec), out]) == 0
    assert "reproduce: " not in capsys.readouterr().err  # nothing trained
    row = _table(folder)["rows"][0]
    assert row["run_dirs"] == [str(run_dir)] and row["code_changes"] == ["bioscale sources", "rule fa sources"]
    assert "(trained by other code: bioscale sources; rule fa sources)" in (folder / "table.md").read_text()


def test_stale_retrain_trains_the_cell_again_and_keeps_the_old_folder(trained, capsys):
    spec, out, folder, run_dir = trained
    _forge_code(run_dir, rules__fa="1" * 64)
    assert reproduce.main([str(spec), out, "stale=retrain"]) == 0
    assert capsys.readouterr().err.count("reproduce: ") == 1
    row = _table(folder)["rows"][0]
    assert row["run_dirs"] != [str(run_dir)] and row["code_changes"] == [] and run_dir.is_dir()
    assert "other code" not in (folder / "table.md").read_text()


def test_a_run_without_a_code_record_is_marked(trained):
    spec, out, folder, run_dir = trained
    doc = yaml.safe_load((run_dir / "config.yaml").read_text())
    del doc["run_info"]["code"]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(doc))
    assert reproduce.main([str(spec), out]) == 0
    assert _table(folder)["rows"][0]["code_changes"] == ["no code fingerprint recorded"]


def test_a_bad_stale_policy_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="stale='sometimes'.*mark, retrain"):
        reproduce.main(["table1a", "stale=sometimes", f"output_dir={tmp_path}"])
    assert not (tmp_path / "reproduce").exists()


def _as_interrupted(run_dir: Path) -> None:
    """Make a finished cell look as if its run was stopped (its checkpoint stays)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))


def test_an_unfinished_cell_from_other_code_is_resumed_but_marked(trained, capsys):
    spec, out, folder, run_dir = trained
    _as_interrupted(run_dir)
    _forge_code(run_dir, rules__fa="1" * 64)
    assert reproduce.main([str(spec), out]) == 0
    assert "reproduce: " not in capsys.readouterr().err  # resumed, not trained anew
    row = _table(folder)["rows"][0]
    assert row["run_dirs"] == [str(run_dir)] and row["code_changes"] == ["rule fa sources"]
    assert "(trained by other code: rule fa sources)" in (folder / "table.md").read_text()


def test_stale_retrain_trains_an_unfinished_cell_from_other_code_anew(trained, capsys):
    spec, out, folder, run_dir = trained
    _as_interrupted(run_dir)
    _forge_code(run_dir, bioscale="0" * 64)
    assert reproduce.main([str(spec), out, "stale=retrain"]) == 0
    assert capsys.readouterr().err.count("reproduce: ") == 1
    row = _table(folder)["rows"][0]
    assert row["run_dirs"] != [str(run_dir)] and row["code_changes"] == []
