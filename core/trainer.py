"""``Trainer``: one run's lifecycle. It builds the run (model, rule, observers, optimiser), owns
its folder, and trains it to its end; each other job lives in its own module:

- ``loop.py`` (``TrainingLoop``): epochs, steps, evaluation;
- ``run_state.py`` (``RunState``): what a checkpoint holds, saving and loading it;
- ``record.py`` (``RunRecord``): ``config.yaml`` with ``run_info`` and its sittings, ``summary.json``;
- ``run.py`` (``Run``): what observers see;
- ``provenance.py``: which code and machine made the run.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import cast

import torch
from bioscale.datasets import load_data
from omegaconf import OmegaConf

from .checkpoint import remove_stale_temp_files
from .config.schema import RuleConfig, plain_value
from .distributed import DataParallel, plan_device
from .errors import BioscaleError, DivergenceError, PluginError, PluginFailure, StopRun, StorageError
from .flat_parameters import can_flatten, flatten_parameters
from .host_malloc import tune_for_training
from .loop import TrainingLoop
from .optim import make_optimizer
from .plugin_host import build_plugin_host
from .progress import Progress
from .record import RunRecord, read_run_info
from .run import Run
from .run_dir import CHECKPOINT, SUMMARY, append_metrics, check_writable, create_run_dir, truncate_metrics, write_json
from .run_lock import RunLock
from .run_model import build_run_model
from .run_state import RunState, file_stamp, read_for_resume
from .signals import signals_held
from .step import forward_step
from .step_modes import maybe_compile

SEED_OFFSETS = {"model": 0, "data": 1_000_003, "rule": 2_000_029}


def resolve_device(name: str) -> torch.device:
    """``trainer.device`` for a process outside torchrun (``distributed.plan_device``; a ``ConfigError`` if unusable)."""
    return torch.device(
        plan_device(name, "gloo", 0, 1, torch.cuda.device_count() if torch.cuda.is_available() else 0)[0]
    )


def seeded_generator(seed: int, what: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed + SEED_OFFSETS[what])


class Trainer(TrainingLoop, RunState, RunRecord):
    """One run. Build with :meth:`create` (new run) or :meth:`resume` (from a run folder)."""

    def __init__(self, cfg, rule_spec, observer_specs, data=None) -> None:
        self.cfg = cfg
        self.rule_spec = rule_spec
        self.observer_specs = list(observer_specs)
        # a world of one outside torchrun; this rank's device and backend checked before any work
        self.parallel = DataParallel.from_env(cfg.trainer.device, plain_value(cfg.trainer.backend))
        self.device = torch.device(self.parallel.device)
        self.label_smoothing = float(cfg.trainer.label_smoothing)  # a plain float: read every step
        if cfg.trainer.threads > 0:
            torch.set_num_threads(cfg.trainer.threads)
        self.host_malloc = "tuned" if self.device.type == "cpu" and tune_for_training() else "system"
        torch.manual_seed(cfg.seed)
        self.data = data if data is not None else load_data(cfg.data, self.device)
        self.parallel.check_batches(len(self.data.train), cfg.trainer.batch_size)  # every rank gets rows
        self.model = self._build_model()
        # one storage for every forward parameter (each stays its own view): equal layers'
        # weights can then be read as one strided (G, ...) view, e.g. by TP inverse groups;
        # a model with mixed devices or dtypes keeps separate storages (readers copy instead)
        params = list(self.model.parameters())
        self.flat_parameters = flatten_parameters(params) if can_flatten(params) else None
        rule_obj = rule_spec.instantiate()
        observers = self._start_observers() if self.parallel.is_main else []  # observers run on rank 0 only
        self.rule_hooks, self.observers, self.plugin_manager = build_plugin_host(rule_spec, rule_obj, observers)
        self.rule_generator = seeded_generator(cfg.seed, "rule")
        self.data_generator = seeded_generator(cfg.seed, "data")
        rule_cfg = cast(RuleConfig, OmegaConf.to_object(rule_spec.config))  # a rule's config is a RuleConfig
        self.optimizer_cfg = rule_cfg.optimizer
        self.planned_epochs = int(cfg.trainer.epochs)  # a plain int: read every step by the lr schedule
        self.optimizer = self._forward_optimizer(rule_cfg.output_lr_scale)
        self._grad_dests: dict = {}  # write_weight_grads' per-op .grad maps, kept between steps
        self.precision = plain_value(cfg.trainer.precision)
        self._forward_step = maybe_compile(forward_step, cfg.trainer.compile)
        self._credit = maybe_compile(self._assign_and_write, cfg.trainer.compile)
        self._setup_rule()
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict] = []
        self.run_dir: Path | None = None
        self.lock: RunLock | None = None
        self.paper_row = rule_spec.paper_row  # plugin code: evaluated once, before any work
        self.run = Run(
            model=self.model,
            rule_hooks=self.rule_hooks,
            rule_generator=self.rule_generator,
            label_smoothing=self.label_smoothing,
            train_data=self.data.train,
            rule_info=rule_spec.info,
            epoch=lambda: self.epoch,
        )

    # -- construction -----------------------------------------------------------------
    def _build_model(self):
        """The network on the run's device, its weights drawn from the seed's model generator."""
        spec = self.rule_spec
        rules = [(spec.name, spec.cls)] + [(n, c.cls) for n, c in spec.companions.items()]
        generator = seeded_generator(self.cfg.seed, "model")
        return build_run_model(self.cfg, self.data.in_shape, self.data.num_classes, generator, rules).to(self.device)

    def _start_observers(self) -> list[tuple]:
        """``(spec, object)`` of each enabled observer; one that fails to start is a PluginError."""
        observers = []
        for spec in self.observer_specs:
            try:
                observers.append((spec, spec.cls(spec.config) if spec.config is not None else spec.cls()))
            except Exception as exc:
                raise PluginError(f"observer {spec.name!r} ({spec.entry.origin}) failed to start: {exc}") from exc
        return observers

    def _setup_rule(self) -> None:
        """The rule's ``bioscale_setup``; then every data-parallel rank must hold the same state."""
        try:
            self.rule_hooks.setup(self.model, self.rule_generator)
        except PluginError:
            raise
        except PluginFailure as exc:  # before any work: a broken plugin, exit status 2
            raise PluginError(str(exc)) from exc
        self.parallel.check_identical(self.initial_state(), "the initial model or rule state")

    def _forward_optimizer(self, output_lr_scale: float) -> torch.optim.Optimizer:
        """The forward optimiser (Adam or SGD, as the rule's ``optimizer.name`` says); with
        ``output_lr_scale != 1`` the output layer's parameters are a second group whose lr is
        scaled (``make_optimizer`` keeps one group otherwise; the output
        layer's parameters come last in the model's order either way)."""
        top = list(self.model.layer(self.model.num_layers).parameters())
        top_ids = {id(p) for p in top}
        rest = [p for p in self.model.parameters() if id(p) not in top_ids]
        return make_optimizer(rest, self.optimizer_cfg, scaled=top, lr_scale=output_lr_scale)

    @classmethod
    def create(cls, cfg, rule_spec, observer_specs, data=None) -> Trainer:
        """A new run: checks the output folder, builds the run, makes and locks its folder (rank 0)."""
        if DataParallel.launched_rank() == 0:
            check_writable(cfg.output_dir)  # before the data is read (rank 0 alone writes)
        trainer = cls(cfg, rule_spec, observer_specs, data)
        if trainer.parallel.is_main:
            parts = [rule_spec.name, cfg.data.name, cfg.model.preset, f"s{cfg.seed}", cfg.name]
            trainer.run_dir = create_run_dir(cfg.output_dir, parts)
            lock = trainer._own_run_dir()
            try:
                trainer.write_config()
            except BaseException:
                lock.release()
                raise
        trainer.run_dir = Path(trainer.parallel.broadcast_object(str(trainer.run_dir)))
        return trainer

    @classmethod
    def resume(cls, run_dir: Path, cfg, rule_spec, observer_specs) -> Trainer:
        """Rebuild the run and load its checkpoint. Its format, checksum and epoch are checked
        before any work; nothing is written unless all of it loads."""
        run_dir = Path(run_dir)
        state, stamp = read_for_resume(run_dir, cfg.trainer.epochs)
        trainer = cls(cfg, rule_spec, observer_specs)
        trainer.run_dir = run_dir
        if not trainer.parallel.is_main:  # the other ranks only read the checkpoint
            trainer.load_state(state, run_dir / CHECKPOINT)
            return trainer
        lock = trainer._own_run_dir()
        try:
            if file_stamp(run_dir / CHECKPOINT) != stamp:  # another process wrote it before the lock was ours
                state, _ = read_for_resume(run_dir, cfg.trainer.epochs)
            trainer.load_state(state, run_dir / CHECKPOINT)
            trainer.history = truncate_metrics(run_dir, trainer.epoch)  # validates before it writes
            trainer._warn_if_replanned(state)
            trainer.write_config(trainer.resumed_run_info(read_run_info(run_dir)))
        except BaseException:
            lock.release()
            raise
        return trainer

    def _warn_if_replanned(self, state: dict) -> None:
        planned = int(state["planned_epochs"]) if "planned_epochs" in state else self.cfg.trainer.epochs
        epochs = self.cfg.trainer.epochs
        if epochs != planned:
            print_err(
                f"bioscale: warning: the run was planned for {planned} epochs and now runs to "
                f"{epochs}: its learning-rate schedule is re-planned over {epochs} "
                f"epochs from epoch {self.epoch} on. Under a cosine schedule that is not the run a "
                f"straight {epochs}-epoch run gives; start a new run for that (constant and multistep "
                f"schedules and warm-up count epochs from the start: unchanged)."
            )

    def _own_run_dir(self) -> RunLock:
        """Lock the run folder for this process and clear temp files of dead writers; returns the lock."""
        assert self.run_dir is not None  # create and resume set it first
        self.lock = lock = RunLock(self.run_dir)
        lock.acquire()
        for tmp in remove_stale_temp_files(self.run_dir):
            print_err(f"bioscale: removed {tmp.name}, left by a process that was killed while writing")
        return lock

    # -- the run to its end -----------------------------------------------------------
    def fit(self, stop_after: int | None = None) -> dict:
        """Train until ``trainer.epochs``; write metrics, checkpoints and the summary.

        :param stop_after: train at most this many epochs now and leave the run ``paused``
            (resumable; the learning-rate schedule still spans ``trainer.epochs``).
        """
        main = self.parallel.is_main
        progress = Progress(self.cfg.trainer.progress if main else False)
        if main:
            assert self.lock is not None  # create and resume lock the folder on rank 0
            if not self.lock.held:
                self.lock.acquire()
        status, error = "running", None
        try:
            if main:
                self.open_sitting()
            config = copy.deepcopy(self.resolved_config()) if main else None  # observers read a copy
            self.observers.run_start(self.run, self.run_dir, config)
            trained = 0
            while self.epoch < self.cfg.trainer.epochs and (stop_after is None or trained < stop_after):
                trained += 1
                self._run_epoch(self.epoch, progress)
            status = "completed" if self.epoch >= self.cfg.trainer.epochs else "paused"
        except BaseException as exc:
            status, error = self._ending(exc)
            raise
        finally:
            summary = self._finish(progress, status, error)
        return summary

    def _run_epoch(self, epoch: int, progress: Progress) -> None:
        """Train, evaluate and commit one epoch; an observer's StopRun ends the run after it."""
        self._sync()
        start = time.perf_counter()
        stats = self.train_epoch(epoch, progress)
        self._sync()
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        evaluation = self.evaluate_epoch()
        metrics = {
            "epoch": epoch + 1,
            **stats,
            **evaluation,
            "seconds": seconds,
            "eval_seconds": time.perf_counter() - start,
        }
        for key in ("test_loss", "test_error"):
            if evaluation[key] != evaluation[key]:  # NaN
                self._check_finite(torch.tensor(float("nan"), device=self.device), epoch)
        stop = None
        try:
            extra = self.observers.epoch_end(self.run, epoch + 1, dict(metrics))
        except StopRun as exc:  # an observer ends the run on purpose, after this epoch
            stop, extra = exc, getattr(exc, "extra", {})
        metrics.update({k: v for k, v in extra.items() if k not in metrics})
        self._commit_epoch(metrics)
        if self.parallel.active:  # rank 0's observers decide for every rank
            told = self.parallel.broadcast_object(None if stop is None else (stop.status, str(stop)))
            if told is not None and stop is None:
                stop = StopRun(told[1], status=told[0])
        if stop is not None:
            raise stop

    def _ending(self, exc: BaseException) -> tuple[str, str | None]:
        """The status (and error text) a run that stops with ``exc`` ends with."""
        if isinstance(exc, DivergenceError):
            return "diverged", None
        if isinstance(exc, StopRun):
            return exc.status, str(exc)
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted", None
        if not isinstance(exc, Exception):
            return "running", None
        if isinstance(exc, BioscaleError):
            return "failed", str(exc)
        error = f"{type(exc).__name__}: {exc}"
        if self.parallel.active:  # most likely a collective with a dead peer
            error = (
                f"this rank ({self.parallel.rank} of {self.parallel.world_size}) stopped, most likely because "
                f"another rank died (torchrun then stops the others): {error}"
            )
        return "failed", error

    def _finish(self, progress: Progress, status: str, error: str | None) -> dict:
        """Every ending: the summary, the sitting's end, the observers told; the lock released."""
        try:
            progress.close()
            summary = self.summary(status, error)
            if self.parallel.is_main:
                assert self.run_dir is not None  # create and resume set it
                try:
                    write_json(self.run_dir / SUMMARY, summary)
                    self.close_sitting(status)
                except StorageError as exc:
                    print_err(f"bioscale: error: {exc}")
                try:
                    self.observers.run_end(self.run, summary)  # every ending: the status says which
                except BioscaleError as exc:
                    print_err(f"bioscale: warning: {exc}")
        finally:
            if self.lock is not None:
                self.lock.release()
        return summary

    def _commit_epoch(self, metrics: dict) -> None:
        """Metrics line, checkpoint, summary, written with Ctrl-C and SIGTERM held back so that
        the three agree. If the checkpoint cannot be written the run stays at the last good one
        (a metrics line past it is cut off when the run resumes)."""
        if not self.parallel.is_main:  # rank 0 alone writes
            self.epoch += 1
            self.history.append(metrics)
            return
        assert self.run_dir is not None  # create and resume set it
        with signals_held():
            self.epoch += 1
            self.history.append(metrics)
            try:
                append_metrics(self.run_dir, metrics)
                self.save()
            except BaseException:
                self.epoch -= 1
                self.history.pop()
                raise
            write_json(self.run_dir / SUMMARY, self.summary("running"))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def probe_gradients(self, x, y) -> dict:
        """``self.run.probe_gradients(x, y)`` (kept for callers that hold the trainer)."""
        return self.run.probe_gradients(x, y)


def print_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
