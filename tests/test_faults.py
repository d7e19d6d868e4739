"""Faults: full disks, unwritable folders, plugins that raise, bad data and configs, damaged run
folders, concurrent resumes, broken pipes. Each ends with a clear error and a summary that says
what happened; nothing already written is lost."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from bioscale import RuleConfig, hookimpl
from bioscale.config.resolve import ObserverSpec
from bioscale.errors import CheckpointError, DataError, PluginFailure, StorageError, UsageError
from bioscale.run_lock import RunFolderBusy, RunLock
from bioscale.testing import fake_entry, model_weights, new_trainer, resume_trainer
from conftest import TINY, run_cli, save_signed


def summary_of(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


# -- the disk ------------------------------------------------------------------------------


def test_a_full_disk_during_a_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    trainer = new_trainer("fa", tmp_path, ["trainer.epochs=3"])
    trainer.fit(stop_after=1)
    good = (trainer.run_dir / "checkpoint.pt").read_bytes()

    real_fsync = os.fsync

    def full(fd):  # room for the small files, not for the checkpoint
        if os.fstat(fd).st_size > 8_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr("bioscale.checkpoint.os.fsync", full)
    with pytest.raises(StorageError, match=r"cannot write .*checkpoint.pt: No space left on device"):
        trainer.fit()
    monkeypatch.undo()
    assert (trainer.run_dir / "checkpoint.pt").read_bytes() == good
    assert not list(trainer.run_dir.glob(".*.tmp-*"))
    summary = summary_of(trainer.run_dir)
    assert summary["status"] == "failed" and "No space left" in summary["error"]
    assert summary["epochs"] == 1 == torch.load(trainer.run_dir / "checkpoint.pt", weights_only=True)["epoch"]
    resumed = resume_trainer(trainer.run_dir)  # the metrics line past the checkpoint is cut off
    resumed.fit()
    straight = new_trainer("fa", tmp_path / "straight", ["trainer.epochs=3"])
    straight.fit()
    assert all(torch.equal(v, model_weights(straight)[k]) for k, v in model_weights(resumed).items())


def test_a_full_disk_exits_5_naming_the_file(tmp_path):
    script = (
        "import errno, os, sys, bioscale.checkpoint as c\n"
        "real = os.fsync\n"
        "def full(fd):\n"
        "    if os.fstat(fd).st_size > 8_000: raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "    return real(fd)\n"
        "c.os.fsync = full\n"
        "from bioscale.cli import main\n"
        f"sys.exit(main(['train', 'rule=bp', *{TINY!r}, 'trainer.epochs=1', 'output_dir={tmp_path}']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 5, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    (run_dir,) = tmp_path.iterdir()
    assert summary_of(run_dir)["status"] == "failed"


def test_an_unwritable_output_folder_is_refused_before_the_data_is_read(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli(
        "train", "rule=bp", "data=mnist", f"data.root={tmp_path / 'no-data-here'}", f"output_dir={blocker / 'runs'}"
    )
    assert result.returncode == 2, result.stderr
    assert f"output_dir={blocker / 'runs'}: cannot write there" in result.stderr
    assert "Traceback" not in result.stderr and "mnist" not in result.stderr  # refused before the data


def test_stale_temp_files_of_killed_writers_are_removed_at_resume(tmp_path):
    trainer = new_trainer("bp", tmp_path, ["trainer.epochs=2"])
    trainer.fit(stop_after=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = trainer.run_dir / f".checkpoint.pt.tmp-{dead.stdout.strip()}"
    stale.write_bytes(b"x" * 1000)
    resume_trainer(trainer.run_dir).fit()
    assert not stale.exists()


# -- plugins that raise or return what cannot be saved --------------------------------------


@dataclass
class FlakyConfig(RuleConfig):
    fail_at_step: int = 5
    bad_state: bool = False


class FlakyRule:
    """BP that raises in its feedback hook at one step, or keeps state a checkpoint cannot hold."""

    Config = FlakyConfig

    def __init__(self, config):
        self.config = config

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        if step.index == self.config.fail_at_step:
            raise RuntimeError("the feedback went wrong")
        return step.layer_vjp(layer, grad_above)

    @hookimpl
    def bioscale_state_dict(self):
        return {"thing": object()} if self.config.bad_state else None


def test_a_rule_that_raises_mid_run_is_named_and_the_run_says_failed(tmp_path):
    trainer = new_trainer(fake_entry(FlakyRule, "flaky", "bioscale-flaky", "1.2"), tmp_path, ["trainer.epochs=2"])
    with pytest.raises(PluginFailure) as info:
        trainer.fit()
    assert info.value.exit_status == 4
    message = str(info.value)
    assert "rule 'flaky'" in message and "bioscale-flaky 1.2" in message and "bioscale_feedback_signal" in message
    assert "the feedback went wrong" in message
    summary = summary_of(trainer.run_dir)
    assert summary["status"] == "failed" and summary["error"] == message


def test_rule_state_that_cannot_load_is_refused_at_save_time(tmp_path):
    trainer = new_trainer(
        fake_entry(FlakyRule, "flaky"), tmp_path, ["rules.flaky.fail_at_step=-5", "rules.flaky.bad_state=true"]
    )
    with pytest.raises(
        PluginFailure, match=r"rule 'flaky'.*bioscale_state_dict returned state that cannot be loaded back"
    ):
        trainer.fit()
    assert not (trainer.run_dir / "checkpoint.pt").exists()
    assert summary_of(trainer.run_dir)["status"] == "failed" and summary_of(trainer.run_dir)["epochs"] == 0


class RaisingObserver:
    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        raise ValueError("cannot log")


def test_an_observer_that_raises_is_named(tmp_path):
    spec = ObserverSpec("loud", fake_entry(RaisingObserver, "loud", "bioscale-loud", "0.3"), RaisingObserver, None)
    trainer = new_trainer("bp", tmp_path, observers=[spec])
    with pytest.raises(
        PluginFailure,
        match=r"observer 'loud' \(bioscale-loud 0.3\) raised in bioscale_epoch_end: ValueError: cannot log",
    ):
        trainer.fit()
    assert summary_of(trainer.run_dir)["status"] == "failed"


# -- bad data ------------------------------------------------------------------------------


def _npz(path, **override):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (50, 8, 8), dtype=np.uint8),
        "y_train": np.arange(50) % 10,
        "x_test": rng.integers(0, 256, (20, 8, 8), dtype=np.uint8),
        "y_test": np.arange(20) % 10,
    }
    arrays.update(override)
    np.savez(path / "mnist.npz", **arrays)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"y_train": np.r_[-1, np.arange(49) % 10]}, "y_train[0] = -1 is not a class of mnist (0..9)"),
        ({"y_test": np.r_[100000, np.arange(19) % 10]}, "y_test[0] = 100000 is not a class of mnist"),
        ({"y_train": (np.arange(50) % 10).astype(np.float32)}, "y_train must hold integer class labels; got float32"),
        ({"y_train": np.arange(50) % 9}, "the test split has classes the training split lacks: [9]"),
        ({"x_test": np.zeros((0, 8, 8), np.uint8), "y_test": np.zeros(0, np.int64)}, "the test split is empty"),
    ],
)
def test_bad_labels_and_empty_splits_are_refused_before_training(tmp_path, override, fragment):
    _npz(tmp_path, **override)
    result = run_cli("train", "rule=bp", "data=mnist", f"data.root={tmp_path}", f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_data_error_is_a_usage_error():
    assert issubclass(DataError, UsageError)


# -- bad input at the command line ---------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["model.widths=[256,"], "cannot parse model.widths"),
        (["name=!!python/object/apply:os.system [echo hacked]"], "cannot parse name"),
        (["name=${nope}"], "Interpolation key 'nope' not found"),
        (["model=mnist_lc", "model.blocks.0.kernel=0"], "model.blocks[0].kernel must be >= 1, got 0"),
        (
            ["model=mnist_lc", "model.blocks.0.strides=2"],
            "valid keys under 'model.blocks.0': type, channels, kernel, stride, padding",
        ),
        (["seed=99999999999999999999"], "seed must be in [0, "),
        (["rules.bp.optimizer.lr=inf"], "rules.bp.optimizer.lr must be a finite number, got inf"),
        (["trainer.label_smoothing=nan"], "trainer.label_smoothing must be a finite number"),
        (
            ["model.blocks=[{type: conv, channels: 8, kernel: 9, stride: 1, padding: 0}]"],
            "convolution: input 8x8 too small for kernel 9",
        ),
        (
            ["model.blocks=[{type: lc, channels: 8, kernel: 9, stride: 1, padding: 0}]"],
            "locally connected layer: input 8x8 too small for kernel 9",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_culprit_with_nothing_written(tmp_path, args, fragment):
    result = run_cli("train", "rule=bp", *args, f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() and "hacked" not in result.stdout


# -- damaged run folders and resume --------------------------------------------------------


@pytest.fixture
def paused_run(tmp_path):
    trainer = new_trainer("bp", tmp_path, ["trainer.epochs=3"])
    trainer.fit(stop_after=1)
    return trainer.run_dir


def _files(run_dir) -> dict:
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("rule: [unclosed\n", "is unreadable"),
        ("rule: !!python/object/apply:os.system [echo hacked]\n", "is unreadable"),
        ("", "is not a run's config"),
        ("just a string\n", "is not a run's config"),
    ],
)
def test_a_damaged_config_yaml_is_refused_on_resume(paused_run, text, fragment):
    (paused_run / "config.yaml").write_text(text)
    before = _files(paused_run)
    result = run_cli("resume", paused_run)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert _files(paused_run) == before


@pytest.mark.parametrize("epoch", ["two", -5, 1e6, 0])
def test_a_checkpoint_with_a_bad_epoch_is_refused(paused_run, epoch):
    path = paused_run / "checkpoint.pt"
    save_signed({**torch.load(path, weights_only=True), "epoch": epoch}, path)
    before = _files(paused_run)
    with pytest.raises(CheckpointError, match=r"epoch is .*; expected an integer >= 1"):
        resume_trainer(paused_run)
    assert _files(paused_run) == before


def test_a_checkpoint_ahead_of_its_metrics_is_refused(paused_run):
    path = paused_run / "checkpoint.pt"
    save_signed({**torch.load(path, weights_only=True), "epoch": 1000}, path)
    with pytest.raises(CheckpointError, match=r"holds epochs \[1\], but the checkpoint is at epoch 1000"):
        resume_trainer(paused_run)


def test_a_flipped_bit_in_the_checkpoint_fails_its_checksum(paused_run):
    path = paused_run / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    weight = next(iter(state["model"].values()))
    weight.view(torch.int32).view(-1)[0] ^= 1 << 3  # one bit of one float
    torch.save(state, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="fails its checksum"):
        resume_trainer(paused_run)
    assert path.read_bytes() == before


def test_resume_overrides_are_checked_before_anything_is_written(paused_run):
    before = _files(paused_run)
    result = run_cli("resume", paused_run, "trainer.batch_size=0")
    assert result.returncode == 2 and "trainer.batch_size must be >= 1, got 0" in result.stderr
    assert _files(paused_run) == before
    assert run_cli("resume", paused_run, "observers.console.enabled=false").returncode == 0  # still resumable


def test_a_cut_off_last_metrics_line_is_dropped_on_resume(paused_run):
    with open(paused_run / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 2, "train_lo')  # a kill during an append
    resumed = resume_trainer(paused_run)
    resumed.fit()
    lines = [json.loads(l) for l in (paused_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3]


def test_a_corrupt_metrics_line_before_the_last_is_refused(paused_run):
    text = (paused_run / "metrics.jsonl").read_text()
    (paused_run / "metrics.jsonl").write_text("garbage\n" + text)
    with pytest.raises(CheckpointError, match="line 1 is not JSON"):
        resume_trainer(paused_run)


def test_extending_a_run_warns_that_the_schedule_is_re_planned(paused_run, capsys):
    resume_trainer(paused_run, ["trainer.epochs=5"]).fit()
    err = capsys.readouterr().err
    assert "planned for 3 epochs and now runs to 5" in err and "re-planned" in err and "start a new run" in err
    assert summary_of(paused_run)["epochs"] == 5


def test_a_second_process_cannot_resume_a_run_folder_in_use(paused_run):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from bioscale.run_lock import RunLock; "
            f"lock = RunLock({str(paused_run)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _files(paused_run)
        with pytest.raises(RunFolderBusy, match=rf"in use by process {holder.pid}"):
            resume_trainer(paused_run)
        assert _files(paused_run) == before
    finally:
        holder.kill()
        holder.wait()
    resume_trainer(paused_run).fit()  # the kernel dropped the dead holder's lock


def test_the_lock_of_a_killed_process_is_taken_over_with_a_message(paused_run, capsys):
    (paused_run / ".lock").write_text("999999999")  # a pid left by a SIGKILL; no flock is held
    resume_trainer(paused_run).fit()
    assert "taking over the run folder lock of process 999999999" in capsys.readouterr().err
    lock = RunLock(paused_run)
    lock.acquire()
    lock.release()


# -- output --------------------------------------------------------------------------------


def test_a_closed_stdout_does_not_stop_the_run(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bioscale", "train", "rule=bp", *TINY, "trainer.epochs=2", f"output_dir={tmp_path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| head -0`: the reader is gone before the first line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    (run_dir,) = tmp_path.iterdir()
    assert summary_of(run_dir)["status"] == "completed"


def test_compare_skips_a_broken_plugin_and_lists_it(fake_site, tmp_path, capsys):
    from bioscale.commands import compare

    fake_site.add_distribution(
        "bioscale-broken",
        "0.1",
        "bioscale_broken",
        "import this_module_does_not_exist\n",
        {"bioscale.rules": {"broken": "bioscale_broken:Rule"}},
    )
    assert (
        compare.main(
            [*TINY, "trainer.epochs=1", f"output_dir={tmp_path / 'out'}", "observers.diagnostics.enabled=false"]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "skipping rule 'broken'" in out.err and "Not run (broken plugins): broken" in out.out
    assert "| bp |" in out.out and "| aosdtp |" in out.out
    (folder,) = (tmp_path / "out").iterdir()
    assert json.loads((folder / "comparison.json").read_text())["broken"][0]["rule"] == "broken"


class RaisingAtEnd:
    @hookimpl
    def bioscale_run_end(self, run, summary):
        raise RuntimeError("cannot close")


class HearsTheEnd:
    endings = []

    @hookimpl
    def bioscale_run_end(self, run, summary):
        HearsTheEnd.endings.append(summary["status"])


def test_every_observer_hears_the_end_even_after_one_raised(tmp_path, capsys):
    specs = [ObserverSpec(n, fake_entry(c, n), c, None) for n, c in (("a", RaisingAtEnd), ("b", HearsTheEnd))]
    trainer = new_trainer("bp", tmp_path, observers=specs)
    trainer.fit()
    assert HearsTheEnd.endings == ["completed"]
    assert "observer 'a'" in capsys.readouterr().err and not trainer.lock.held
