"""Hash every rule's weights after a few training steps: a check that a refactor leaves the
numbers bit for bit as they were (run it before and after, on the same machine, and diff).

Each rule (TP rules in both schedules) trains 12 steps on the first 12 batches of 128 of the
real MNIST training set (``--root``), cycling inverse+forward, inverse-only and forward-only
phases; the printed hash covers the model's parameters and, for TP rules, the inverses.
``--tanh sigmoid`` forces the sigmoid form of the CPU tanh (what non-Intel CPUs compute), so
an Intel machine can check numbers that other CPUs would compute.

``--tp-setting KEY=VALUE`` (repeatable) sets ``rules.<tp>.KEY=VALUE`` for each TP rule, e.g.
``--tp-setting shared_noise=false`` for the per-layer noise draws of before that option.

    python tools/param_hashes.py [--tanh auto|torch|sigmoid] [--tp-setting KEY=VALUE] > before.txt
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the benchmarks' shared helpers
from bioscale.architectures import activations  # noqa: E402
from bioscale.commands.train import prepare  # noqa: E402
from common import REPO, add_tanh_option, apply_tanh_option, step_bench_tokens  # noqa: E402

RULES = ("bp", "fa", "dfa", "dtp", "sdtp", "aosdtp")
TP = ("dtp", "sdtp", "aosdtp")
PHASES = (frozenset({"forward", "inverse"}), frozenset({"inverse"}), frozenset({"forward"}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--tp-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="rules.<tp>.KEY=VALUE for every TP rule (repeatable)",
    )
    add_tanh_option(parser)
    args = parser.parse_args()
    apply_tanh_option(args)
    common = step_bench_tokens("mnist", args.root, "mnist_fc", 128, 0)
    for rule in RULES:
        for schedule in ("parallel", "alternating") if rule in TP else (None,):
            extra = [f"rules.{rule}.{s}" for s in (f"schedule={schedule}", *args.tp_setting)] if schedule else []
            trainer = prepare([*common, f"rule={rule}", *extra])
            data = trainer.data.train
            for i in range(12):
                phases = PHASES[i % 3] if schedule else PHASES[2]
                trainer.train_step(data.x[128 * i : 128 * (i + 1)], data.y[128 * i : 128 * (i + 1)], 0, phases, i / 12)
            digest = hashlib.sha1()
            for p in trainer.model.parameters():
                digest.update(p.detach().cpu().numpy().tobytes())
            state = trainer.rule_hooks.state_dict()
            for tensor in (state or {}).get("inverses", {}).values():
                digest.update(tensor.cpu().numpy().tobytes())
            print(rule, schedule or "-", digest.hexdigest()[:16], f"(tanh: {activations.CPU_TANH})")


if __name__ == "__main__":
    main()
