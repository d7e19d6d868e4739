"""Each process's device and backend under torchrun (``distributed.plan_device``), as a function of
``trainer.device``, ``trainer.backend``, the local rank, the processes on the machine and its GPUs
(review F8: ``trainer.device=cuda:0`` put every rank on GPU 0), and the refusals, exit 2, on this
CPU-only machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from bioscale.distributed import plan_device
from bioscale.errors import ConfigError
from bioscale.testing import TINY_TOKENS


@pytest.mark.parametrize(
    "device, backend, local_rank, local_world, gpus, planned",
    [
        ("auto", "auto", 0, 1, 0, ("cpu", "gloo")),
        ("cpu", "auto", 1, 2, 4, ("cpu", "gloo")),
        ("auto", "auto", 1, 2, 2, ("cuda:1", "nccl")),  # one GPU per process
        ("cuda", "auto", 3, 4, 8, ("cuda:3", "nccl")),
        ("cuda", "gloo", 1, 2, 1, ("cuda:0", "gloo")),  # gloo: two processes share the one GPU
        ("cuda", "gloo", 2, 3, 2, ("cuda:0", "gloo")),  # LOCAL_RANK % GPUs
        ("cuda:1", "auto", 0, 1, 2, ("cuda:1", "nccl")),  # one process per machine: the GPU it names
        ("cuda:1", "gloo", 1, 2, 2, ("cuda:1", "gloo")),  # gloo: every process on the GPU it names
        ("cuda", "auto", 0, 1, 1, ("cuda:0", "nccl")),  # a world of one
    ],
)
def test_each_process_gets_its_device_and_backend(device, backend, local_rank, local_world, gpus, planned):
    assert plan_device(device, backend, local_rank, local_world, gpus) == planned


@pytest.mark.parametrize(
    "device, backend, local_world, gpus, message",
    [
        ("cpu", "nccl", 2, 0, "trainer.backend=nccl needs CUDA devices, but the run's device is 'cpu'"),
        ("auto", "nccl", 1, 0, "trainer.backend=nccl needs CUDA devices"),
        ("cuda:0", "auto", 2, 2, "trainer.device=cuda:0 puts all 2 processes of this machine on GPU 0"),
        ("cuda", "nccl", 2, 1, r"2 processes on this machine but 1 GPU\(s\).*use trainer.backend=gloo"),
        ("cuda:2", "gloo", 1, 2, "trainer.device='cuda:2' but this machine has 2 GPU"),
        ("cuda", "gloo", 1, 0, "CUDA is not available here"),
        ("gpu", "auto", 1, 0, "trainer.device='gpu' is not a device"),
    ],
)
def test_plans_that_cannot_run_are_refused_naming_the_key(device, backend, local_world, gpus, message):
    with pytest.raises(ConfigError, match=message):
        plan_device(device, backend, 0, local_world, gpus)


def _train(tmp_path, *tokens, launcher=()):
    out = tmp_path / "runs"
    command = [*launcher, "bioscale", "train", *TINY_TOKENS, "rule=bp", "trainer.epochs=1", f"output_dir={out}"]
    done = subprocess.run(
        [*command, "observers.console.enabled=false", *tokens],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        cwd=tmp_path,
    )
    return done, out


def test_nccl_on_the_cpu_exits_2_before_any_work(tmp_path):
    done, out = _train(tmp_path, "trainer.device=cpu", "trainer.backend=nccl")
    assert done.returncode == 2, done.stderr
    assert "trainer.backend=nccl needs CUDA devices" in done.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_two_gloo_processes_train_and_record_their_backend(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python"]
    done, out = _train(tmp_path, "trainer.backend=gloo", launcher=torchrun)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    info = yaml.safe_load((run / "config.yaml").read_text())["run_info"]
    assert (info["world_size"], info["backend"], info["device"]) == (2, "gloo", "cpu")
    refused, _ = _train(tmp_path, "trainer.backend=nccl", launcher=torchrun)
    # every rank refuses on its own; torchrun may stop the second before it prints, so at least one message
    assert refused.returncode != 0 and refused.stderr.count("trainer.backend=nccl needs CUDA devices") >= 1


def test_a_launched_process_ends_with_its_status_flushed_and_no_finalization():
    # under torchrun the CLI ends with os._exit after flushing: the interpreter's finalization (where gloo's
    # and the store's threads can abort a process whose run ended well) does not run; elsewhere nothing changes

    code = (
        "import atexit, sys\n"
        "from bioscale.distributed import end_launched_process\n"
        "atexit.register(lambda: print('finalized'))\n"
        "print('written', end='')\n"
        "end_launched_process(3)\n"
        "sys.exit(0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    launched = subprocess.run(
        [sys.executable, "-c", code], env={**env, "WORLD_SIZE": "2"}, capture_output=True, text=True
    )
    assert (launched.returncode, launched.stdout) == (3, "written")
    alone = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert (alone.returncode, alone.stdout) == (0, "writtenfinalized\n")
