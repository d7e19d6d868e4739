"""``bioscale sweep rule=R [key=value ...] [sweep.<setting>=...]``: the paper's search protocol.

N trials of ``bioscale train`` settings drawn from the rule's search space (or the user's), K
worker processes at a time, on an Optuna study that rerunning the same command resumes; the
same command on other machines with a shared ``sweep.storage`` joins the same study. See
``bioscale.search.settings.SweepConfig`` for the settings and ARCHITECTURE.md for the loop.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bioscale.architectures.activations import cpuinfo_field

from ..config import build_run_config, resolve_rule
from ..discovery import RULES_GROUP, discover, load_rule_class
from ..errors import BioscaleError, ConfigError
from ..search.report import write_report
from ..search.settings import SweepConfig, split_sweep_tokens, sweep_config
from ..search.space import format_value, rule_space, user_space
from ..search.study import SweepWork, open_study, progress_line, run_worker

if TYPE_CHECKING:
    import optuna


def _check_space(tokens: list[str], space: dict) -> None:
    """Both ends (or every choice) of each searched key pass the config schema and its ranges."""
    for param in space.values():
        for value in param.extremes():
            try:
                resolve_rule(build_run_config([*tokens, f"{param.key}={format_value(value)}"]))
            except ConfigError as exc:
                raise ConfigError(f"sweep space {param.key} ({param.kind}: {param.values}): {exc}") from exc


def _validation_tokens(tokens: list[str], fraction: float) -> list[str]:
    """``data.validation=<count>`` when the user's tokens hold none: ``fraction`` of the training set."""
    cfg = build_run_config(tokens)
    if cfg.data.validation > 0:
        return []
    from bioscale.datasets import load_data

    n = len(load_data(cfg.data).train)
    return [f"data.validation={max(1, int(n * fraction))}"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def main(tokens: list[str]) -> int:
    folder = run_sweep(tokens)
    if not os.environ.get("BIOSCALE_SWEEP_WORKER"):
        print(folder / "sweep.md", flush=True)
    return 0


def run_sweep(tokens: list[str], in_process_only: bool = False) -> Path:
    """Run (or continue) the sweep ``tokens`` describe; returns its folder. ``in_process_only``: refuse
    several workers (processes cannot see plugins registered from Python)."""
    run_tokens, sweep_pairs, space_tokens = split_sweep_tokens(tokens)
    settings = sweep_config(sweep_pairs)
    if in_process_only and settings.workers > 1:
        raise ConfigError(
            f"sweep.workers={settings.workers}: worker processes cannot see plugins registered from Python; "
            "run one worker (sweep.workers=1) or install them as a package"
        )
    cfg = build_run_config(run_tokens)
    spec = resolve_rule(cfg)
    space = _search_space(spec.name, settings.space, space_tokens)
    base = _base_tokens(run_tokens, settings.validation_fraction)
    _check_space(base, space)
    name = settings.study or _slug(f"sweep-{spec.name}-{cfg.data.name}-{cfg.model.preset}")
    folder = Path(settings.dir or Path(cfg.output_dir) / "sweeps" / name)
    folder.mkdir(parents=True, exist_ok=True)
    url = settings.storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    study = _open_study(url, name, settings, space)
    meta = _sweep_meta(tokens, base, settings, url, space)
    if not os.environ.get("BIOSCALE_SWEEP_WORKER"):  # each sitting of the sweep: its commit, machine and start
        session = {k: meta[k] for k in ("commit", "machine", "started")}
        study.set_user_attr("sessions", [*study.user_attrs.get("sessions", []), session])
    work = SweepWork(study, folder, space, base, settings.trials, report=lambda: write_report(folder, study, meta))
    print(
        f"[bioscale] sweep {name}: {settings.trials} trials, {settings.workers} worker(s), study in {url}, folder {folder}",
        file=sys.stderr,
        flush=True,
    )
    try:
        if settings.workers == 1 or os.environ.get("BIOSCALE_SWEEP_WORKER"):
            run_worker(work)
        else:
            _run_workers(tokens, settings.workers, folder, name, url)
    finally:
        if not os.environ.get("BIOSCALE_SWEEP_WORKER"):
            write_report(folder, study, meta)
            print(progress_line(study, settings.trials), file=sys.stderr, flush=True)
    return folder


def _search_space(rule: str, space_file: str, space_tokens: dict[str, str]) -> dict:
    """The rule's declared space, overridden key by key by the user's (``sweep.space=FILE`` and
    ``sweep.space.<key>=<spec>``); a ConfigError when the two together name no key."""
    _, cls = load_rule_class(rule, discover(RULES_GROUP))
    space = {**rule_space(rule, cls), **user_space(space_file, space_tokens)}
    if not space:
        raise ConfigError(
            f"rule {rule!r} declares no search space; give one with sweep.space=FILE.yaml "
            f"or sweep.space.<key>=<spec> (e.g. sweep.space.rules.{rule}.optimizer.lr=loguniform:1e-5:3e-4)"
        )
    return space


def _base_tokens(run_tokens: list[str], validation_fraction: float) -> list[str]:
    """Every trial's tokens before its drawn settings: the user's, one thread unless they say
    otherwise, no progress bar, and a validation split."""
    base = [*run_tokens]
    if not any(t.startswith("trainer.threads=") for t in base):
        base.append("trainer.threads=1")
    return base + ["trainer.progress=false", *_validation_tokens(base, validation_fraction)]


def _open_study(url: str, name: str, settings: SweepConfig, space: dict) -> optuna.Study:
    """The study at ``url``, which records ``space``; a ConfigError when it was searched over another."""
    study = open_study(
        url,
        name,
        settings.sampler.value,
        settings.pruner.value,
        settings.prune_warmup,
        settings.seed,
        settings.heartbeat,
        shared=bool(settings.storage),
    )
    declared = {k: f"{p.kind}:{p.values}" for k, p in space.items()}
    if study.user_attrs.get("space", declared) != declared:
        raise ConfigError(
            f"study {name!r} in {url} was searched over another space ({study.user_attrs['space']}); "
            f"this command's space is {declared}: name a new study with sweep.study=..."
        )
    study.set_user_attr("space", declared)
    return study


def _sweep_meta(tokens: list[str], base: list[str], settings: SweepConfig, url: str, space: dict) -> dict:
    """What the report says of this sweep: its command, commit, machine, start and settings."""
    return {
        "command": "bioscale sweep " + " ".join(shlex.quote(t) for t in tokens),
        "commit": _commit(),
        "machine": f"{cpuinfo_field('model name') or platform.machine()}, {os.cpu_count()} cores",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "validation": next((t.split("=", 1)[1] for t in base if t.startswith("data.validation=")), "?"),
        "sampler": settings.sampler.value,
        "pruner": settings.pruner.value,
        "trials_planned": settings.trials,
        "workers": settings.workers,
        "storage": url,
        "space": {k: f"{p.kind}:{p.values}" for k, p in space.items()},
    }


def _run_workers(tokens: list[str], workers: int, folder: Path, name: str, url: str) -> None:
    """``workers`` processes running this same sweep (one worker each); Ctrl-C stops them all."""
    pinned = [t for t in tokens if not t.startswith(("sweep.workers=", "sweep.dir=", "sweep.study=", "sweep.storage="))]
    args = [
        sys.executable,
        "-m",
        "bioscale",
        "sweep",
        *pinned,
        "sweep.workers=1",
        f"sweep.dir={folder}",
        f"sweep.study={name}",
        f"sweep.storage={url}",
    ]
    procs = [
        subprocess.Popen(
            args, env={**os.environ, "BIOSCALE_SWEEP_WORKER": str(i + 1)}, stdout=sys.stderr, start_new_session=True
        )  # a terminal's Ctrl-C reaches them once, from here
        for i in range(workers)
    ]
    try:
        codes = [proc.wait() for proc in procs]
    except KeyboardInterrupt:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # handled like Ctrl-C, and never inherited as ignored
        for proc in procs:
            proc.wait()
        raise
    failed = [c for c in codes if c != 0]
    if failed:
        raise SweepWorkerError(
            f"{len(failed)} of {workers} sweep workers failed (exit statuses {failed}); their errors are above",
            exit_status=failed[0] if failed[0] > 0 else 1,
        )


class SweepWorkerError(BioscaleError):
    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


def _commit() -> str:
    try:
        here = Path(__file__).resolve().parents[2]
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
