"""What pluggy's hook dispatch costs a training step: BP's ``mnist_fc`` step timed with the
rule's per-step hooks called through ``pm.hook`` against a direct call of the one
implementation, interleaved rounds, median of the per-round ratio.

Decides whether the trainer may bypass pluggy for per-step hooks (kept only if it saves
at least 2 % of BP's step). ``--rule`` times another rule the same way.

    python benchmarks/bench_hook_dispatch.py [--rule bp --rounds 30 --steps 20]
"""

from __future__ import annotations

import argparse
import statistics

from bioscale.commands.train import prepare
from common import REPO, record, step_bench_tokens, time_steps


def direct_calls(hooks):
    """Call ``hooks``' per-step hooks on their one implementation, as a bypass would."""
    impls = {
        name: getattr(hooks._hook, name).get_hookimpls()
        for name in (
            "bioscale_output_target",
            "bioscale_layer_target",
            "bioscale_feedback_signal",
            "bioscale_update_inverse",
        )
    }

    def call(hook, **kwargs):
        found = impls.get(hook)
        if not found or len(found) != 1:
            return getattr(hooks._hook, hook)(**kwargs)
        return found[0].function(*[kwargs[n] for n in found[0].argnames])

    return call


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--rule", default="bp")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--name", default="speed/hook_dispatch_bp_mnist_fc")
    args = parser.parse_args()
    trainer = prepare([*step_bench_tokens("mnist", args.root, "mnist_fc", 128, 0), f"rule={args.rule}"])
    hooks = trainer.rule_hooks
    direct = direct_calls(hooks)

    def through_pluggy(hook, **kwargs):
        return getattr(hooks._hook, hook)(**kwargs)

    x, y = trainer.data.train.x[:128], trainer.data.train.y[:128]
    phases = frozenset({"forward"})
    times = {"pluggy": [], "direct": []}
    ratios = []
    for rnd in range(args.rounds + 1):
        this = {}
        for variant, call in (("pluggy", through_pluggy), ("direct", direct)):
            hooks._call = call
            this[variant] = time_steps(trainer, x, y, phases, args.steps)
        if rnd:
            times["pluggy"].append(this["pluggy"])
            times["direct"].append(this["direct"])
            ratios.append(this["direct"] / this["pluggy"])
    saving = 1 - statistics.median(ratios)
    rows = {k: round(statistics.median(v), 4) for k, v in times.items()}
    print(
        f"{args.rule}: pluggy {rows['pluggy']:.3f} ms/step, direct {rows['direct']:.3f} ms/step, "
        f"direct saves {100 * saving:.2f} % of the step"
    )
    path = record(
        args.name,
        {
            "what": f"{args.rule} mnist_fc forward step (batch 128): per-step rule hooks through pluggy vs a direct call",
            "rule": args.rule,
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "ms_per_step": rows,
            "direct_saves_fraction_of_step": round(saving, 4),
            "keep_bypass_if_saving_at_least": 0.02,
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
