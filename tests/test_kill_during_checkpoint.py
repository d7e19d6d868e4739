"""Fault injection: a run is killed (SIGKILL, SIGTERM, SIGINT) from inside the ``fsync`` of a
checkpoint write, i.e. after the new checkpoint's bytes went to a temp file and before it
replaces the old one: the kill lands mid-write every time. Six trials (three signals, the
checkpoint of epoch 2 or of epoch 3); each checks what is on disk, then that the folder resumes
to the final weights of a straight run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bioscale.checkpoint import load_checkpoint
from bioscale.testing import model_weights, new_trainer, resume_trainer

TOKENS = ["trainer.epochs=3", "model.widths=[64,64]", "trainer.threads=1", "observers.diagnostics.enabled=false"]
# The child's fsync of the checkpoint temp file number KILL_AT (one per epoch) sends SIG to the
# child itself: SIGKILL ends it there; SIGTERM and SIGINT are held back until the epoch's files
# are written (core/signals.py). The temp file is recognised by its name, so the test does not
# depend on which module calls the writer.
CHILD = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal: a background launch ignores SIGINT
SIG, KILL_AT = int(sys.argv[1]), int(sys.argv[2])
real_fsync, seen = os.fsync, []
def fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}") if isinstance(fd, int) else ""
    if ".checkpoint.pt.tmp-" in os.path.basename(name):
        seen.append(name)
        if len(seen) == KILL_AT:
            print("KILL", KILL_AT, os.path.basename(name), flush=True)
            os.kill(os.getpid(), SIG)
    return real_fsync(fd)
os.fsync = fsync
from bioscale.cli import main
sys.exit(main(["train", "rule=bp", *sys.argv[3:]]))
"""
EXIT = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}
TRIALS = [(sig, kill_at) for kill_at in (2, 3) for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)]

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd to name the fsynced file"
)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    trainer = new_trainer("bp", tmp_path_factory.mktemp("straight"), TOKENS)
    trainer.fit()
    return model_weights(trainer)


def _killed_run(out: Path, sig: signal.Signals, kill_at: int) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-c",
        CHILD,
        str(int(sig)),
        str(kill_at),
        "data=digits",
        "trainer.batch_size=64",
        "trainer.progress=false",
        *TOKENS,
        f"output_dir={out}",
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("sig, kill_at", TRIALS, ids=[f"{s.name}-epoch{k}" for s, k in TRIALS])
def test_a_kill_inside_a_checkpoint_write_never_costs_the_run(tmp_path, straight, sig, kill_at):
    result = _killed_run(tmp_path, sig, kill_at)
    assert f"KILL {kill_at} .checkpoint.pt.tmp-" in result.stdout, result.stderr  # it landed inside the write
    assert result.returncode == EXIT[sig], result.stderr
    (run_dir,) = tmp_path.iterdir()
    temp_files = list(run_dir.glob(".checkpoint.pt.tmp-*"))
    held = load_checkpoint(run_dir / "checkpoint.pt")["epoch"]  # its checksum holds: an intact checkpoint
    if sig == signal.SIGKILL:  # died before the rename: the previous checkpoint stands, the temp file is junk
        assert held == kill_at - 1 and len(temp_files) == 1
    else:  # held back until the epoch was committed, then stopped cleanly
        assert held == kill_at and not temp_files
        assert "Traceback" not in result.stderr
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["epochs"] == held
    resumed = resume_trainer(run_dir)
    assert resumed.epoch == held  # the temp file was not taken for a newer checkpoint
    resumed.fit()
    assert not list(run_dir.glob(".*.tmp-*"))
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, straight[name]), f"{sig.name} at epoch {kill_at}: {name} differs"
