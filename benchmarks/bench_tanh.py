"""The CPU tanh: ``torch.tanh`` against bioscale's ``Tanh`` (``2 sigmoid(2a) - 1``).

Times both on ``(rows, 256)`` float32 tensors (the TP rules' hidden activations at batch 128,
and the two-evaluation batch of 256 rows) with torch's current thread count, and the largest
absolute difference on a dense grid of inputs. Records ``results/<name>.json``.

    python benchmarks/bench_tanh.py [--repeats 3000]
"""

from __future__ import annotations

import argparse

import torch

from common import per_call_us, record

from bioscale.architectures import make_activation


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3000)
    parser.add_argument("--name", default="tanh_cpu")
    args = parser.parse_args()
    act = make_activation("tanh")
    rows = {}
    with torch.no_grad():
        for n in (128, 256):
            a = torch.randn(n, 256)
            torch_us = per_call_us(lambda: torch.tanh(a), args.repeats)
            ours_us = per_call_us(lambda: act(a), args.repeats)
            rows[f"{n}x256"] = {"torch_tanh_us": round(torch_us, 1), "bioscale_tanh_us": round(ours_us, 1),
                                "speedup": round(torch_us / ours_us, 2)}
            print(f"{n}x256: torch.tanh {torch_us:.1f} us, bioscale Tanh {ours_us:.1f} us, x{torch_us / ours_us:.2f}")
        grid = torch.linspace(-20, 20, 400001)
        max_abs = float((act(grid) - torch.tanh(grid)).abs().max())
    print(f"max |difference| on [-20, 20]: {max_abs:.2e}")
    path = record(args.name, {"what": "one no-grad tanh evaluation, CPU, float32", "results": rows,
                              "max_abs_difference": max_abs})
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
