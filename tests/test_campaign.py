"""``bioscale reproduce SPEC.yaml``: a results question's cells from a spec, validated first, cached per cell."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from bioscale.commands import reproduce
from bioscale.errors import ConfigError

TINY_SPEC = """\
    title: Two rules on the shipped digits
    data: digits
    model: digits_fc
    settings: {trainer.epochs: 1, data.limit_train: 200, model.widths: [16], observers.diagnostics.enabled: false,
               observers.console.enabled: false, trainer.progress: false}
    seeds: [0]
    cells:
      - {rule: bp, seeds: [0, 1]}
      - {name: fa_wd, rule: fa, settings: {rules.fa.optimizer.weight_decay: 1.0e-4}}
"""


def write_spec(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def cells_trained(err: str) -> int:
    return err.count("reproduce: ")


def test_a_spec_trains_its_cells_writes_the_table_and_a_rerun_trains_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path / "question", TINY_SPEC)
    assert reproduce.main([str(spec), f"output_dir={tmp_path / 'out'}"]) == 0
    assert cells_trained(capsys.readouterr().err) == 3  # bp seeds 0 and 1, fa_wd seed 0
    folder = tmp_path / "out" / "reproduce" / "question"
    doc = json.loads((folder / "table.json").read_text())
    assert [(r["row"], r["rule"], r["seeds"], len(r["run_dirs"])) for r in doc["rows"]] == [
        ("bp", "bp", [0, 1], 2),
        ("fa_wd", "fa", [0], 1),
    ]
    assert all(r["status"] == ["completed"] and r["epochs"] == 1 for r in doc["rows"])
    assert doc["rows"][0]["best_test_error"][1] is not None  # two seeds give a spread
    fa_run = Path(doc["rows"][1]["run_dirs"][0])
    assert "weight_decay: 0.0001" in (fa_run / "config.yaml").read_text()
    table = (folder / "table.md").read_text()
    assert table.startswith("# Two rules on the shipped digits") and "| fa_wd | fa | digits | digits_fc | 0 |" in table
    assert doc["rows"][1]["best_val_error"] == [None, None] and table.splitlines()[-1].endswith("| - | 1 |")
    assert reproduce.main([str(spec), f"output_dir={tmp_path / 'out'}"]) == 0
    assert cells_trained(capsys.readouterr().err) == 0  # every cell came from the cache
    assert json.loads((folder / "table.json").read_text())["rows"] == doc["rows"]


def test_cells_picks_rows_and_a_new_setting_is_a_new_cell(tmp_path, capsys):
    spec = write_spec(tmp_path / "q", TINY_SPEC)
    out = f"output_dir={tmp_path / 'out'}"
    assert reproduce.main([str(spec), "cells=[fa_wd]", out]) == 0
    assert cells_trained(capsys.readouterr().err) == 1
    assert reproduce.main([str(spec), "cells=[fa_wd]", "trainer.batch_size=32", out]) == 0
    assert cells_trained(capsys.readouterr().err) == 1  # the cache key covers the settings
    assert reproduce.main([str(spec), "cells=[fa_wd]", "data.validation=100", out]) == 0
    row = json.loads((tmp_path / "out" / "reproduce" / "q" / "table.json").read_text())["rows"][0]
    assert row["best_val_error"][0] is not None  # a validation split gives the validation column


BAD = [
    ("cells: [{rule: nope}]", "cell 'nope'.*nope"),
    ("cells: [{rule: bp, model: mlp9}]", "cell 'bp'.*unknown model preset 'mlp9'"),
    ("cells: [{rule: bp, settings: {trainer.epoch: 1}}]", "cell 'bp'.*trainer.epoch"),
    ("cells: [{rule: bp, seed: 1}]", "cell 'bp'.*unknown key 'seed'; valid: name, rule"),
    ("cells: [{rule: bp, seeds: [a]}]", "seeds must be"),
    ("cells: [{rule: bp}, {rule: bp}]", "two cells are named 'bp'"),
    ("cells: []", "non-empty list of cells"),
    ("cell: [{rule: bp}]", "unknown key 'cell'; valid: title"),
    ("cells: [{rule: bp", "not valid YAML"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_a_bad_spec_is_refused_before_any_training(text, message, tmp_path, capsys):
    spec = write_spec(tmp_path / "q", "data: digits\n" + text + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        reproduce.main([str(spec), f"output_dir={tmp_path / 'out'}"])
    assert info.value.exit_status == 2
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_a_missing_spec_and_an_unknown_cell_name_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        reproduce.main([str(tmp_path / "absent.yaml")])
    spec = write_spec(tmp_path / "q", TINY_SPEC)
    with pytest.raises(ConfigError, match="no cell 'dfa'; valid: bp, fa_wd"):
        reproduce.main([str(spec), "cells=[dfa]", f"output_dir={tmp_path / 'out'}"])


def test_the_cli_exits_2_naming_the_culprit(tmp_path):
    from conftest import run_cli

    spec = write_spec(tmp_path / "q", "cells: [{rule: bp, model: mlp9}]\n")
    done = run_cli("reproduce", str(spec), f"output_dir={tmp_path / 'out'}")
    assert done.returncode == 2 and "mlp9" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "spec",
    sorted(p for p in Path(__file__).resolve().parents[1].glob("results/*/*.yaml") if "title:" in p.read_text()),
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_every_shipped_spec_validates(spec):
    from bioscale.commands.campaign import load_spec

    _, cells = load_spec(spec, [])
    assert cells and all(c["seeds"] for c in cells)


def test_the_table_shows_the_test_error_at_the_best_validation_epoch_and_the_reference(tmp_path, capsys):
    text = TINY_SPEC.replace("seeds: [0]\n", "seeds: [0]\n    reference_source: a paper's Table 1\n")
    text = text.replace("data.limit_train: 200,", "data.limit_train: 200, data.validation: 100, trainer.epochs: 2,")
    text = text.replace("trainer.epochs: 1, ", "").replace(
        "- {rule: bp, seeds: [0, 1]}", "- {rule: bp, reference: 12.5}"
    )
    spec = write_spec(tmp_path / "question", text)
    assert reproduce.main([str(spec), f"output_dir={tmp_path / 'out'}"]) == 0
    folder = tmp_path / "out" / "reproduce" / "question"
    table = (folder / "table.md").read_text()
    assert "| test err % at best val | reference test err % |" in table and "References: a paper's Table 1." in table
    row = json.loads((folder / "table.json").read_text())["rows"][0]
    summary = json.loads((Path(row["run_dirs"][0]) / "summary.json").read_text())
    assert row["test_error_at_best_val"][0] == summary["test_error_at_best_val"] and row["reference"] == 12.5
    assert "| 12.50 | 2 |" in table
    with pytest.raises(ConfigError, match="reference must be a number"):
        reproduce.main(
            [
                str(write_spec(tmp_path / "bad", text.replace("reference: 12.5", "reference: lots"))),
                f"output_dir={tmp_path}",
            ]
        )
