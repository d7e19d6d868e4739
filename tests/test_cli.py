"""The command line as users type it: train, compare, config, rules, observers."""

import json
from pathlib import Path

from conftest import TINY, run_cli


def test_train_writes_a_complete_run_folder_and_prints_it_last(tmp_path):
    result = run_cli("train", "rule=fa", *TINY, "trainer.epochs=2", "seed=3", f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path and run_dir.is_dir()
    assert {p.name for p in run_dir.iterdir()} - {"tensorboard"} == {
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "checkpoint.pt",
        ".lock",
    }
    metrics = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    for key in ("train_loss", "train_error", "test_error", "seconds"):
        assert key in metrics[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "rule",
        "data",
        "model",
        "epochs",
        "best_test_error",
        "final_test_error",
        "final_train_error",
        "seconds_per_epoch",
    ):
        assert summary[key] is not None, key
    assert summary["rule"] == "fa" and summary["epochs"] == 2 and summary["status"] == "completed"
    assert summary["best_test_error"] == min(m["test_error"] for m in metrics)
    config = (run_dir / "config.yaml").read_text()
    for fragment in (
        "rule: fa",
        "seed: 3",
        "distribution: bioscale-fa",
        "torch_version:",
        "device: cpu",
        "normalization:",
    ):
        assert fragment in config
    assert "[bioscale] epoch 2/2" in result.stderr


def test_compare_trains_each_rule_and_writes_table_and_plot(tmp_path):
    result = run_cli(
        "compare",
        "bp",
        "fa",
        "bp:optimizer.lr=0.01",
        *TINY,
        "trainer.epochs=2",
        f"output_dir={tmp_path}",
        "observers.console.enabled=false",
    )
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip().splitlines()[-1])
    assert (out / "comparison.png").stat().st_size > 10_000
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    assert [r["label"] for r in rows] == ["bp", "fa", "bp:optimizer.lr=0.01"]
    assert all(r["epochs"] == 2 and r["seconds_per_epoch"] > 0 for r in rows)
    assert "| bp:optimizer.lr=0.01 |" in result.stdout and "s/epoch" in result.stdout
    assert len([p for p in out.iterdir() if p.is_dir()]) == 3


def test_compare_validates_every_entry_before_training(tmp_path):
    result = run_cli("compare", "bp", "nosuchrule", *TINY, f"output_dir={tmp_path}")
    assert result.returncode == 2 and "nosuchrule" in result.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_config_command_prints_the_resolved_config_with_recipe():
    result = run_cli("config", "rule=bp", "model=mnist_fc", "data=mnist")
    assert result.returncode == 0, result.stderr
    assert "widths:\n  - 256" in result.stdout and "preset: mnist_fc" in result.stdout
    assert "lr: 0.0003" in result.stdout  # bp's recipe for mnist_fc


def test_rules_and_observers_listings():
    rules = run_cli("rules")
    assert rules.returncode == 0
    header, *lines = rules.stdout.strip().splitlines()
    assert header.split()[:4] == ["name", "distribution", "version", "status"]
    assert any(l.split()[:2] == ["bp", "bioscale-bp"] for l in lines)
    observers = json.loads(run_cli("observers", "--json").stdout)
    assert any(o["name"] == "console" and o["distribution"] == "bioscale" for o in observers)


def test_paper_reference_numbers_follow_data_model_and_the_row_each_rule_declares(tmp_path):
    from bioscale.reference import paper_test_error
    from bioscale.testing import new_trainer

    def row(rule, *tokens):
        return new_trainer(rule, tmp_path, tokens).rule_spec.paper_row

    assert row("bp") == "BP" and row("dfa") == "DFA"
    assert row("dtp", "rules.dtp.schedule=alternating") == "DTP alternating"
    assert row("aosdtp", "rules.aosdtp.schedule=parallel") == "AO-SDTP parallel"
    assert paper_test_error("mnist", "mnist_fc", "BP") == 1.48
    assert paper_test_error("mnist", "mnist_fc", "DTP alternating") == 1.83
    assert paper_test_error("cifar10", "cifar_lc", "FA") == 37.44
    assert paper_test_error("cifar10", "cifar_conv", "BP") == 31.87
    assert paper_test_error("digits", "digits_fc", "BP") is None
    assert paper_test_error("mnist", "mnist_fc", None) is None  # a rule that declares no row


def test_compare_orders_rules_by_the_paper_rows_they_declare():
    from bioscale.commands.compare import default_rules

    order = default_rules()
    assert order[:6] == ["bp", "fa", "dfa", "dtp", "sdtp", "aosdtp"]


def test_core_names_no_built_in_rule_outside_docs():
    """The core knows no rule by name: no string literal in core/ is a built-in rule's name."""
    import ast
    from pathlib import Path

    import bioscale

    names = {"bp", "fa", "dfa", "dtp", "sdtp", "aosdtp", "signsym", "kp", "wm", "ddtp", "ldrl", "mix", "diagnostics"}
    found = []
    for path in Path(bioscale.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        docstrings |= {
            id(n.value)
            for n in ast.walk(tree)  # the command line's help examples are docs too
            if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "EPILOG" for t in n.targets)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                words = set(node.value.replace(":", " ").replace(".", " ").replace("=", " ").split())
                if words & names:
                    found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert not found, found


def test_sigterm_stops_a_run_like_ctrl_c_keeping_checkpoint_and_summary(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bioscale",
            "train",
            "rule=dtp",
            *TINY,
            "trainer.epochs=100000",
            f"output_dir={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        metrics = []
        while time.monotonic() < deadline and not metrics:  # wait for the first finished epoch
            metrics = list(tmp_path.glob("*/metrics.jsonl"))
            time.sleep(0.2)
        assert metrics, "no epoch finished within 120 s"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM); the last checkpoint is kept" in stderr
    run_dir = metrics[0].parent
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert (run_dir / "checkpoint.pt").is_file()
    resumed = run_cli("resume", run_dir, "trainer.epochs=" + str(summary["epochs"] + 1))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
