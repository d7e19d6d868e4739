"""One training step of bioscale on the field's nets against a plain PyTorch autograd step.

For each preset (lenet, resnet20, simple_vgg by default), in one process: bioscale's
``Trainer.train_step`` for BP and the signal rules (FA, sign symmetry, KP), and the plain step of
the same network (the same modules, ``F.cross_entropy(model(x), y).backward()``, fused Adam), on
the same fixed CIFAR-10 batch and threads. Each round times a block of steps of every variant back
to back; ratios are taken within the round and the median over rounds is reported.

Peak memory: each (preset, variant) runs in a fresh process (``--memory``) on 256 training
examples: one warm-up step (``.grad`` and optimiser state then exist on both sides), then one step
under ``torch.profiler`` with ``profile_memory``; the step's peak is the highest running sum of its
tensor allocations and frees (the live tensor memory above what was live before it), exact and the
same from run to run. Process RSS is not used: glibc keeps freed memory (``core/host_malloc.py``), and
its peak moved by +-40 MiB between identical ResNet-20 runs. Memory that a kernel allocates outside
PyTorch's allocator (oneDNN scratch space) is not counted on either side.

    python benchmarks/bench_nets.py [--nets lenet resnet20 simple_vgg] [--rules bp fa signsym kp]
        [--batch-size 128 --threads 2 --rounds 7 --steps 4] [--memory | --memory-only]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
from functools import partial

import torch
import torch.nn.functional as F
from bioscale.commands.train import prepare
from bioscale.optim import adam_kwargs
from common import REPO, record, step_bench_tokens, time_calls, time_steps
from torch.profiler import ProfilerActivity, profile

PLAIN = "plain_pytorch"


class PlainStep:
    """The same network under autograd with fused Adam: what a PyTorch user writes."""

    def __init__(self, trainer):
        self.model = copy.deepcopy(trainer.model)
        params = list(self.model.parameters())
        self.optimizer = torch.optim.Adam(params, **adam_kwargs(params, trainer.optimizer_cfg))

    def __call__(self, x, y) -> None:
        self.optimizer.zero_grad(set_to_none=False)
        F.cross_entropy(self.model(x), y).backward()
        self.optimizer.step()


def build(args, net: str, variant: str, limit: int = 0):
    rule = "bp" if variant == PLAIN else variant
    tokens = step_bench_tokens("cifar10", args.root, net, args.batch_size, args.threads)
    trainer = prepare([*tokens, f"rule={rule}", *([f"data.limit_train={limit}"] if limit else [])])
    x, y = trainer.data.train.x[: args.batch_size], trainer.data.train.y[: args.batch_size]
    return trainer, x, y


def measure_memory(args, net: str, variant: str) -> dict:
    """In this (fresh) process: the peak of live tensor memory over one step, in MiB, above what
    was live before it (model, data, ``.grad`` and optimiser state, in place after a warm-up step)."""
    trainer, x, y = build(args, net, variant, limit=256)
    plain = PlainStep(trainer) if variant == PLAIN else None
    if plain is not None:
        del trainer.model  # the plain copy is the only net in this process's steps

    def step() -> None:
        if plain is not None:
            plain(x, y)
        else:
            trainer.train_step(x, y, 0, frozenset({"forward"}), 0.5)

    step()  # .grad and optimiser state exist from here on, on both sides
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):  # + allocation, - free
        live += e.nbytes()
        peak = max(peak, live)
    return {"step_peak_mib": round(peak / 2**20, 1), "allocations": sum(e.nbytes() > 0 for e in events)}


def memory_table(args) -> dict:
    rows = {}
    for net in args.nets:
        for variant in [PLAIN, *args.rules]:
            cmd = [sys.executable, __file__, "--one", net, variant, "--root", args.root, "--threads", str(args.threads)]
            cmd += ["--batch-size", str(args.batch_size)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            found = json.loads(out.strip().splitlines()[-1])
            plain_peak = rows.get(f"{net}/{PLAIN}", found)["step_peak_mib"]
            found["vs_plain"] = round(found["step_peak_mib"] / plain_peak, 3)
            rows[f"{net}/{variant}"] = found
            print(
                f"{net:12s} {variant:14s} step peak {found['step_peak_mib']:8.1f} MiB  x{found['vs_plain']}", flush=True
            )
    return rows


def time_table(args) -> dict:
    rows = {}
    for net in args.nets:
        variants, x, y = {}, None, None
        for rule in args.rules:
            trainer, x, y = build(args, net, rule)
            variants[rule] = trainer
        plain = PlainStep(variants[args.rules[0]])
        times: dict = {k: [] for k in [PLAIN, *args.rules]}
        for rnd in range(args.rounds + 1):
            now = {PLAIN: time_calls(partial(plain, x, y), args.steps)}
            for rule, trainer in variants.items():
                now[rule] = time_steps(trainer, x, y, frozenset({"forward"}), args.steps)
            if rnd:  # round 0 warms up
                for k, ms in now.items():
                    times[k].append((ms, ms / now[PLAIN], ms / now["bp"]))
        for k, found in times.items():
            ms, to_plain, to_bp = (statistics.median(v[i] for v in found) for i in range(3))
            rows[f"{net}/{k}"] = {
                "ms_per_step": round(ms, 2),
                "ratio_to_plain": round(to_plain, 3),
                "ratio_to_bp": round(to_bp, 3),
            }
            print(f"{net:12s} {k:14s} {ms:8.2f} ms/step  x{to_plain:.3f} of plain  x{to_bp:.3f} of bp", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--nets", nargs="+", default=["lenet", "resnet20", "simple_vgg"])
    parser.add_argument("--rules", nargs="+", default=["bp", "fa", "signsym", "kp"], help="bp first")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--memory", action="store_true", help="also peak step memory, a process per case")
    parser.add_argument("--memory-only", action="store_true", help="peak step memory alone (no timing)")
    parser.add_argument("--one", nargs=2, metavar=("NET", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--name", default="speed/nets_step_cifar10")
    args = parser.parse_args()
    if args.one:
        torch.set_num_threads(args.threads)
        print(json.dumps(measure_memory(args, *args.one)))
        return
    payload = {"settings": vars(args)}
    if not args.memory_only:
        payload["time"] = time_table(args)
    if args.memory or args.memory_only:
        payload["memory"] = memory_table(args)
    print(record(args.name, payload))


if __name__ == "__main__":
    main()
