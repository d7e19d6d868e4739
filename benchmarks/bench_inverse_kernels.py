"""Does the stacked inverse kernel pay? A TP rule's parallel ``mnist_fc`` step (inverse and
forward update, batch 128) with its inverses below the top trained by ``StackedKernel`` (the
default: one ``bmm`` per product for the four equal 256 x 256 layers) against one
``SingleKernel`` per layer, interleaved rounds, median of the per-round ratio.

    python benchmarks/bench_inverse_kernels.py [--rounds 20 --steps 8] [--name speed/inverse_kernels]
"""

from __future__ import annotations

import argparse
import statistics

from bioscale.commands.train import prepare
from bioscale.testing import rule_plugin
from common import REPO, record, step_bench_tokens, time_steps

RULES = ("dtp", "sdtp", "aosdtp")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--name", default="speed/inverse_kernels")
    args = parser.parse_args()
    common = step_bench_tokens("mnist", args.root, "mnist_fc", 128, 0)
    phases = frozenset({"forward", "inverse"})
    setups = {}
    for rule in RULES:
        trainer = prepare([*common, f"rule={rule}", f"rules.{rule}.schedule=parallel"])
        tp = rule_plugin(trainer)
        setups[rule] = (trainer, tp, {"stacked": tp.units, "single": tp._training_units(trainer.model, stack=False)})
    ratios = {rule: [] for rule in RULES}
    ms = {rule: {"stacked": [], "single": []} for rule in RULES}
    for rnd in range(args.rounds + 1):
        for rule, (trainer, tp, units) in setups.items():
            x, y = trainer.data.train.x[:128], trainer.data.train.y[:128]
            this = {}
            for variant, chosen in units.items():
                tp.units = chosen
                this[variant] = time_steps(trainer, x, y, phases, args.steps)
            tp.units = units["stacked"]
            if rnd:
                ratios[rule].append(this["stacked"] / this["single"])
                for variant, t in this.items():
                    ms[rule][variant].append(t)
    rows = {}
    for rule in RULES:
        rows[rule] = {
            "stacked_ms": round(statistics.median(ms[rule]["stacked"]), 3),
            "single_ms": round(statistics.median(ms[rule]["single"]), 3),
            "stacked_over_single": round(statistics.median(ratios[rule]), 3),
        }
        print(
            f"{rule}: stacked {rows[rule]['stacked_ms']:.2f} ms, single {rows[rule]['single_ms']:.2f} ms, "
            f"x{rows[rule]['stacked_over_single']:.3f}"
        )
    path = record(
        args.name,
        {
            "what": "TP parallel mnist_fc step, batch 128: stacked inverse kernel vs one kernel per layer",
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "results": rows,
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
