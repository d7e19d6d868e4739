"""Time one training step of each rule against BP, in one process, interleaved.

A step is what ``Trainer.train_step`` does for one batch: the forward pass, the rule's
inverse update (TP rules, parallel schedule: both updates every batch, the most a step
can cost) and the forward update. Each rule trains on the same fixed batch; each round
times a block of steps of every variant back to back, the ratio to BP is taken within the
round (so slow drifts of a shared machine cancel), and the median over rounds is reported. Also reported: the cost of one epoch's worth of data for the alternating
schedule relative to BP (an inverse step plus a forward step per batch).

    python benchmarks/bench_steps.py [--model mnist_fc --batch-size 128 --rounds 25 --steps 8 --threads 0 --tanh auto]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bioscale.commands.train import prepare
from common import (
    EVERY_RULE,
    REPO,
    add_tanh_option,
    apply_tanh_option,
    has_schedule,
    record,
    step_bench_tokens,
    time_steps,
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--model", default="mnist_fc")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (trainer.threads); 0 keeps torch's default"
    )
    parser.add_argument("--rules", nargs="+", default=list(EVERY_RULE), help="installed rules; bp first")
    parser.add_argument("--name", default="speed/step_times_mnist_fc")
    add_tanh_option(parser)
    args = parser.parse_args()
    apply_tanh_option(args)

    common = step_bench_tokens(args.data, args.root, args.model, args.batch_size, args.threads)
    variants = {}
    data = None
    scheduled = [r for r in args.rules if has_schedule(r)]
    for rule in args.rules:
        extra = [f"rules.{rule}.schedule=parallel"] if rule in scheduled else []
        trainer = prepare([*common, f"rule={rule}", *extra], data=data)
        data = trainer.data
        variants[rule] = (trainer, frozenset({"forward", "inverse"}) if rule in scheduled else frozenset({"forward"}))
        if rule in scheduled:
            variants[f"{rule}:inverse-only"] = (trainer, frozenset({"inverse"}))
            variants[f"{rule}:forward-only"] = (trainer, frozenset({"forward"}))
    x, y = data.train.x[: args.batch_size], data.train.y[: args.batch_size]
    times = {k: [] for k in variants}
    ratios = {k: [] for k in variants}
    for rnd in range(args.rounds + 1):
        this_round = {}
        for key, (trainer, phases) in variants.items():
            this_round[key] = time_steps(trainer, x, y, phases, args.steps)
        if rnd:  # round 0 warms up
            for key, ms in this_round.items():
                times[key].append(ms)
                ratios[key].append(ms / this_round["bp"])
    rows = {}
    for key in variants:
        ms, ratio = statistics.median(times[key]), statistics.median(ratios[key])
        rows[key] = {"ms_per_step": round(ms, 3), "ratio_to_bp": round(ratio, 3)}
        print(f"{key:22s} {ms:7.2f} ms/step  x{ratio:.2f} of BP")
    for rule in scheduled:
        alt = [a + b for a, b in zip(ratios[f"{rule}:inverse-only"], ratios[f"{rule}:forward-only"])]
        rows[f"{rule}:alternating-per-batch-of-data"] = {"ratio_to_bp": round(statistics.median(alt), 3)}
        print(f"{rule + ':alternating (inv+fwd)':22s} x{statistics.median(alt):.2f} of BP per batch of data")
    path = record(
        args.name,
        {
            "what": "median time of one training step (Trainer.train_step) per rule on a fixed batch; TP rules with the "
            "parallel schedule (inverse + forward update per step)",
            "data": args.data,
            "model": args.model,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "torch_threads": torch.get_num_threads(),
            "results": rows,
            "targets": "dtp, sdtp <= 2.5 x BP; dfa <= 1.2 x BP",
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
