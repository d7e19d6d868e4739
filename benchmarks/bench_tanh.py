"""The CPU tanh: ``torch.tanh`` against the sigmoid form ``2 sigmoid(2a) - 1``.

Times both (no grad, out of place, as the forward pass calls them) on ``(rows, 256)``
float32 tensors (the TP rules' hidden activations at batch 128, and the two-evaluation
batch of 256 rows) with torch's current thread count, reports the largest absolute
difference on a dense grid of inputs, and which form bioscale's ``Tanh`` uses on this
machine (``activations.CPU_TANH``). Records ``results/<name>.json``.

    python benchmarks/bench_tanh.py [--repeats 3000] [--name tanh_cpu]
"""

from __future__ import annotations

import argparse

import torch

from common import per_call_us, record

from bioscale.architectures import activations
from bioscale.architectures.activations import Tanh


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3000)
    parser.add_argument("--name", default="tanh_cpu")
    args = parser.parse_args()
    rows = {}
    with torch.no_grad():
        for n in (128, 256):
            a = torch.randn(n, 256)
            torch_us = per_call_us(lambda: torch.tanh(a), args.repeats)
            sigmoid_us = per_call_us(lambda: Tanh.sigmoid_form_(a + a), args.repeats)
            rows[f"{n}x256"] = {"torch_tanh_us": round(torch_us, 1), "sigmoid_form_us": round(sigmoid_us, 1),
                                "torch_tanh_speedup": round(sigmoid_us / torch_us, 2)}
            print(f"{n}x256: torch.tanh {torch_us:.1f} us, sigmoid form {sigmoid_us:.1f} us, "
                  f"torch.tanh x{sigmoid_us / torch_us:.2f} as fast")
        grid = torch.linspace(-20, 20, 400001)
        max_abs = float((Tanh.sigmoid_form_(grid + grid) - torch.tanh(grid)).abs().max())
    print(f"max |difference| on [-20, 20]: {max_abs:.2e}; bioscale's Tanh uses: {activations.CPU_TANH}")
    path = record(args.name, {"what": "one no-grad CPU tanh evaluation, float32: torch.tanh and 2 sigmoid(2a) - 1",
                              "results": rows, "max_abs_difference": max_abs,
                              "cpu_vendor": activations.cpu_vendor(), "bioscale_cpu_tanh": activations.CPU_TANH})
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
