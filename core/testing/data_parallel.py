"""Kit check: a rule trains the same in several data-parallel processes as in one.

``check_data_parallel(rules, out_dir)`` trains each rule on the tiny digits setup twice, in
one process and in ``processes`` processes under torchrun (gloo, CPU), through
``bioscale.testing.data_parallel_worker``, and compares the final weights (to ``atol``: the
ranks' sums are added in another order than one process adds them, and Adam magnifies such
rounding where gradients are small) and the test errors (exactly). A rule given as a class
must be importable by its module path in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from .harness import TINY_TOKENS

WORKER = "bioscale.testing.data_parallel_worker"


def _rule_ref(rule) -> str:
    return rule if isinstance(rule, str) else f"{rule.__module__}:{rule.__qualname__}"


def _launch(command: list[str], what: str, timeout: float) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise AssertionError(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def check_data_parallel(rules, out_dir, tokens=(), processes: int = 2, atol: float = 1e-3,
                        timeout: float = 600) -> list[dict]:
    """Assert that each of ``rules`` (installed names or importable classes, or ``(rule,
    tokens)`` pairs) trains to the same weights (within ``atol``) and the same test error in
    ``processes`` processes as in one. Returns one report per rule: ``{"rule", "max_abs_diff",
    "test_error_1", "test_error_n"}``."""
    out_dir = Path(out_dir)
    jobs = []
    for i, item in enumerate(rules):
        rule, extra = item if isinstance(item, tuple) else (item, ())
        jobs.append({"rule": _rule_ref(rule), "tokens": [*TINY_TOKENS, *tokens, *extra], "name": f"{i:02d}"})
    spec = out_dir / "data_parallel_jobs.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(jobs))
    one, many = out_dir / "one_process", out_dir / f"{processes}_processes"
    _launch([sys.executable, "-m", WORKER, str(spec), str(one)], "the one-process runs", timeout)
    _launch([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
             "-m", WORKER, str(spec), str(many)], f"the {processes}-process runs", timeout)
    reports = []
    for job in jobs:
        a, b = (_final(folder / job["name"]) for folder in (one, many))
        diffs = {k: float((a["model"][k] - b["model"][k]).abs().max()) for k in a["model"]}
        worst = max(diffs, key=diffs.get)
        report = {"rule": job["rule"], "max_abs_diff": diffs[worst],
                  "test_error_1": a["summary"]["final_test_error"], "test_error_n": b["summary"]["final_test_error"]}
        assert b["world_size"] == processes, f"{job['rule']}: the run says world_size {b['world_size']}"
        assert diffs[worst] <= atol, (f"{job['rule']}: {worst} differs by {diffs[worst]:.3g} (> {atol}) between "
                                      f"{processes} processes and one")
        assert report["test_error_1"] == report["test_error_n"], f"{job['rule']}: test error differs: {report}"
        reports.append(report)
    return reports


def _final(folder: Path) -> dict:
    (run,) = [p for p in folder.iterdir() if p.is_dir()]
    from omegaconf import OmegaConf

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    return {"model": state["model"], "summary": json.loads((run / "summary.json").read_text()),
            "world_size": OmegaConf.load(run / "config.yaml").run_info.world_size}
