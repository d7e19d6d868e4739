"""Fault injection: kill a run (SIGKILL, SIGTERM, SIGINT) at random points of a checkpoint
write, 21 times; every time the folder resumes to the final weights of a straight run, and a
run stopped by SIGTERM or SIGINT says ``interrupted`` with the epoch its checkpoint holds."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from bioscale.testing import model_weights, new_trainer, resume_trainer

# a net whose checkpoint (~11 MB with Adam's moments) takes a while to serialise and write
TOKENS = ["trainer.epochs=3", "model.widths=[512,512,512]", "trainer.threads=1", "observers.diagnostics.enabled=false"]
# the child announces each checkpoint save, and its fsync takes 40 ms longer: the write window
CHILD = """
import os, sys, time
import bioscale.checkpoint as checkpoint
real_save, real_fsync = checkpoint.save_checkpoint, os.fsync
def save(path, state):
    print("SAVE", state["epoch"], flush=True)
    return real_save(path, state)
def fsync(fd):
    time.sleep(0.04)
    return real_fsync(fd)
checkpoint.save_checkpoint, checkpoint.os.fsync = save, fsync
from bioscale.cli import main
sys.exit(main(["train", "rule=bp", *sys.argv[1:]]))
"""
EXIT = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    trainer = new_trainer("bp", tmp_path_factory.mktemp("straight"), TOKENS)
    trainer.fit()
    return model_weights(trainer)


def _kill_during_second_save(out, sig, delay) -> subprocess.CompletedProcess:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "data=digits", "trainer.batch_size=64", "trainer.progress=false",
                             *TOKENS, f"output_dir={out}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    saves = 0
    for line in proc.stdout:
        saves += line.startswith("SAVE")
        if saves == 2:  # epoch 2's checkpoint is being written; epoch 1's is on disk
            time.sleep(delay)
            proc.send_signal(sig)
            break
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(21))
def test_a_kill_during_a_checkpoint_write_never_costs_the_run(tmp_path, straight, trial):
    sig = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)[trial % 3]
    delay = random.Random(trial).uniform(0.0, 0.08)  # the save takes ~45-70 ms here
    result = _kill_during_second_save(tmp_path, sig, delay)
    assert result.returncode == EXIT[sig], result.stderr
    (run_dir,) = tmp_path.iterdir()
    held = torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"]
    assert held in (1, 2)
    if sig != signal.SIGKILL:
        assert "Traceback" not in result.stderr
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["epochs"] == held
    resumed = resume_trainer(run_dir)
    resumed.fit()
    assert not list(run_dir.glob(".*.tmp-*"))
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, straight[name]), f"trial {trial} ({sig.name}, {delay * 1e3:.0f} ms): {name} differs"
