"""Are a compiled step's gradients right? ``trainer.compile=true`` against eager on the same batches.

Two trainers from the same seed (eager, compiled) take the same ``--steps`` steps; after each, every forward
parameter's gradient (``.grad``, which each step overwrites) is compared: ``‖g_compiled − g_eager‖ / ‖g_eager‖``.
Parameters drift apart over steps where Adam's normalised update magnifies rounding of near-zero gradients;
the gradients of a right compiled path stay at rounding distance. Reuses an inductor cache named by
``TORCHINDUCTOR_CACHE_DIR`` when set.

    python benchmarks/compile_gradients.py [--cases cifar_lc:dtp,mnist_fc:dtp] [--steps 3]
        [--name speed/compile_gradients]
"""

from __future__ import annotations

import argparse

from bench_compile import build
from common import REPO, record, step_phases


def case(model: str, rule: str, args) -> list[dict]:
    eager, compiled = build(model, rule, False, args), build(model, rule, True, args)
    x, y = eager.data.train.x[: args.batch_size], eager.data.train.y[: args.batch_size]
    phases = step_phases(rule)
    steps = []
    for _ in range(args.steps):
        eager.train_step(x, y, 0, phases, 0.5)
        compiled.train_step(x, y, 0, phases, 0.5)
        diffs = {
            name: float((b.grad - a.grad).norm() / a.grad.norm().clamp_min(1e-30))
            for (name, a), b in zip(eager.model.named_parameters(), compiled.model.parameters())
        }
        worst = max(diffs, key=diffs.__getitem__)
        steps.append({"largest_relative_gradient_difference": diffs[worst], "parameter": worst})
    print(f"{model}:{rule} {steps}", flush=True)
    return steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default="cifar_lc:dtp,mnist_fc:dtp")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--name", default="speed/compile_gradients")
    args = parser.parse_args()
    rows = {}
    for item in args.cases.split(","):
        model, rule = item.split(":")
        rows[item] = case(model, rule, args)
    path = record(
        args.name,
        {
            "what": "compiled against eager step: per step, the largest relative norm difference of a forward "
            "parameter's gradient (both trainers from one seed, the same batch each step)",
            "batch_size": args.batch_size,
            "results": rows,
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
