"""Data parallelism on this machine: seconds per epoch of a real run, and the all-reduce's share.

Run once per layout (the shell script ``bench_data_parallel.sh`` runs all of them):

    python benchmarks/bench_data_parallel.py --rule bp --threads 2 --out NAME            # 1 process, 2 threads
    torchrun --standalone --nproc_per_node=2 benchmarks/bench_data_parallel.py --rule bp --threads 1 --out NAME

Trains ``mnist_fc`` (the real MNIST, ``--root``) for ``--epochs`` epochs with no checkpoint and
reports the median seconds per training epoch. Under torchrun it then times, on the trained
run's own gradient buffers, one all-reduce of the flat forward-gradient buffer against one
all-reduce per parameter tensor (``--reps`` each), and the all-reduce's share of a step
(the flat all-reduce's time over the measured step time). Rank 0 writes ``results/<out>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch.distributed as dist
from bioscale.commands.train import prepare
from common import REPO, record


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rule", default="bp")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    extra = ["rules.dtp.schedule=parallel"] if args.rule == "dtp" else []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = prepare(
            [
                f"rule={args.rule}",
                "data=mnist",
                f"data.root={args.root}",
                "model=mnist_fc",
                f"trainer.epochs={args.epochs}",
                f"trainer.threads={args.threads}",
                "trainer.checkpoint=false",
                "trainer.progress=false",
                "observers.console.enabled=false",
                "observers.diagnostics.enabled=false",
                f"output_dir={tmp}",
                *extra,
            ]
        )
        summary = trainer.fit()
        parallel = trainer.parallel
        epoch_seconds = [m["seconds"] for m in trainer.history]
        steps = trainer.data.train.num_batches(trainer.cfg.trainer.batch_size)
        step_seconds = statistics.median(epoch_seconds) / steps
        payload = {
            "rule": args.rule,
            "model": "mnist_fc",
            "batch_size": trainer.cfg.trainer.batch_size,
            "world_size": parallel.world_size,
            "threads_per_process": args.threads,
            "epochs": args.epochs,
            "seconds_per_epoch": epoch_seconds,
            "median_seconds_per_epoch": statistics.median(epoch_seconds),
            "seconds_per_step": step_seconds,
            "final_test_error": summary["final_test_error"],
        }
        if parallel.active:
            flat = trainer.flat_parameters.grad
            tensors = [p.grad for p in trainer.model.parameters()]
            timings = {}
            for name, bufs in (("flat", [flat]), ("per_tensor", tensors)):
                dist.barrier()
                start = time.perf_counter()
                for _ in range(args.reps):
                    for t in bufs:
                        dist.all_reduce(t)
                timings[name] = (time.perf_counter() - start) / args.reps
            payload.update(
                allreduce_seconds_flat=timings["flat"],
                allreduce_seconds_per_tensor=timings["per_tensor"],
                allreduce_tensors=len(tensors),
                allreduce_floats=flat.numel(),
                allreduce_share_of_step=timings["flat"] / step_seconds,
            )
        if parallel.is_main:
            print(record(args.out, payload))
        parallel.close()


if __name__ == "__main__":
    main()
