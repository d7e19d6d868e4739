"""Run a set of ``bioscale train`` configurations (grid or random), a few at a time.

Each trial is a real ``bioscale train`` subprocess with ``trainer.threads=1`` (several
single-threaded runs use 2 cores better than one two-threaded run for these small nets).
Per trial, ``config.yaml``, ``metrics.jsonl`` and ``summary.json`` are copied to
``results/<name>/<label>/`` (checkpoints stay in the run folder), and
``results/<name>/sweep.md`` / ``sweep.json`` tabulate every trial with the exact command.

    python benchmarks/sweep.py NAME --base "rule=bp data=mnist ..." \\
        --grid "rules.bp.optimizer.lr=1e-4,3e-4" --grid "trainer.batch_size=64,128" [--jobs 2]
    python benchmarks/sweep.py NAME --base "..." --random 8 \\
        --loguniform rules.dtp.optimizer.lr=1e-5:3e-4 --choice rules.dtp.optimizer.beta2=0.99,0.999
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, RESULTS, git_commit, machine


def grid_trials(grids: list[str]) -> list[list[str]]:
    axes = []
    for g in grids:
        key, values = g.split("=", 1)
        axes.append([f"{key}={v}" for v in values.split(",")])
    return [list(t) for t in itertools.product(*axes)] if axes else [[]]


def random_trials(n: int, loguniform: list[str], uniform: list[str], choice: list[str], seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    trials = []
    for _ in range(n):
        t = []
        for spec in loguniform:
            key, rng_s = spec.split("=", 1)
            lo, hi = (float(v) for v in rng_s.split(":"))
            t.append(f"{key}={math.exp(rng.uniform(math.log(lo), math.log(hi))):.3g}")
        for spec in uniform:
            key, rng_s = spec.split("=", 1)
            lo, hi = (float(v) for v in rng_s.split(":"))
            t.append(f"{key}={rng.uniform(lo, hi):.3g}")
        for spec in choice:
            key, values = spec.split("=", 1)
            t.append(f"{key}={rng.choice(values.split(','))}")
        trials.append(t)
    return trials


def label_of(trial: list[str]) -> str:
    if not trial:
        return "default"
    parts = []
    for token in trial:
        key, value = token.split("=", 1)
        if key.endswith(".root"):  # a path says nothing about the trial
            continue
        parts.append(key.split(".")[-1] + value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", "_".join(parts))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--base", required=True, help="tokens shared by every trial")
    parser.add_argument("--grid", action="append", default=[])
    parser.add_argument("--trial", action="append", default=[], help="one explicit trial: space-separated overrides")
    parser.add_argument("--random", type=int, default=0)
    parser.add_argument("--loguniform", action="append", default=[])
    parser.add_argument("--uniform", action="append", default=[])
    parser.add_argument("--choice", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random search")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs-dir", default=str(REPO / "runs" / "sweeps"))
    parser.add_argument("--resume", action="append", default=[], metavar="RUN_FOLDER",
                        help="continue an interrupted run of this sweep from its checkpoint (bioscale resume); runs first")
    args = parser.parse_args()

    base = shlex.split(args.base)
    trials = grid_trials(args.grid) if args.grid or not args.trial else []
    trials += [shlex.split(t) for t in args.trial]
    if args.random:
        trials = [g + r for g in trials for r in random_trials(args.random, args.loguniform, args.uniform, args.choice, args.seed)]
    out = RESULTS / args.name
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.runs_dir) / args.name
    pending = [(f"{i:02d}-{label_of(t)}", t) for i, t in enumerate(trials)]
    pending = [(f"resumed-{Path(r).name}", ["resume", str(Path(r).resolve())]) for r in args.resume] + pending
    running, done = [], []
    started = time.time()
    args.launch = {"commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M %Z")}  # the code the trials run
    while pending or running:
        while pending and len(running) < args.jobs:
            label, trial = pending.pop(0)
            if trial[:1] == ["resume"]:
                cmd = ["bioscale", "resume", trial[1], "trainer.threads=1", "trainer.progress=false"]
            else:
                cmd = ["bioscale", "train", *base, *trial, "trainer.threads=1", f"output_dir={runs_dir}", "trainer.progress=false"]
            log = open(out / f"{label}.log", "w")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO)
            running.append((label, trial, cmd, proc, log))
            print(f"started {label}: {' '.join(trial)}", flush=True)
        time.sleep(2)
        for item in list(running):
            label, trial, cmd, proc, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            lines = proc.stdout.read().strip().splitlines()
            row = {"label": label, "overrides": trial, "command": " ".join(shlex.quote(c) for c in cmd), "exit": proc.returncode}
            run_dir = Path(lines[-1]) if lines else None
            if run_dir and (run_dir / "summary.json").exists():
                dest = out / label
                dest.mkdir(exist_ok=True)
                for f in ("config.yaml", "metrics.jsonl", "summary.json"):
                    shutil.copy(run_dir / f, dest / f)
                row["run_dir"] = str(run_dir)
                row.update({k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items()
                            if k in ("status", "rule", "paper_test_error", "best_test_error", "best_epoch", "final_test_error", "final_train_error",
                                     "seconds_per_epoch", "epochs", "best_val_error", "test_error_at_best_val")})
            done.append(row)
            print(f"finished {label}: exit {proc.returncode} best {row.get('best_test_error')} final {row.get('final_test_error')}", flush=True)
            write_tables(out, args, base, done, started)
    write_tables(out, args, base, done, started)


def write_tables(out: Path, args, base, done, started):
    rows = sorted(done, key=lambda r: (r.get("final_test_error") is None, r.get("final_test_error") or 0))
    has_val = any("best_val_error" in r for r in rows)
    head = "| trial | overrides | best test % | final test % | final train % | s/epoch | paper test % | status |"
    if has_val:
        head = head[:-10] + " best val % | test at best val % | status |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        cells = [r["label"], " ".join(r["overrides"]) or "(defaults)", f(r.get("best_test_error")), f(r.get("final_test_error")),
                 f(r.get("final_train_error")), f(r.get("seconds_per_epoch")), f(r.get("paper_test_error"))]
        if has_val:
            cells += [f(r.get("best_val_error")), f(r.get("test_error_at_best_val"))]
        cells.append(str(r.get("status", f"exit {r['exit']}")))
        lines.append("| " + " | ".join(cells) + " |")
    info = machine()
    header = (
        f"# sweep {args.name}\n\n"
        f"- command: `python benchmarks/sweep.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`\n"
        f"- base: `bioscale train {' '.join(base)}` (+ trainer.threads=1 per trial, {args.jobs} trials at a time)\n"
        f"- commit at launch: {args.launch['commit']}; launched: {args.launch['date']}; written: {time.strftime('%Y-%m-%d %H:%M %Z')}; "
        f"machine: {info['cpu']}, {info['cores']} cores, {info['device']}; torch {info['torch']}\n"
        f"- wall time so far: {(time.time() - started) / 60:.1f} min; {len(done)} trials done\n\n"
    )
    (out / "sweep.md").write_text(header + "\n".join(lines) + "\n")
    (out / "sweep.json").write_text(json.dumps({"argv": sys.argv, "base": base, "machine": info, "commit": args.launch["commit"],
                                           "launched": args.launch["date"], "trials": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
