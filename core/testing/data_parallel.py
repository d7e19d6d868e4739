"""Kit check: a rule trains the same in several data-parallel processes as in one.

``check_data_parallel(rules, out_dir)`` trains each rule on the tiny digits setup twice, in
one process and in ``processes`` processes under torchrun (gloo, CPU), through
``bioscale.testing.data_parallel_worker``, and compares the final weights (to ``atol``: the
ranks' sums are added in another order than one process adds them, and Adam magnifies such
rounding where gradients are small) and the test errors (exactly). A rule given as a class
must be defined at module level; its module's folder is put on the processes' ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from .harness import TINY_TOKENS, renamed_section_tokens, rule_name_of

WORKER = "bioscale.testing.data_parallel_worker"


def rule_ref(rule) -> str:
    """``rule`` as the worker reads it: an installed name, or ``module:QualName`` of a class."""
    if isinstance(rule, str):
        return rule
    if "<locals>" in rule.__qualname__:
        raise ValueError(
            f"{rule.__qualname__} is defined inside a function: the data-parallel check imports the rule "
            f"class in fresh processes, so define it at module level (or pass data_parallel=False)"
        )
    return f"{rule.__module__}:{rule.__qualname__}"


def _module_root(rule) -> str | None:
    """The folder from which ``rule``'s module imports (a test file's folder, say)."""
    if isinstance(rule, str):
        return None
    module = sys.modules.get(rule.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    up = rule.__module__.count(".") + (Path(file).stem == "__init__")  # a package's __init__ sits one folder lower
    return str(Path(file).resolve().parents[up])


def _launch(command: list[str], what: str, timeout: float, paths=()) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, env.get("PYTHONPATH")]))
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise AssertionError(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def train_jobs(rules, out_dir: Path, tokens=(), processes: int = 1, timeout: float = 600) -> list[dict]:
    """Train each of ``rules`` (as in :func:`check_data_parallel`) in ``processes`` processes
    (one: a plain process; more: torchrun) under ``out_dir``; returns one job dict per rule
    (``rule``, ``tokens``, ``folder``: where its run folder is)."""
    jobs: list[dict[str, Any]] = []
    paths = []
    for i, item in enumerate(rules):
        rule, extra = item if isinstance(item, tuple) else (item, ())
        name = rule if isinstance(rule, str) else rule_name_of(rule)
        jobs.append(
            {
                "rule": rule_ref(rule),
                "name": f"{i:02d}",
                "tokens": renamed_section_tokens([*TINY_TOKENS, *tokens, *extra], name),
            }
        )
        paths.append(_module_root(rule))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = out_dir / "data_parallel_jobs.json"
    spec.write_text(json.dumps(jobs))
    folder = out_dir / ("one_process" if processes == 1 else f"{processes}_processes")
    command = [sys.executable, "-m", WORKER, str(spec), str(folder)]
    if processes > 1:
        command[1:3] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m", WORKER]
    what = "the one-process runs" if processes == 1 else f"the {processes}-process runs"
    _launch(command, what, timeout, dict.fromkeys(p for p in paths if p))
    return [{**job, "folder": folder / job["name"]} for job in jobs]


def compare_runs(a: dict, b: dict, what: str, atol: float) -> float:
    """Assert that two finished runs (:func:`final_state`) have weights within ``atol`` and the
    same final test error; returns the largest weight difference."""
    diffs = {k: float((a["model"][k] - b["model"][k]).abs().max()) for k in a["model"]}
    worst = max(diffs, key=diffs.__getitem__)
    assert diffs[worst] <= atol, f"{what}: {worst} differs by {diffs[worst]:.3g} (> {atol})"
    errors = a["summary"]["final_test_error"], b["summary"]["final_test_error"]
    assert errors[0] == errors[1], f"{what}: the final test error differs: {errors[0]} and {errors[1]}"
    return diffs[worst]


def check_data_parallel(
    rules, out_dir, tokens=(), processes: int = 2, atol: float = 1e-3, timeout: float = 600
) -> list[dict]:
    """Assert that each of ``rules`` (installed names or importable classes, or ``(rule,
    tokens)`` pairs) trains to the same weights (within ``atol``) and the same test error in
    ``processes`` processes as in one. Returns one report per rule: ``{"rule", "max_abs_diff",
    "test_error_1", "test_error_n"}``."""
    ones = train_jobs(rules, out_dir, tokens, 1, timeout)
    manys = train_jobs(rules, out_dir, tokens, processes, timeout)
    reports = []
    for one, many in zip(ones, manys):
        a, b = final_state(one["folder"]), final_state(many["folder"])
        assert b["world_size"] == processes, f"{one['rule']}: the run says world_size {b['world_size']}"
        diff = compare_runs(a, b, f"{one['rule']}, {processes} processes against one", atol)
        reports.append(
            {
                "rule": one["rule"],
                "max_abs_diff": diff,
                "test_error_1": a["summary"]["final_test_error"],
                "test_error_n": b["summary"]["final_test_error"],
            }
        )
    return reports


def final_state(folder: Path) -> dict:
    """The one run folder under ``folder``: its checkpoint's weights, summary and world size."""
    (run,) = [p for p in Path(folder).iterdir() if p.is_dir()]
    from omegaconf import OmegaConf

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    return {
        "model": state["model"],
        "summary": json.loads((run / "summary.json").read_text()),
        "world_size": OmegaConf.load(run / "config.yaml").run_info.world_size,
    }
