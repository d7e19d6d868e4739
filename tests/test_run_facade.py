"""What observers get: ``Run`` offers only rule_info, probe_gradients and inverse_error;
the run folder and config come as ``bioscale_run_start`` arguments; the hook contract does not
depend on the trainer."""

from __future__ import annotations

import ast
from pathlib import Path

import torch
from bioscale import hookimpl
from bioscale.config.resolve import ObserverSpec
from bioscale.run import Run
from bioscale.testing import fake_entry, new_trainer

CORE = Path(__file__).resolve().parents[1] / "core"


class Recorder:
    def __init__(self):
        self.seen = {}

    @hookimpl
    def bioscale_run_start(self, run, run_dir, config):
        self.seen = {"run": run, "run_dir": run_dir, "config": config}


class OnlyRun:  # an observer written against the one-argument hook still works
    def __init__(self):
        self.called = False

    @hookimpl
    def bioscale_run_start(self, run):
        self.called = True


def _spec(name, obj):
    return ObserverSpec(name, fake_entry(type(obj), name), lambda: obj, None)


def test_run_offers_three_things_only():
    public = {name for name in dir(Run) if not name.startswith("_")}
    assert public == {"rule_info", "probe_gradients", "inverse_error"}


def test_run_start_gets_the_folder_and_the_config(tmp_path):
    recorder, plain = Recorder(), OnlyRun()
    trainer = new_trainer(
        "bp", tmp_path, ["trainer.epochs=1"], observers=[_spec("rec", recorder), _spec("plain", plain)]
    )
    trainer.fit()
    assert plain.called
    assert recorder.seen["run"] is trainer.run and recorder.seen["run_dir"] == trainer.run_dir
    config = recorder.seen["config"]
    assert config["data"]["name"] == "digits" and config["trainer"]["epochs"] == 1
    assert config["run_info"]["train_examples"] == len(trainer.data.train)
    assert recorder.seen["run"].rule_info == {"name": "bp", "distribution": "bioscale-bp", "version": "0.1.0"}


def test_a_probe_by_size_uses_the_first_training_rows(tmp_path):
    trainer = new_trainer("fa", tmp_path, ["trainer.epochs=1"])
    x, y = next(iter(trainer.data.train.batches(16)))
    by_rows = trainer.run.probe_gradients(x, y)
    by_size = trainer.run.probe_gradients(batch_size=16)
    for a, b in zip(by_rows["rule"] + by_rows["exact"], by_size["rule"] + by_size["exact"]):
        assert (a is None and b is None) or torch.equal(a, b)
    assert by_size["step"].x.shape[0] == 16


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_contract_names_run_without_depending_on_the_trainer():
    assert ".trainer" not in _imports(CORE / "hookspecs.py") and ".run" in _imports(CORE / "hookspecs.py")
    assert not {".trainer", ".plugin_host", ".hookspecs"} & _imports(CORE / "run.py")
