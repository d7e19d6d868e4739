"""Checkpoints: resume is exact; corrupt or mismatched checkpoints are refused untouched."""

import json

import pytest
import torch
from bioscale.errors import CheckpointError, ConfigError
from bioscale.testing import model_weights, new_trainer, resume_trainer
from conftest import TINY, run_cli, save_signed


@pytest.mark.parametrize("extra", [[], ["rules.bp.output_lr_scale=0.5"]], ids=["one_group", "scaled_output_group"])
def test_two_epochs_equal_one_plus_resume_one_with_constant_lr(tmp_path, extra):
    tokens = ["rules.bp.optimizer.schedule=constant", *extra]
    straight = new_trainer("bp", tmp_path / "a", tokens)
    straight.fit()
    half = new_trainer("bp", tmp_path / "b", [*tokens, "trainer.epochs=1"])
    half.fit()
    resumed = resume_trainer(half.run_dir, ["trainer.epochs=2"])
    resumed.fit()
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, model_weights(straight)[name]), name
    lines = [json.loads(l) for l in (half.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert lines[1]["test_error"] == straight.history[1]["test_error"]
    summary = json.loads((half.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2


def test_interrupted_cosine_run_resumes_exactly(tmp_path):
    straight = new_trainer("fa", tmp_path / "a", ["trainer.epochs=3"])
    straight.fit()
    paused = new_trainer("fa", tmp_path / "b", ["trainer.epochs=3"])
    paused.fit(stop_after=2)
    assert json.loads((paused.run_dir / "summary.json").read_text())["status"] == "paused"
    resumed = resume_trainer(paused.run_dir)
    assert resumed.epoch == 2 and resumed.global_step == paused.global_step
    resumed.fit()
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, model_weights(straight)[name]), name


@pytest.mark.parametrize(
    "settings",
    [
        ["name=sgd", "momentum=0.9", "nesterov=true", "schedule=multistep", "milestones=[1,2]", "weight_decay=1e-4"],
        ["name=sgd", "momentum=0.9", "schedule=cosine", "warmup_epochs=1.5"],
    ],
    ids=["sgd_multistep", "sgd_warmup_cosine"],
)
def test_interrupted_momentum_sgd_run_resumes_exactly(tmp_path, settings):
    tokens = ["trainer.epochs=3", "rules.fa.optimizer.lr=0.01", *(f"rules.fa.optimizer.{t}" for t in settings)]
    straight = new_trainer("fa", tmp_path / "a", tokens)
    straight.fit()
    paused = new_trainer("fa", tmp_path / "b", tokens)
    paused.fit(stop_after=2)
    state = torch.load(paused.run_dir / "checkpoint.pt", weights_only=False)
    assert all("momentum_buffer" in s for s in state["optimizer"]["state"].values())  # SGD's buffers are saved
    resumed = resume_trainer(paused.run_dir)
    assert isinstance(resumed.optimizer, torch.optim.SGD)
    resumed.fit()
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, model_weights(straight)[name]), name
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history]


def test_extending_a_multistep_run_keeps_its_milestones_where_they_were(tmp_path):
    tokens = ["rules.fa.optimizer.schedule=multistep", "rules.fa.optimizer.milestones=[1,3]"]
    straight = new_trainer("fa", tmp_path / "a", [*tokens, "trainer.epochs=4"])
    straight.fit()
    short = new_trainer("fa", tmp_path / "b", [*tokens, "trainer.epochs=2"])
    short.fit()
    extended = resume_trainer(short.run_dir, ["trainer.epochs=4"])
    extended.fit()  # milestones count epochs from the start: the re-planned run is the straight one
    for name, value in model_weights(extended).items():
        assert torch.equal(value, model_weights(straight)[name]), name


def test_metrics_written_after_the_checkpoint_are_cut_back_on_resume(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=2"])
    run.fit(stop_after=1)
    with open(run.run_dir / "metrics.jsonl", "a") as f:  # a crash after metrics, before the checkpoint
        f.write(json.dumps({"epoch": 2, "test_error": 99.0}) + "\n")
    resumed = resume_trainer(run.run_dir)
    assert [m["epoch"] for m in resumed.history] == [1]


def _snapshot(run_dir):
    return {p.name: p.read_bytes() for p in run_dir.iterdir()}


def test_corrupt_checkpoint_is_refused_and_nothing_is_overwritten(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=2"])
    run.fit(stop_after=1)
    ckpt = run.run_dir / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[: len(ckpt.read_bytes()) // 2])
    before = _snapshot(run.run_dir)
    with pytest.raises(CheckpointError, match="corrupt"):
        resume_trainer(run.run_dir)
    assert _snapshot(run.run_dir) == before
    result = run_cli("resume", run.run_dir)
    assert result.returncode == 2
    assert "corrupt" in result.stderr and str(ckpt) in result.stderr
    assert _snapshot(run.run_dir) == before


def test_mismatched_checkpoint_is_refused(tmp_path):
    a = new_trainer("bp", tmp_path / "a", ["trainer.epochs=2"])
    a.fit(stop_after=1)
    b = new_trainer("bp", tmp_path / "b", ["trainer.epochs=2", "model.widths=[16,16]"])
    b.fit(stop_after=1)
    (a.run_dir / "checkpoint.pt").write_bytes((b.run_dir / "checkpoint.pt").read_bytes())
    before = _snapshot(a.run_dir)
    with pytest.raises(CheckpointError, match="different run"):
        resume_trainer(a.run_dir)
    assert _snapshot(a.run_dir) == before


def test_checkpoint_with_wrong_tensor_shapes_is_refused(tmp_path):
    run = new_trainer("fa", tmp_path, ["trainer.epochs=2"])
    run.fit(stop_after=1)
    path = run.run_dir / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["rule"]["feedback"]["2"] = torch.zeros(3, 3)
    save_signed(state, path)
    with pytest.raises(CheckpointError, match="does not match"):
        resume_trainer(run.run_dir)


def test_resume_refuses_changes_outside_trainer(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=2"])
    run.fit(stop_after=1)
    with pytest.raises(ConfigError, match="trainer"):
        resume_trainer(run.run_dir, ["model.widths=[8]"])
    result = run_cli("resume", run.run_dir, "rules.bp.optimizer.lr=1")
    assert result.returncode == 2 and "Start a new run" in result.stderr


def test_resume_of_a_folder_without_a_run(tmp_path):
    result = run_cli("resume", tmp_path)
    assert result.returncode == 2 and "not a run folder" in result.stderr


def test_cli_resume_continues_and_prints_the_folder(tmp_path):
    first = run_cli(
        "train", "rule=bp", *TINY, "trainer.epochs=1", f"output_dir={tmp_path}", "observers.console.enabled=false"
    )
    assert first.returncode == 0, first.stderr
    run_dir = first.stdout.strip().splitlines()[-1]
    second = run_cli("resume", run_dir, "trainer.epochs=2")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().splitlines()[-1] == run_dir
    summary = json.loads((tmp_path / run_dir.split("/")[-1] / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["status"] == "completed"


def test_a_checkpoint_of_another_format_version_is_refused_naming_both(tmp_path):
    trainer = new_trainer("fa", tmp_path, ["trainer.epochs=1"])
    trainer.fit()
    path = trainer.run_dir / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    save_signed({**state, "version": state["version"] + 1}, path)
    before = path.read_bytes()
    with pytest.raises(
        CheckpointError, match=rf"format version {state['version'] + 1}; this bioscale reads {state['version']}"
    ):
        resume_trainer(trainer.run_dir)
    assert path.read_bytes() == before
