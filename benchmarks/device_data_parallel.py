"""Every rule in 2 data-parallel processes against 1, on one device: the device check's torchrun step.

Trains each rule on the kit's tiny digits setup (``bioscale.testing.data_parallel``) once in one
process and once under torchrun in ``--processes`` processes with the given ``--tokens`` (on a lent
GPU: ``trainer.device=cuda trainer.backend=gloo``, so two ranks share the one GPU, which NCCL refuses),
then compares each rule's final weights (``--atol``) and test error. Every rule is reported, a
mismatch or a failed launch included; the record lands in results/ like every benchmark's.

    python benchmarks/device_data_parallel.py --tokens trainer.device=cuda trainer.backend=gloo
        [--rules bp fa ...] [--epochs 1] [--name speed/gpu/data_parallel]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bioscale.testing.data_parallel import compare_runs, final_state, train_jobs
from common import record

RULES = ["bp", "fa", "dfa", "signsym", "kp", "wm", "dtp", "sdtp", "aosdtp", "ddtp", "ldrl"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", nargs="+", default=RULES)
    parser.add_argument("--tokens", nargs="*", default=[])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--atol", type=float, default=1e-3)
    parser.add_argument("--name", default="speed/gpu/data_parallel")
    args = parser.parse_args()
    tokens = [*args.tokens, f"trainer.epochs={args.epochs}"]
    out = Path(tempfile.mkdtemp(prefix="device-dp-"))
    rows: dict[str, dict] = {}
    try:
        ones = train_jobs(args.rules, out, tokens, 1)
        manys = train_jobs(args.rules, out, tokens, args.processes)
    except AssertionError as exc:  # a launch failed: say which, with its output
        rows["launch"] = {"error": str(exc)[-4000:]}
        ones = manys = []
    for one, many in zip(ones, manys):
        try:
            a, b = final_state(one["folder"]), final_state(many["folder"])
            diff = compare_runs(a, b, f"{one['rule']}, {args.processes} processes against one", args.atol)
            rows[one["rule"]] = {"same": True, "max_abs_weight_diff": diff}
        except (AssertionError, OSError, ValueError) as exc:
            rows[one["rule"]] = {"same": False, "error": str(exc)[-2000:]}
        print(one["rule"], rows[one["rule"]], flush=True)
    path = record(
        args.name,
        {
            "what": f"each rule trained in {args.processes} torchrun processes against one (tiny digits setup, "
            f"{args.epochs} epoch(s)); final weights within atol and equal test errors",
            "tokens": tokens,
            "atol": args.atol,
            "results": rows,
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
