"""Resuming under torchrun: every process reads the run folder, so a process that cannot see it
(another machine, no shared file system) makes every process exit 2 naming it, before any work
(review F8). The check's rule with a fake world; then two nodes on this machine in different
folders, so that the relative run folder exists for node 0 only."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest
from bioscale.distributed import check_visible
from bioscale.errors import ConfigError
from bioscale.testing import new_trainer


def _world(*views: str):
    """A fake gather: this process is rank 0; the other ranks report ``views``."""
    return lambda mine, key: [mine, *views]


def test_every_rank_must_read_the_config_and_checkpoint(tmp_path):
    files = [tmp_path / "config.yaml", tmp_path / "checkpoint.pt"]
    for f in files:
        f.write_text("x")
    check_visible(files, "cannot resume", _world("", ""))  # every rank sees both
    with pytest.raises(ConfigError) as refused:
        check_visible(files, f"cannot resume {tmp_path}", _world("", f"{files[0]}\n{files[1]}"))
    assert f"cannot resume {tmp_path}: rank 2 cannot read {files[0]}, {files[1]}." in str(refused.value)
    assert "shared file system" in str(refused.value)
    files[1].unlink()
    with pytest.raises(ConfigError, match=rf"rank 0 cannot read {files[1]}; rank 1 cannot read {files[0]}\."):
        check_visible(files, "cannot resume", _world(str(files[0])))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_node_that_cannot_see_the_run_folder_stops_every_node_with_exit_2(tmp_path):
    seen, blind = tmp_path / "node0", tmp_path / "node1"
    blind.mkdir()
    run = new_trainer("bp", seen / "runs", ["trainer.epochs=1", "trainer.batch_size=256"])
    run.fit()
    rel = run.run_dir.relative_to(seen)
    before = {f: (run.run_dir / f).read_bytes() for f in ("checkpoint.pt", "metrics.jsonl", "config.yaml")}
    port = _free_port()
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1"]
    launch += ["--master_addr=127.0.0.1", f"--master_port={port}", "--no-python", "bioscale", "resume", str(rel)]
    nodes = [
        subprocess.Popen(
            [*launch[:4], f"--node_rank={r}", *launch[4:], "trainer.epochs=2"],
            cwd=cwd,
            env=dict(os.environ, OMP_NUM_THREADS="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r, cwd in enumerate((seen, blind))
    ]
    logs = [node.communicate(timeout=300)[0] for node in nodes]
    expected = f"rank 1 cannot read {rel / 'config.yaml'}, {rel / 'checkpoint.pt'}"
    for node, log in zip(nodes, logs):
        assert node.returncode != 0 and expected in log, log[-3000:]
        assert re.search(r"exitcode\s*:\s*2\b", log), log[-3000:]  # each process exited 2, not killed
    assert {f: (run.run_dir / f).read_bytes() for f in before} == before  # nothing written
