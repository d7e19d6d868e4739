"""Data parallelism under torchrun (gloo, CPU): K processes x global batch = 1 process x global batch.

Tolerance: final weights within 1e-3 (max abs); measured ~1e-7 on the tiny setup, 2.6e-4 for
DTP on digits_fc after 2 epochs (the ranks' sums are added in another order, and Adam scales
the rounding up where gradients are small). Test errors equal.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from bioscale.distributed import DataParallel, share
from bioscale.testing import TINY_TOKENS, check_data_parallel, model_weights, resume_trainer

TESTS = Path(__file__).parent


def _with_tests_on_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))


def test_every_paper_rule_trains_the_same_in_two_processes(tmp_path):
    rules = [
        "bp",
        "fa",
        "dfa",
        ("dtp", ["rules.dtp.schedule=parallel"]),
        ("dtp", ["rules.dtp.schedule=alternating"]),
        "aosdtp",
        ("bp", ["trainer.batch_size=63"]),  # unequal shares (31 / 32 rows; the last batch 25 / 26)
        ("sdtp", ["data.augment=true", "rules.sdtp.shared_noise=false"]),
    ]  # augmentation, per-unit noise
    reports = check_data_parallel(rules, tmp_path)
    assert len(reports) == len(rules)
    for job in range(len(rules)):  # rank 0 alone wrote: one run folder per job, in each world
        assert len([p for p in (tmp_path / "2_processes" / f"{job:02d}").iterdir() if p.is_dir()]) == 1
    # a checkpoint does not depend on the world size: the 2-process run resumed in one process
    # continues the one-process run (here: a third epoch on top of each)
    one, two = (
        next(p for p in (tmp_path / world / "00").iterdir() if p.is_dir()) for world in ("one_process", "2_processes")
    )
    a, b = (resume_trainer(run, ["trainer.epochs=3"]) for run in (one, two))
    a.fit()
    b.fit()
    wa, wb = model_weights(a), model_weights(b)
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-5
    assert a.history[-1]["test_error"] == b.history[-1]["test_error"]


def test_the_kit_catches_a_rule_that_does_not_reduce_its_gradients(tmp_path, monkeypatch):
    _with_tests_on_path(monkeypatch)
    from dp_rules import NoReduceDTP

    with pytest.raises(AssertionError, match="differs by"):
        check_data_parallel([(NoReduceDTP, ["trainer.epochs=1"])], tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bioscale_tokens(out: Path, epochs: int = 2) -> list[str]:
    return [
        *TINY_TOKENS,
        "rule=dtp",
        f"trainer.epochs={epochs}",
        f"output_dir={out}",
        "observers.console.enabled=false",
    ]


def _torchrun(*args) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def test_two_nodes_on_this_machine_train_the_one_process_run(tmp_path):
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]  # files, not pipes: a full pipe would stall a node
    nodes = [
        subprocess.Popen(
            _torchrun(
                "--nnodes=2",
                f"--node_rank={rank}",
                "--nproc_per_node=1",
                "--master_addr=127.0.0.1",
                f"--master_port={port}",
                "--no-python",
                "bioscale",
                "train",
                *_bioscale_tokens(tmp_path / "two_nodes"),
            ),
            env=env,
            stdout=logs[rank].open("w"),
            stderr=subprocess.STDOUT,
        )
        for rank in (0, 1)
    ]
    for node, log in zip(nodes, logs):
        node.wait(timeout=300)
        assert node.returncode == 0, log.read_text()[-3000:]
    single = subprocess.run(
        [sys.executable, "-m", "bioscale", "train", *_bioscale_tokens(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    (run2,), (run1,) = ([p for p in (tmp_path / d).iterdir() if p.is_dir()] for d in ("two_nodes", "one"))
    w2, w1 = (torch.load(r / "checkpoint.pt", weights_only=True)["model"] for r in (run2, run1))
    assert max(float((w2[k] - w1[k]).abs().max()) for k in w1) < 1e-3
    s2, s1 = (json.loads((r / "summary.json").read_text()) for r in (run2, run1))
    assert s2["final_test_error"] == s1["final_test_error"] and s2["status"] == "completed"


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(c) for c in (task / "children").read_text().split()]
    return kids


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find torchrun's workers")
def test_a_rank_that_dies_ends_the_run_with_its_last_checkpoint(tmp_path):
    out = tmp_path / "runs"
    log = tmp_path / "torchrun.log"
    launcher = subprocess.Popen(
        _torchrun(
            "--standalone",
            "--nproc_per_node=2",
            "--no-python",
            "bioscale",
            "train",
            *_bioscale_tokens(out, epochs=400),
            "trainer.batch_size=16",
        ),
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*/checkpoint.pt")):
        time.sleep(0.2)
    assert list(out.glob("*/checkpoint.pt")), "no checkpoint appeared"
    workers = _children(launcher.pid)
    assert len(workers) == 2
    victim = next(w for w in workers if b"\0RANK=1\0" in b"\0" + Path(f"/proc/{w}/environ").read_bytes())
    os.kill(victim, signal.SIGKILL)
    launcher.wait(timeout=120)
    assert launcher.returncode != 0, log.read_text()[-2000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] in ("interrupted", "failed"), summary
    resumed = resume_trainer(run, [f"trainer.epochs={summary['epochs'] + 1}"])  # the checkpoint is whole
    resumed.fit()
    assert resumed.epoch == summary["epochs"] + 1


def _collectives(rank: int, world: int, store_path: str, results):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=world)
    parallel = DataParallel(rank, world, rank, "gloo")
    rows = parallel.rows(5)
    grad = torch.full((3,), float(rank + 1))  # each rank's mean over its rows
    parallel.reduce_gradients_([grad], rows.stop - rows.start, 5)
    try:
        parallel.check_identical([torch.tensor([float(rank)])], "the test tensor")
        identical = "no error"
    except RuntimeError as exc:
        identical = str(exc)
    results[rank] = (grad.tolist(), identical, parallel.broadcast_object(f"from {rank}"))
    dist.destroy_process_group()


def test_collectives_weight_by_rows_and_catch_ranks_that_differ(tmp_path):
    assert [share(5, r, 2) for r in (0, 1)] == [slice(0, 2), slice(2, 5)]
    assert [share(3, r, 4).stop - share(3, r, 4).start for r in range(4)] == [0, 1, 1, 1]
    results = mp.Manager().dict()
    mp.spawn(_collectives, args=(2, str(tmp_path / "store"), results), nprocs=2)
    for rank in (0, 1):
        grad, identical, told = results[rank]
        assert grad == pytest.approx([2 / 5 * 1 + 3 / 5 * 2] * 3)  # rows 2 and 3 of 5
        assert "differs between ranks (ranks [1] against rank 0)" in identical
        assert told == "from 0"
    assert not DataParallel().active and DataParallel().rows(7) == slice(0, 7)


def test_the_newer_rules_train_the_same_in_two_processes(tmp_path):
    # learned feedback (kp through after_forward_grads, wm's mirror noise, ddtp's and ldrl's feedback
    # training), per-batch random magnitudes (brsf) and a mixed net: the same run in 2 processes as in 1
    rules = [
        "kp",
        "wm",
        "ddtp",
        "ldrl",
        ("signsym", ["rules.signsym.variant=brsf"]),
        ("mix", ["rules.mix.layers=[fa,dtp,dtp]", "rules.dtp.schedule=parallel"]),
    ]
    assert len(check_data_parallel(rules, tmp_path)) == len(rules)
