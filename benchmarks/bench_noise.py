"""What the Gaussian noise of the TP rules costs on the CPU, and what the alternatives cost.

1. Per number, at 128 x 256 (one layer's noise in an SDTP step on mnist_fc): torch's
   ``normal_`` with a CPU generator (mt19937), its raw 32-bit draws (``random_`` on int32),
   and numpy's float32 ``standard_normal`` with the PCG64 and SFC64 bit generators.
2. Five separate draws (one per inverse, as the step does) against one draw of five times
   the size.
3. One SDTP training step (parallel schedule, fixed batch) with its noise draws shared
   across layers (the default), drawn per layer (``shared_noise=false``) and, on the per-layer
   path, replaced by zeros (timing only: a memset instead of each draw, no random numbers at
   all; before 2026-11-29 11:10 UTC this variant ran the shared path and still drew its signs),
   interleaved with BP's step: the share of the noise in the step and in the ratio to BP.

    python benchmarks/bench_noise.py [--rounds 15 --threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from bioscale.commands.train import prepare
from bioscale.rulekit import noise as noise_module
from common import REPO, per_call_us, record, step_bench_tokens

SHAPE = (128, 256)


def generators() -> dict:
    numel = SHAPE[0] * SHAPE[1]
    gen = torch.Generator().manual_seed(0)
    t, bits = torch.empty(SHAPE), torch.empty(SHAPE, dtype=torch.int32)
    out = np.empty(SHAPE, np.float32)
    pcg, sfc = np.random.Generator(np.random.PCG64(0)), np.random.Generator(np.random.SFC64(0))
    us = {
        "torch normal_ (float32)": per_call_us(lambda: t.normal_(0.0, 0.2, generator=gen)),
        "torch random_ (int32, raw mt19937 draws)": per_call_us(lambda: bits.random_(generator=gen)),
        "numpy PCG64 standard_normal (float32)": per_call_us(lambda: pcg.standard_normal(out=out, dtype=np.float32)),
        "numpy SFC64 standard_normal (float32)": per_call_us(lambda: sfc.standard_normal(out=out, dtype=np.float32)),
    }
    return {k: {"us_per_call": round(v, 1), "ns_per_number": round(v * 1e3 / numel, 2)} for k, v in us.items()}


def separate_vs_batched(repeats: int = 600) -> dict:
    gen = torch.Generator().manual_seed(0)
    numel = SHAPE[0] * SHAPE[1]
    separate, batched = [], []
    for i in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            torch.empty(SHAPE).normal_(0.0, 0.2, generator=gen)
        middle = time.perf_counter()
        torch.empty(5 * numel).normal_(0.0, 0.2, generator=gen).split(numel)
        end = time.perf_counter()
        if i >= 50:
            separate.append(middle - start)
            batched.append(end - middle)
    return {
        "five_separate_ms": round(statistics.median(separate) * 1e3, 3),
        "one_batched_ms": round(statistics.median(batched) * 1e3, 3),
    }


def step_share(args) -> dict:
    common = step_bench_tokens(args.data, args.root, "mnist_fc", 128, args.threads)
    bp = prepare([*common, "rule=bp"])
    sdtp = prepare([*common, "rule=sdtp", "rules.sdtp.schedule=parallel"], data=bp.data)
    per_layer = prepare(
        [*common, "rule=sdtp", "rules.sdtp.schedule=parallel", "rules.sdtp.shared_noise=false"], data=bp.data
    )
    x, y = bp.data.train.x[:128], bp.data.train.y[:128]
    forward, both = frozenset({"forward"}), frozenset({"forward", "inverse"})
    real = noise_module.NoiseSource._draw  # every draw of perturb goes through it
    skipped = lambda self, shape, like, dim, fill: torch.zeros(shape, dtype=like.dtype, device=like.device)  # noqa: E731
    times = {"bp": [], "sdtp": [], "sdtp_noise_per_layer": [], "sdtp_without_noise_draws": []}
    for rnd in range(args.rounds + 1):
        row = {}
        for key, trainer, phases, draw in (
            ("bp", bp, forward, real),
            ("sdtp", sdtp, both, real),
            ("sdtp_noise_per_layer", per_layer, both, real),
            ("sdtp_without_noise_draws", per_layer, both, skipped),
        ):
            noise_module.NoiseSource._draw = draw
            trainer.train_step(x, y, 0, phases, 0.5)
            start = time.perf_counter()
            for _ in range(8):
                trainer.train_step(x, y, 0, phases, 0.5)
            row[key] = (time.perf_counter() - start) / 8 * 1e3
        noise_module.NoiseSource._draw = real
        if rnd:
            for key, ms in row.items():
                times[key].append(ms)
    ratios = {k: statistics.median(a / b for a, b in zip(v, times["bp"])) for k, v in times.items()}
    return {
        k: {"ms_per_step": round(statistics.median(v), 3), "ratio_to_bp": round(ratios[k], 3)} for k, v in times.items()
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--name", default="speed/noise_cpu")
    args = parser.parse_args()
    result = {
        "per_number_at_128x256": generators(),
        "five_draws_of_128x256": separate_vs_batched(),
        "sdtp_step_mnist_fc_batch128": step_share(args),
        "torch_threads": torch.get_num_threads(),
    }
    for section, rows in result.items():
        print(section, rows)
    path = record(args.name, {"what": "cost of the TP rules' Gaussian noise on the CPU and of alternatives", **result})
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
