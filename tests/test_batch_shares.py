"""Under data parallelism every rank gets rows of every global batch, or the run is refused before it starts
(review F8: ``data.limit_train=129`` with 2 processes gave rank 1 an empty last batch and a failed run)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from bioscale.distributed import DataParallel, share
from bioscale.errors import ConfigError


@pytest.mark.parametrize(
    "examples, batch_size, world, refused",
    [
        (129, 128, 2, True),  # a last batch of 1 row
        (130, 128, 2, False),  # a last batch of 2 rows: one each
        (256, 128, 2, False),  # no short batch
        (100, 1, 2, True),  # every batch smaller than the world
        (3, 128, 4, True),  # one batch, smaller than the world
        (129, 128, 1, False),  # one process takes any batch
    ],
)
def test_a_plan_that_leaves_a_rank_without_rows_is_refused(examples, batch_size, world, refused):
    parallel = DataParallel(rank=0, world_size=world)
    sizes = [min(batch_size, examples - start) for start in range(0, examples, batch_size)]
    empty = any(share(n, r, world).stop == share(n, r, world).start for n in sizes for r in range(world))
    assert empty == refused  # the check refuses exactly the plans in which some rank would get no rows
    if refused:
        with pytest.raises(ConfigError, match=rf"trainer.batch_size={batch_size} with {examples} training examples"):
            parallel.check_batches(examples, batch_size)
    else:
        parallel.check_batches(examples, batch_size)


@pytest.mark.slow
def test_torchrun_refuses_a_short_last_batch_before_writing_anything(tmp_path):
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python"]
    command += ["bioscale", "train", "rule=bp", "trainer.epochs=1", "data.limit_train=129", f"output_dir={out}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert "makes a batch of 1 rows for 2 processes" in done.stderr
    assert not out.exists() or not any(out.iterdir())  # no run folder, no failed summary
