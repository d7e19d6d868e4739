"""The energy-based rules' step cost against BP's, as a function of their settling length.

``pc`` (strict and fixed prediction) for ``T`` inference steps and ``ep`` for (free, nudged) phase
lengths, on ``mnist_fc`` and ``cifar_fc``, batch 128, one process: each round times a block of steps of
BP and of every variant back to back; the ratio to BP's step is taken within the round and the median
over rounds is reported (the machine's load moves both sides alike).

    python benchmarks/bench_energy.py [--nets mnist_fc cifar_fc] [--rounds 7 --steps 4 --threads 2]
"""

from __future__ import annotations

import argparse
import statistics

from bioscale.commands.train import prepare
from common import REPO, record, step_bench_tokens, time_steps

DATA = {"mnist_fc": "mnist", "cifar_fc": "cifar10"}
VARIANTS = {
    "bp": [],
    **{f"pc strict T={t}": [f"rules.pc.steps={t}"] for t in (5, 10, 20, 40)},
    **{f"pc fixed T={t}": ["rules.pc.variant=fixed_prediction", f"rules.pc.steps={t}"] for t in (5, 20)},
    **{
        f"ep T={free}+2x{nudged}": [f"rules.ep.free_steps={free}", f"rules.ep.nudged_steps={nudged}"]
        for free, nudged in ((10, 5), (20, 10), (40, 20))
    },
}


def rule_of(variant: str) -> str:
    return variant.split()[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--nets", nargs="+", default=list(DATA))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="speed/energy_rules_step")
    args = parser.parse_args()
    table = {}
    for net in args.nets:
        tokens = [*step_bench_tokens(DATA[net], args.root, net, 128, args.threads), "data.limit_train=512"]
        trainers = {v: prepare([*tokens, f"rule={rule_of(v)}", *extra]) for v, extra in VARIANTS.items()}
        x, y = trainers["bp"].data.train.x[:128], trainers["bp"].data.train.y[:128]
        ms: dict = {v: [] for v in VARIANTS}
        ratios: dict = {v: [] for v in VARIANTS}
        for rnd in range(args.rounds + 1):
            now = {v: time_steps(t, x, y, frozenset({"forward"}), args.steps) for v, t in trainers.items()}
            if rnd == 0:
                continue  # warm-up round
            for v in VARIANTS:
                ms[v].append(now[v])
                ratios[v].append(now[v] / now["bp"])
        rows = {v: {"ms": statistics.median(ms[v]), "x_bp": statistics.median(ratios[v])} for v in VARIANTS}
        for v, row in rows.items():
            print(f"{net:9s} {v:22s} {row['ms']:8.2f} ms/step  x{row['x_bp']:.2f} of BP", flush=True)
        table[net] = rows
    payload = {"settings": vars(args), "steps": table}
    print(f"recorded {record(args.name, payload)}")


if __name__ == "__main__":
    main()
