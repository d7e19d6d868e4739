"""Would a second tanh pay? ``torch.tanh`` against the sigmoid form ``2 sigmoid(2a) - 1``.

1. One no-grad evaluation on ``(rows, 256)`` float32 tensors (the TP rules' hidden
   activations at batch 128, and the two-evaluation batch of 256 rows).
2. The training step of BP and SDTP (parallel) on ``mnist_fc``, batch 128, with each form
   patched into bioscale's ``Tanh``, interleaved rounds, median per-round ratio. A second
   tanh form earns its place only where it saves at least 5 % of a step.

    python benchmarks/bench_tanh.py [--repeats 3000 --rounds 15] [--name speed/tanh_cpu]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bioscale.architectures.activations import Tanh
from bioscale.commands.train import prepare
from common import REPO, per_call_us, record, step_bench_tokens, time_steps

_ONE = torch.tensor(1.0)


def sigmoid_form_(t: torch.Tensor) -> torch.Tensor:
    """``2 sigmoid(t) - 1`` (= ``tanh(t / 2)``) in ``t``'s memory."""
    s = torch.sigmoid_(t)
    return s.add_(s).sub_(_ONE)


def sigmoid_forward(self, a):
    return torch.sigmoid(a + a) * 2 - 1 if a.requires_grad else sigmoid_form_(a + a)


def sigmoid_forward_(self, a):
    return sigmoid_forward(self, a) if a.requires_grad else sigmoid_form_(a.add_(a))


def torch_forward(self, a):
    return torch.tanh(a)


def torch_forward_(self, a):
    return torch.tanh(a) if a.requires_grad else a.tanh_()


def step_ratios(root: str, rounds: int, steps: int = 8) -> dict:
    """Median per-round step time of each rule with the sigmoid form over ``torch.tanh``."""
    common = step_bench_tokens("mnist", root, "mnist_fc", 128, 0)
    trainers = {
        rule: prepare([*common, f"rule={rule}", *extra])
        for rule, extra in (("bp", []), ("sdtp", ["rules.sdtp.schedule=parallel"]))
    }
    phases = {"bp": frozenset({"forward"}), "sdtp": frozenset({"forward", "inverse"})}
    plain = (Tanh.forward, Tanh.forward_)
    forms = (("torch", (torch_forward, torch_forward_)), ("sigmoid", (sigmoid_forward, sigmoid_forward_)))
    ratios = {rule: [] for rule in trainers}
    for rnd in range(rounds + 1):
        for rule, trainer in trainers.items():
            x, y = trainer.data.train.x[:128], trainer.data.train.y[:128]
            ms = {}
            for form, (fwd, fwd_) in forms:
                Tanh.forward, Tanh.forward_ = fwd, fwd_
                ms[form] = time_steps(trainer, x, y, phases[rule], steps)
            Tanh.forward, Tanh.forward_ = plain
            if rnd:
                ratios[rule].append(ms["sigmoid"] / ms["torch"])
    return {rule: round(statistics.median(r), 3) for rule, r in ratios.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--name", default="speed/tanh_cpu")
    args = parser.parse_args()
    rows = {}
    with torch.no_grad():
        for n in (128, 256):
            a = torch.randn(n, 256)
            torch_us = per_call_us(lambda a=a: torch.tanh(a), args.repeats)
            sigmoid_us = per_call_us(lambda a=a: sigmoid_form_(a + a), args.repeats)
            rows[f"{n}x256"] = {"torch_tanh_us": round(torch_us, 1), "sigmoid_form_us": round(sigmoid_us, 1)}
            print(f"{n}x256: torch.tanh {torch_us:.1f} us, sigmoid form {sigmoid_us:.1f} us")
        grid = torch.linspace(-20, 20, 400001)
        max_abs = float((sigmoid_form_(grid + grid) - torch.tanh(grid)).abs().max())
    steps = step_ratios(args.root, args.rounds)
    for rule, ratio in steps.items():
        print(f"{rule} mnist_fc step with the sigmoid form: x{ratio:.3f} of the torch.tanh step")
    path = record(
        args.name,
        {
            "what": "CPU tanh: torch.tanh vs 2 sigmoid(2a) - 1, per call and per mnist_fc step",
            "per_call": rows,
            "max_abs_difference": max_abs,
            "step_time_sigmoid_over_torch": steps,
            "keep_second_form_if_it_saves_at_least": 0.05,
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
