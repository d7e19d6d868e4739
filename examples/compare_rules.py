"""Compare learning rules from a script, with bioscale's documented Python API only.

    python examples/compare_rules.py --rules bp fa dtp --epochs 5

Trains each rule on the same data, net and seed (the shipped digits by default), prints the table, saves the
learning curves beside it, and checks the best run's network on its own test split.
"""

from __future__ import annotations

import argparse

import bioscale
import torch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=["bp", "fa"], help="installed rule names")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="digits_fc", help="an installed architecture (bioscale models)")
    parser.add_argument("--out", default="runs", help="where the run folders go")
    args = parser.parse_args(argv)

    result = bioscale.compare(args.rules, model=args.model, trainer={"epochs": args.epochs}, output_dir=args.out)
    print(result.table)
    result.plot().savefig(result.dir / "curves.png")

    best = min(result.runs, key=lambda run: run.summary["best_test_error"])
    test = best.load_data().test
    with torch.no_grad():
        error = 100.0 * (best.model(test.x).argmax(1) != test.y).float().mean().item()
    print(f"best: {best.config['rule']}, its last checkpoint's test error {error:.2f} % ({best.dir})")


if __name__ == "__main__":
    main()
