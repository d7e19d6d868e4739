"""The run record across sittings: resume appends a sitting instead of overwriting the record,
and a resume that would end before the epoch the run has reached is refused, changing nothing."""

from __future__ import annotations

import hashlib

from bioscale.cli import main
from bioscale.provenance import code_fingerprint, cpu_model
from bioscale.testing import new_trainer, resume_trainer
from conftest import TINY
from omegaconf import OmegaConf

QUIET = [
    *TINY,
    "observers.console.enabled=false",
    "observers.tensorboard.enabled=false",
    "observers.diagnostics.enabled=false",
]


def _run_info(run_dir) -> dict:
    return OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))["run_info"]


def _folder_digest(run_dir) -> str:
    """Every file's name and bytes (the lock file included)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(run_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_resume_below_the_reached_epoch_exits_2_and_changes_nothing(tmp_path, capsys):
    assert main(["train", "rule=bp", *QUIET, "trainer.epochs=2", f"output_dir={tmp_path}"]) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    capsys.readouterr()
    before = _folder_digest(run_dir)
    assert main(["resume", str(run_dir), "trainer.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "trainer.epochs=1" in err and "already trained 2 epochs" in err and "Traceback" not in err
    assert _folder_digest(run_dir) == before


def test_each_sitting_is_appended_and_the_first_record_is_kept(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=3"])
    first = _run_info(run.run_dir)
    assert [s["status"] for s in first["sittings"]] == ["running"]  # open from the moment the run exists
    run.fit(stop_after=1)
    paused = _run_info(run.run_dir)
    assert paused["sittings"][0]["status"] == "paused" and paused["sittings"][0]["ended"] is not None
    resumed = resume_trainer(run.run_dir, ["trainer.epochs=2"])
    resumed.fit()
    info = _run_info(run.run_dir)
    assert {k: v for k, v in info.items() if k != "sittings"} == {k: v for k, v in first.items() if k != "sittings"}
    assert info["sittings"][0] == paused["sittings"][0]
    (one, two) = info["sittings"]
    assert (one["from_epoch"], one["to_epoch"], two["from_epoch"], two["to_epoch"]) == (0, 1, 1, 2)
    assert two["status"] == "completed" and two["started"] >= one["ended"]
    for sitting in info["sittings"]:
        assert {"host", "cpu_model", "commit", "dirty", "source_hash", "device", "world_size"} <= set(sitting)


def test_fit_again_after_a_pause_opens_a_new_sitting(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=2"])
    run.fit(stop_after=1)
    run.fit()
    assert [s["status"] for s in _run_info(run.run_dir)["sittings"]] == ["paused", "completed"]


def test_a_record_from_before_sittings_gets_its_own_first_sitting(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=2"])
    run.fit(stop_after=1)
    path = run.run_dir / "config.yaml"
    saved = OmegaConf.to_container(OmegaConf.load(path))
    del saved["run_info"]["sittings"], saved["run_info"]["code"]  # what a run of c2898ec wrote
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(saved)))
    resume_trainer(run.run_dir).fit()
    sittings = _run_info(run.run_dir)["sittings"]
    assert [s["status"] for s in sittings] == ["unknown", "completed"]
    assert sittings[0]["device_name"] == saved["run_info"]["device_name"]


def test_the_record_names_the_code_and_the_cpu(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=1"])
    info = _run_info(run.run_dir)
    fingerprint = code_fingerprint(["bp"])
    assert info["code"]["bioscale"] == fingerprint["bioscale"] and info["code"]["rules"] == fingerprint["rules"]
    assert info["code"]["rules"]["bp"]["distribution"] == "bioscale-bp"
    assert info["cpu_model"] == cpu_model() and info["sittings"][0]["cpu_model"] == cpu_model()
    assert info["device_name"] == cpu_model()  # on the CPU: the model, not "x86_64"


def test_a_sitting_whose_process_died_is_marked_lost(tmp_path):
    run = new_trainer("bp", tmp_path, ["trainer.epochs=2"])
    run.fit(stop_after=1)
    path = run.run_dir / "config.yaml"
    saved = OmegaConf.to_container(OmegaConf.load(path))
    saved["run_info"]["sittings"][0].update(status="running", ended=None)  # what a SIGKILL in epoch 2 leaves
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(saved)))
    resume_trainer(run.run_dir).fit()
    sittings = _run_info(run.run_dir)["sittings"]
    assert [(s["status"], s["ended"] is None) for s in sittings] == [("lost", True), ("completed", False)]
