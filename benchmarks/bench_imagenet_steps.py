"""Training throughput of the ImageNet nets on synthetic 224 x 224 batches (images per second).

Builds the real `bioscale train` run (``data=imagenet``, the preset, the rule's recipe) but
feeds it random normalised images held on the training device, so that what is timed is
the training step alone (forward, the rule's credit assignment, both optimisers), not
decoding. Each rule trains ``--steps`` batches after ``--warmup`` batches; the device is
synchronised once before and once after the timed block. TP rules run the parallel
schedule (an inverse and a forward update per batch, the dearer of the two schedules per
batch); ``<rule>:alternating`` rows time one inverse-only plus one forward-only step per
batch, i.e. the cost of one batch of data under the alternating schedule.

    python benchmarks/bench_imagenet_steps.py [--model imagenet_lc --rules bp dtp --batch-size 128 --steps 50]

Reports images per second and the implied time of one ImageNet epoch (1,281,167 images).
CUDA is used when available (``trainer.device=auto``).
"""

from __future__ import annotations

import argparse
import time

import torch

from common import record

from bioscale.commands.train import prepare
from bioscale.datasets.in_memory import DataBundle, InMemorySplit

IMAGENET_TRAIN_IMAGES = 1_281_167
TP = ("dtp", "sdtp", "aosdtp")


def synthetic_bundle(batch_size: int, classes: int, size: int, device) -> DataBundle:
    """One batch of random standardised images ``(B, 3, size, size)`` and labels, on ``device``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, size, size, generator=g).to(device)
    y = torch.randint(0, classes, (batch_size,), generator=g).to(device)
    split = InMemorySplit(x, y)
    return DataBundle("imagenet", split, split, None, (3, size, size), classes, "synthetic", top_k=(1, 5))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(trainer, phases_per_batch, steps: int, warmup: int) -> float:
    """Seconds per batch of ``trainer.train_step`` over ``phases_per_batch`` (a list of phase sets)."""
    x, y = trainer.data.train.x, trainer.data.train.y
    for _ in range(warmup):
        for phases in phases_per_batch:
            trainer.train_step(x, y, 0, phases, 0.5)
    sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        for phases in phases_per_batch:
            trainer.train_step(x, y, 0, phases, 0.5)
    sync(trainer.device)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="imagenet_lc")
    parser.add_argument("--rules", nargs="+", default=["bp", "dtp"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--name", default=None, help="results/<name>.json (default: <model>_steps_<device>)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    common = ["data=imagenet", f"model={args.model}", f"trainer.batch_size={args.batch_size}",
              "output_dir=/tmp/bioscale-bench", "trainer.checkpoint=false", "observers.console.enabled=false",
              "observers.diagnostics.enabled=false", "trainer.epochs=1"]
    rows = {}
    for rule in args.rules:
        data = synthetic_bundle(args.batch_size, args.classes, args.image_size, device)
        schedules = ["parallel", "alternating"] if rule in TP else [None]
        for schedule in schedules:
            extra = [f"rules.{rule}.schedule={schedule}"] if schedule else []
            trainer = prepare([*common, f"rule={rule}", *extra], data=data)
            if schedule == "alternating":
                phases = [frozenset({"inverse"}), frozenset({"forward"})]
            elif schedule == "parallel":
                phases = [frozenset({"inverse", "forward"})]
            else:
                phases = [frozenset({"forward"})]
            seconds = time_steps(trainer, phases, args.steps, args.warmup)
            key = f"{rule}:{schedule}" if schedule else rule
            ips = args.batch_size / seconds
            rows[key] = {"seconds_per_batch": round(seconds, 5), "images_per_second": round(ips, 1),
                         "imagenet_epoch_hours": round(IMAGENET_TRAIN_IMAGES / ips / 3600, 2)}
            print(f"{key:18s} {seconds * 1e3:9.1f} ms/batch  {ips:9.1f} images/s  "
                  f"one ImageNet epoch ~{rows[key]['imagenet_epoch_hours']:.2f} h", flush=True)
            del trainer
            if device.type == "cuda":
                torch.cuda.empty_cache()
    name = args.name or f"{args.model}_steps_{device.type}"
    path = record(name, {
        "what": "training throughput on synthetic 224x224 batches (train_step only: forward, credit assignment, "
                "optimisers; no decoding); TP rules per schedule",
        "model": args.model, "batch_size": args.batch_size, "image_size": args.image_size, "classes": args.classes,
        "steps": args.steps, "warmup": args.warmup, "results": rows,
    })
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
