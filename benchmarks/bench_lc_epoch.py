"""What one ``cifar_lc`` training epoch costs against this CPU's matrix-multiply peak, fp32 and bf16.

For each precision (bf16 only where the CPU has AVX512-BF16 or AMX, or on CUDA):
1. the matmul peak: median time of 2048 x 2048 x 2048 matmuls in that dtype;
2. one ``Trainer.train_step`` of ``cifar_lc`` (BP by default; ``--rules``) at batch 128 on real or synthetic
   CIFAR-sized inputs: its matmul FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``, its median
   time, so achieved GFLOP/s and the fraction of the peak, and an epoch's estimate (50,000 images);
3. where the time goes: ``torch.profiler`` self time per op over a few steps, grouped into matrix products,
   copies and casts, element-wise ops, the optimiser, and the rest.

    python benchmarks/bench_lc_epoch.py [--rules bp fa dtp] [--precisions fp32 bf16] [--steps 6]
        [--name speed/lc_epoch_cost]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from bioscale.commands.train import prepare
from common import REPO, has_schedule, record, step_bench_tokens, step_phases

MATMUL_OPS = ("aten::mm", "aten::bmm", "aten::baddbmm", "aten::addmm", "aten::addbmm")
COPY_OPS = ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous")
OPTIMISER_OPS = ("aten::_fused_adam_", "aten::_foreach")


def has_bf16_matmul() -> bool:
    """AVX512-BF16 or AMX on this CPU (bf16 matmuls in hardware), read from /proc/cpuinfo."""
    info = Path("/proc/cpuinfo")
    flags = info.read_text() if info.exists() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def matmul_peak(dtype: torch.dtype, repeats: int = 7) -> float:
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        a @ b
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 2 * 2048**3 / statistics.median(times) / 1e9


def category(name: str) -> str:
    if name in MATMUL_OPS:
        return "matrix products"
    if name in COPY_OPS:
        return "copies and casts"
    if name.startswith(OPTIMISER_OPS):
        return "optimiser"
    if name.startswith("aten::") and name not in ("aten::empty", "aten::empty_strided", "aten::as_strided"):
        return "element-wise and other aten ops"
    return "framework"


def step_cost(rule: str, precision: str, args) -> dict:
    tokens = step_bench_tokens(args.data, args.root, "cifar_lc", args.batch_size, args.threads)
    tokens += [f"rule={rule}", f"trainer.precision={precision}", "data.limit_train=512"]
    if has_schedule(rule):
        tokens.append(f"rules.{rule}.schedule=parallel")
    trainer = prepare(tokens)
    x, y = trainer.data.train.x[: args.batch_size], trainer.data.train.y[: args.batch_size]
    phases = step_phases(rule)
    for _ in range(2):
        trainer.train_step(x, y, 0, phases, 0.5)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.train_step(x, y, 0, phases, 0.5)
    flops = counter.get_total_flops()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.train_step(x, y, 0, phases, 0.5)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            trainer.train_step(x, y, 0, phases, 0.5)
    share: dict[str, float] = {}
    for event in prof.key_averages():
        share[category(event.key)] = share.get(category(event.key), 0.0) + event.self_cpu_time_total
    total = sum(share.values())
    return {
        "gflop_per_step": round(flops / 1e9, 2),
        "ms_per_step": round(seconds * 1e3, 1),
        "achieved_gflops": round(flops / seconds / 1e9, 1),
        "epoch_estimate_s": round(seconds * -(-50000 // args.batch_size), 1),
        "profile_share": {k: round(v / total, 3) for k, v in sorted(share.items(), key=lambda kv: -kv[1])},
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", nargs="+", default=["bp"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--data", default="cifar10")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--name", default="speed/lc_epoch_cost")
    args = parser.parse_args()
    precisions = [p for p in args.precisions if p == "fp32" or has_bf16_matmul()]
    peaks = {p: round(matmul_peak(torch.float32 if p == "fp32" else torch.bfloat16), 1) for p in precisions}
    print(f"matmul peak GFLOP/s: {peaks}", flush=True)
    rows = {}
    for rule in args.rules:
        for precision in precisions:
            row = step_cost(rule, precision, args)
            row["fraction_of_peak"] = round(row["achieved_gflops"] / peaks[precision], 3)
            rows[f"{rule}:{precision}"] = row
            print(f"{rule}:{precision} {row}", flush=True)
    path = record(
        args.name,
        {
            "what": "one cifar_lc training step (batch, data in memory) against this CPU's 2048^3 matmul peak per "
            "dtype: counted matmul FLOPs, ms per step, achieved GFLOP/s, epoch estimate for 50,000 images, "
            "profiler self-time shares",
            "model": "cifar_lc",
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "matmul_peak_gflops": peaks,
            "results": rows,
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
