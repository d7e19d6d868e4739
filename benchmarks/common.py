"""Shared helpers for benchmark scripts: machine description, result recording, timing and
the run settings of in-process step benchmarks."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from bioscale.architectures import activations
from bioscale.architectures.activations import cpuinfo_field

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


def cpu_model() -> str:
    return cpuinfo_field("model name") or platform.processor() or platform.machine()


def machine() -> dict:
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "device": "cpu",
        "cpu_tanh": activations.CPU_TANH,
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def record(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` with command, commit, machine and date."""
    (RESULTS / name).parent.mkdir(parents=True, exist_ok=True)
    data = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def per_call_us(fn, repeats: int = 2000, warmup: int = 50) -> float:
    """Mean wall time of ``fn()`` in microseconds over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e6


def step_bench_tokens(data: str, root: str, model: str, batch_size: int, threads: int) -> list[str]:
    """Config tokens for a trainer that only times steps: no checkpoint, console or
    diagnostics, a 100-epoch learning-rate horizon, ``trainer.threads`` as given."""
    return [
        f"data={data}",
        f"data.root={root}",
        f"model={model}",
        f"trainer.batch_size={batch_size}",
        "output_dir=/tmp/bioscale-bench",
        "trainer.checkpoint=false",
        "observers.console.enabled=false",
        "observers.diagnostics.enabled=false",
        "trainer.epochs=100",
        f"trainer.threads={threads}",
    ]


def add_tanh_option(parser) -> None:
    """``--tanh auto|torch|sigmoid``: the CPU tanh form, this machine's choice or a forced one."""
    parser.add_argument(
        "--tanh",
        choices=("auto", "torch", "sigmoid"),
        default="auto",
        help="CPU tanh form: this machine's choice (auto) or a forced one, to measure the choice",
    )


def apply_tanh_option(args) -> None:
    """Force ``args.tanh`` on bioscale's ``Tanh`` unless it is ``auto``."""
    if args.tanh != "auto":
        activations.CPU_TANH = args.tanh


def time_calls(step, steps: int) -> float:
    """Milliseconds per call of ``step()`` over ``steps`` calls, after one warm-up call."""
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def time_steps(trainer, x, y, phases: frozenset, steps: int) -> float:
    """Milliseconds per ``trainer.train_step`` on the batch ``x``, ``y`` over ``steps`` steps,
    after one warm-up step."""
    return time_calls(lambda: trainer.train_step(x, y, 0, phases, 0.5), steps)


EVERY_RULE = ("bp", "fa", "dfa", "signsym", "kp", "wm", "dtp", "sdtp", "aosdtp", "ddtp", "ldrl")


def has_schedule(rule: str) -> bool:
    """Whether ``rule``'s settings have a ``schedule`` (an inverse or feedback phase beside the
    forward one: parallel or alternating), read from the installed rule, not from a list."""
    from bioscale.config import build_run_config, resolve_rule

    return "schedule" in resolve_rule(build_run_config([f"rule={rule}"])).config


def step_phases(rule: str) -> frozenset:
    """The phases of the dearest step of ``rule``: forward and inverse (its parallel schedule) for
    a rule with a schedule, else forward."""
    return frozenset({"forward", "inverse"}) if has_schedule(rule) else frozenset({"forward"})
