"""The Optuna study of a sweep and the worker loop that runs its trials, one at a time.

A worker takes the sweep folder's lock (``fcntl.flock``, for the workers of one machine) to
count the study's trials and ask for the next one, so that a study never gets more than
``sweep.trials`` finished trials from one machine's workers. Finished means complete, pruned,
or failed by the run itself (diverged or broken: ``user_attrs["failure"]``). A trial whose
worker died (a dead pid on this host, or no heartbeat for ``3 × sweep.heartbeat`` seconds) is
failed and retried once with the same settings; an interrupted one is failed and not counted.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from .. import __version__
from ..config import build_run_config, resolve_observers, resolve_rule
from ..config.resolve import ObserverSpec
from ..discovery import OBSERVERS_GROUP, PluginEntry
from ..errors import BioscaleError, ConfigError, DivergenceError, StopRun, UsageError
from ..markers import hookimpl
from ..processes import pid_alive
from ..run_lock import waiting_lock
from .space import Param, format_value

if TYPE_CHECKING:
    from optuna.storages._heartbeat import BaseHeartbeat

optuna.logging.set_verbosity(optuna.logging.WARNING)
# heartbeats are recorded by this module's own thread (Study.optimize would run trials itself)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_study(
    url: str, name: str, sampler: str, pruner: str, prune_warmup: int, seed: int, heartbeat: int, shared: bool = False
) -> optuna.Study:
    """The study; ``shared`` (a storage other machines may use too): the sampler's seed also
    mixes in this host and process, so that machines started alike draw different settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry: dict[str, Any]
        if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
            retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
        else:
            retry = {"failed_trial_callback": RetryFailedTrialCallback(max_retry=1)}
        storage = RDBStorage(url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat, **retry)
    make_pruner = {
        "none": optuna.pruners.NopPruner,
        "median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=prune_warmup),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, prune_warmup)),
    }[pruner]
    study = optuna.create_study(
        study_name=name, storage=storage, direction="minimize", load_if_exists=True, pruner=make_pruner()
    )
    worker = int(os.environ.get("BIOSCALE_SWEEP_WORKER", "0"))
    mixed = seed * 1_000_003 + len(study.trials) * 7_919 + worker  # fresh draws after a restart
    if shared:
        mixed += int.from_bytes(hashlib.sha256(f"{socket.gethostname()}:{os.getpid()}".encode()).digest()[:4], "big")
    mixed %= 2**31
    study.sampler = (
        optuna.samplers.TPESampler(seed=mixed) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=mixed)
    )
    return study


def finished(trial) -> bool:
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and "failure" in trial.user_attrs
    )


def tally(study) -> dict:
    trials = study.get_trials(deepcopy=False)
    return {
        "finished": sum(finished(t) for t in trials),
        "running": sum(t.state == TrialState.RUNNING for t in trials),
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL and "failure" in t.user_attrs for t in trials),
    }


def fail_dead_local_trials(study) -> None:
    """Fail the running trials of dead processes on this host; retry each once."""
    host = socket.gethostname()
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("host") == host and not pid_alive(int(t.user_attrs.get("pid", -1))):
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            if "retry_of" not in t.user_attrs and t.number not in retried:
                study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})


def folder_lock(folder: Path):
    """The sweep folder's lock (``.sweep.lock``), waiting for its holder."""
    return waiting_lock(folder / ".sweep.lock")


class _Reporter:
    """Reports each epoch's validation error to the trial; stops a trial the pruner picks."""

    def __init__(self, trial):
        self.trial = trial

    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        self.trial.report(metrics["val_error"], epoch)
        if self.trial.should_prune():
            raise StopRun(f"pruned by the sweep after epoch {epoch}", status="pruned")


def _reporter_spec(trial) -> ObserverSpec:
    entry = PluginEntry(
        "sweep", OBSERVERS_GROUP, "bioscale.search.study:_Reporter", "bioscale", __version__, entry_point=None
    )
    reporter = _Reporter(trial)
    return ObserverSpec("sweep", entry, lambda: reporter, None)


@dataclass
class SweepWork:
    """What every trial of one sweep shares."""

    study: optuna.Study
    folder: Path
    space: dict[str, Param]
    tokens: list[str]  # the run's tokens every trial starts from (data.validation, threads included)
    trials: int
    report: Callable[[], object]
    data_cache: dict = field(default_factory=dict)

    def data_for(self, cfg):
        from bioscale.datasets import load_data
        from omegaconf import OmegaConf

        from ..trainer import resolve_device

        key = OmegaConf.to_yaml(cfg.data) + cfg.trainer.device
        if key not in self.data_cache:
            self.data_cache[key] = load_data(cfg.data, resolve_device(cfg.trainer.device))
        return self.data_cache[key]


def run_trial(work: SweepWork, trial) -> tuple[TrialState, float | None]:
    """Train one configuration; ``(state, objective)`` for ``study.tell``."""
    from ..trainer import Trainer

    values = {p.key: p.suggest(trial) for p in work.space.values()}
    tokens = [*work.tokens, *(f"{k}={format_value(v)}" for k, v in values.items())]
    trial.set_user_attr("tokens", tokens)
    try:
        cfg = build_run_config([*tokens, f"output_dir={work.folder / 'trials'}", f"name=t{trial.number:03d}"])
        trainer = Trainer.create(
            cfg, resolve_rule(cfg), [*resolve_observers(cfg), _reporter_spec(trial)], data=work.data_for(cfg)
        )
        trial.set_user_attr("run_dir", str(trainer.run_dir))
        summary = trainer.fit()
    except ConfigError as exc:  # these settings cannot make a run (e.g. a kernel larger than its input)
        trial.set_user_attr("failure", f"refused: {exc}")
        return TrialState.FAIL, None
    except UsageError as exc:  # the sweep's input or environment, not this configuration: stop the sweep
        trial.set_user_attr("error", str(exc))
        raise
    except StopRun:
        return TrialState.PRUNED, None
    except DivergenceError as exc:
        trial.set_user_attr("failure", f"diverged: {exc}")
        return TrialState.FAIL, None
    except (BioscaleError, Exception) as exc:  # a broken trial does not stop the sweep
        trial.set_user_attr("failure", f"{type(exc).__name__}: {exc}")
        return TrialState.FAIL, None
    for key in (
        "best_val_error",
        "test_error_at_best_val",
        "best_test_error",
        "final_test_error",
        "epochs",
        "total_train_seconds",
    ):
        trial.set_user_attr(key, summary.get(key))
    return TrialState.COMPLETE, summary["best_val_error"]


def _heartbeat(storage, trial_id: int, interval: int, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            storage.record_heartbeat(trial_id)
        except Exception as exc:  # a busy database: try again at the next beat
            print(
                f"bioscale: warning: sweep heartbeat of trial {trial_id} not recorded: {exc}",
                file=sys.stderr,
                flush=True,
            )


def run_worker(work: SweepWork) -> None:
    """Run trials until the study has ``work.trials`` finished ones (or running ones to finish them)."""
    study = work.study
    while True:
        with folder_lock(work.folder), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_dead_local_trials(study)
            fail_stale_trials(study)
            counts = tally(study)
            if counts["finished"] + counts["running"] >= work.trials:
                return
            trial = study.ask()
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
        stop = threading.Event()
        storage = cast("BaseHeartbeat", study._storage)  # open_study's RDBStorage (behind Optuna's cache)
        beat = threading.Thread(
            target=_heartbeat,
            args=(storage, trial._trial_id, storage.get_heartbeat_interval(), stop),
            daemon=True,
        )
        storage.record_heartbeat(trial._trial_id)
        beat.start()
        start = time.time()
        try:
            state, value = run_trial(work, trial)
        except (KeyboardInterrupt, UsageError) as exc:  # not counted: a rerun draws this slot again
            trial.set_user_attr("interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped", True)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        finally:
            stop.set()
        trial.set_user_attr("seconds", round(time.time() - start, 2))
        with folder_lock(work.folder):  # skip_if_finished: another worker failed it as stale meanwhile
            study.tell(trial, value if state == TrialState.COMPLETE else None, state=state, skip_if_finished=True)
            work.report()
        print(progress_line(study, work.trials), file=sys.stderr, flush=True)


def progress_line(study, planned: int) -> str:
    c = tally(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best = min(done, key=lambda t: t.value) if done else None
    best_text = f"; best val err {best.value:.2f} % (trial {best.number})" if best else ""
    return (
        f"[bioscale] sweep: {c['finished']}/{planned} done ({c['complete']} complete, {c['pruned']} pruned, "
        f"{c['failed']} failed), {c['running']} running{best_text}"
    )
