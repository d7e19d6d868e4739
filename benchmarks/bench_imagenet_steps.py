"""Training throughput of the ImageNet / CIFAR nets on synthetic batches (images per second).

Builds the real `bioscale train` run (``data=imagenet``, the preset, the rule's recipe) but
feeds it random normalised images held on the training device, so that what is timed is
the training step alone (forward, the rule's credit assignment, both optimisers), not
decoding. Each rule trains ``--steps`` batches after ``--warmup`` batches; the device is
synchronised once before and once after the timed block. TP rules run the parallel
schedule (an inverse and a forward update per batch, the dearer of the two schedules per
batch); ``<rule>:alternating`` rows time one inverse-only plus one forward-only step per
batch, i.e. the cost of one batch of data under the alternating schedule.

    python benchmarks/bench_imagenet_steps.py [--model imagenet_lc --rules bp dtp --batch-size 128 --steps 50]
        [--data cifar10 --image-size 32 --classes 10] [--precision fp32 bf16] [--compile]

Reports images per second, the implied time of one ImageNet epoch (1,281,167 images), on CUDA
the peak memory of the timed steps, and the step's matmul / convolution FLOPs (counted once per
row by ``torch.utils.flop_counter``) as achieved TFLOP/s and, for a GPU listed in ``PEAKS``, as
fractions of its dense fp32 / TF32 / bf16 peaks (the roofline's compute roof).
CUDA is used when available (``trainer.device=auto``).
"""

from __future__ import annotations

import argparse
import time

import torch
from bioscale.commands.train import prepare
from bioscale.datasets.in_memory import DataBundle, InMemorySplit
from common import has_schedule, record

IMAGENET_TRAIN_IMAGES = 1_281_167
# dense (no sparsity) peak TFLOP/s from the vendors' data sheets, by a substring of the device name
PEAKS = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
}


def synthetic_bundle(batch_size: int, classes: int, size: int, device, name: str = "imagenet") -> DataBundle:
    """One batch of random standardised images ``(B, 3, size, size)`` and labels, on ``device``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, size, size, generator=g).to(device)
    y = torch.randint(0, classes, (batch_size,), generator=g).to(device)
    split = InMemorySplit(x, y)
    return DataBundle(
        name, split, split, None, (3, size, size), classes, "synthetic", top_k=(1, 5) if classes >= 5 else (1,)
    )


def step_flops(trainer, phases_per_batch) -> int:
    """Matmul and convolution FLOPs of one batch (every phase set), as torch's flop counter sees them."""
    from torch.utils.flop_counter import FlopCounterMode

    x, y = trainer.data.train.x, trainer.data.train.y
    with FlopCounterMode(display=False) as counter:
        for phases in phases_per_batch:
            trainer.train_step(x, y, 0, phases, 0.5)
    return counter.get_total_flops()


def peak_fractions(device, tflops: float) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    peaks = next((v for k, v in PEAKS.items() if k in name), None)
    return {f"fraction_of_{k}_peak": round(tflops / v, 4) for k, v in peaks.items()} if peaks else {}


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
    parser.add_argument("--data", default="imagenet", help="the data preset the run is configured with")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="trainer.compile=true")
    parser.add_argument("--name", default=None, help="results/<name>.json (default: <model>_steps_<device>)")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    common = [
        f"data={args.data}",
        f"model={args.model}",
        f"trainer.batch_size={args.batch_size}",
        f"trainer.compile={str(args.compile).lower()}",
        "output_dir=/tmp/bioscale-bench",
        "trainer.checkpoint=false",
        "observers.console.enabled=false",
        "observers.diagnostics.enabled=false",
        "trainer.epochs=1",
    ]

    def write(rows: dict):  # after every row, so that a run stopped by a time limit keeps what it measured
        name = args.name or f"{args.model}_steps_{device.type}"
        return record(
            name,
            {
                "what": f"training throughput on synthetic {args.image_size}x{args.image_size} batches (train_step only: forward, "
                "credit assignment, optimisers; no decoding); TP rules per schedule",
                "data": args.data,
                "precision": args.precision,
                "compile": args.compile,
                "model": args.model,
                "batch_size": args.batch_size,
                "image_size": args.image_size,
                "classes": args.classes,
                "steps": args.steps,
                "warmup": args.warmup,
                "results": rows,
            },
        )

    rows = {}
    for rule, schedule, precision in [
        (r, s, p)
        for r in args.rules
        for s in (["parallel", "alternating"] if has_schedule(r) else [None])
        for p in args.precision
    ]:
        data = synthetic_bundle(args.batch_size, args.classes, args.image_size, device, args.data)
        extra = [f"rules.{rule}.schedule={schedule}"] if schedule else []
        trainer = prepare([*common, f"rule={rule}", *extra, f"trainer.precision={precision}"], data=data)
        if schedule == "alternating":
            phases = [frozenset({"inverse"}), frozenset({"forward"})]
        elif schedule == "parallel":
            phases = [frozenset({"inverse", "forward"})]
        else:
            phases = [frozenset({"forward"})]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = time_steps(trainer, phases, args.steps, args.warmup)
        key = (f"{rule}:{schedule}" if schedule else rule) + ("" if args.precision == ["fp32"] else f":{precision}")
        ips = args.batch_size / seconds
        flops = step_flops(trainer, phases)
        tflops = flops / seconds / 1e12
        rows[key] = {
            "seconds_per_batch": round(seconds, 5),
            "images_per_second": round(ips, 1),
            "imagenet_epoch_hours": round(IMAGENET_TRAIN_IMAGES / ips / 3600, 2),
            "gflops_per_batch": round(flops / 1e9, 2),
            "achieved_tflops": round(tflops, 3),
            **peak_fractions(device, tflops),
        }
        if device.type == "cuda":
            rows[key]["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        print(
            f"{key:24s} {seconds * 1e3:9.1f} ms/batch  {ips:9.1f} images/s  {tflops:7.2f} TFLOP/s  "
            f"one ImageNet epoch ~{rows[key]['imagenet_epoch_hours']:.2f} h",
            flush=True,
        )
        write(rows)
        del trainer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"recorded {write(rows)}")


if __name__ == "__main__":
    main()
