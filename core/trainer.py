"""The training loop: epochs of passes over batches, every credit decision delegated to the rule.

See ARCHITECTURE.md for the step pseudocode. ``Trainer`` owns the model, the forward
optimiser, the data generator, the run folder and the checkpoints; the rule owns its
own state through hooks. Nothing here syncs with the host inside a step except every
``trainer.log_every`` steps (progress bar and NaN/inf check).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from bioscale.architectures import build_network
from bioscale.architectures import activations
from bioscale.datasets import load_data

from . import __version__
from .checkpoint import load_checkpoint, loads_safely, remove_stale_temp_files, save_checkpoint, serialize
from .config.schema import plain_value
from .distributed import DataParallel
from .credit import assign_credit, local_weight_grads, write_weight_grads
from .errors import (BioscaleError, CheckpointError, ConfigError, DivergenceError, PluginError, PluginFailure, StopRun,
                     StorageError)
from .evaluation import evaluate
from .flat_parameters import can_flatten, flatten_parameters
from .optim import make_adam, scheduled_lr, set_lr
from .plugin_host import build_plugin_host
from .progress import Progress
from .reference import paper_test_error
from .run_dir import (CHECKPOINT, CONFIG, SUMMARY, append_metrics, check_writable, create_run_dir, truncate_metrics,
                      write_json, write_text)
from .run_lock import RunLock
from .signals import signals_held
from .step import forward_step
from .step_modes import autocast, maybe_compile

SEED_OFFSETS = {"model": 0, "data": 1_000_003, "rule": 2_000_029}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"trainer.device={name!r} is not a device; valid: auto, cpu, cuda, cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name!r} but CUDA is not available here; use trainer.device=auto or cpu")
    return device


def seeded_generator(seed: int, what: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed + SEED_OFFSETS[what])


class Run:
    """What observers see of a run (read it; do not change weights)."""

    def __init__(self, trainer: "Trainer"):
        self._trainer = trainer

    config = property(lambda self: self._trainer.cfg)
    model = property(lambda self: self._trainer.model)
    data = property(lambda self: self._trainer.data)
    dir = property(lambda self: self._trainer.run_dir)
    device = property(lambda self: self._trainer.device)
    rule_hooks = property(lambda self: self._trainer.rule_hooks)
    rule_info = property(lambda self: self._trainer.rule_spec.info)
    epoch = property(lambda self: self._trainer.epoch)

    def probe_gradients(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """The rule's and BP's gradients of every forward parameter on one batch.

        No parameter, optimiser or RNG state changes. ``x``: ``(B, *in_shape)``, ``y``: ``(B,)``.
        :return: ``{"names": [...], "rule": [tensor|None], "exact": [tensor], "step": StepContext}``
            (``exact``: autograd's gradient of the task loss).
        """
        return self._trainer.probe_gradients(x, y)

    def inverse_error(self, step) -> dict | None:
        """The rule's ``bioscale_inverse_error`` on ``step`` (e.g. a probe's), with the rule's
        generator restored afterwards: a rule that draws noise there changes no training."""
        state = self._trainer.rule_generator.get_state()
        try:
            return self._trainer.rule_hooks.inverse_error(step)
        finally:
            self._trainer.rule_generator.set_state(state)


class Trainer:
    """One run. Build with :meth:`create` (new run) or :meth:`resume` (from a run folder)."""

    def __init__(self, cfg, rule_spec, observer_specs, data=None):
        self.cfg = cfg
        self.rule_spec = rule_spec
        self.parallel = DataParallel.from_env(cfg.trainer.device)  # a world of one outside torchrun
        self.device = resolve_device(self.parallel.device_name(cfg.trainer.device))
        self.label_smoothing = float(cfg.trainer.label_smoothing)  # a plain float: read every step
        if cfg.trainer.threads > 0:
            torch.set_num_threads(cfg.trainer.threads)
        torch.manual_seed(cfg.seed)
        self.data = data if data is not None else load_data(cfg.data, self.device)
        try:
            self.model = build_network(
                self.data.in_shape,
                self.data.num_classes,
                blocks=[_block_dict(b) for b in cfg.model.blocks],
                widths=list(cfg.model.widths),
                activation=cfg.model.activation,
                generator=seeded_generator(cfg.seed, "model"),
                name=cfg.model.preset,
                weight_init=plain_value(cfg.model.weight_init),
            ).to(self.device)
        except ValueError as exc:  # an unknown activation or init, a layer that does not fit its input
            raise ConfigError(f"model: {exc}") from exc
        # one storage for every forward parameter (each stays its own view): equal layers'
        # weights can then be read as one strided (G, ...) view, e.g. by TP inverse groups;
        # a model with mixed devices or dtypes keeps separate storages (readers copy instead)
        params = list(self.model.parameters())
        self.flat_parameters = flatten_parameters(params) if can_flatten(params) else None
        rule_obj = rule_spec.instantiate()
        observers = []
        for spec in observer_specs if self.parallel.is_main else []:  # observers run on rank 0 only
            try:
                observers.append((spec, spec.cls(spec.config) if spec.config is not None else spec.cls()))
            except Exception as exc:
                raise PluginError(f"observer {spec.name!r} ({spec.entry.origin}) failed to start: {exc}") from exc
        self.rule_hooks, self.observers, self.plugin_manager = build_plugin_host(rule_spec, rule_obj, observers)
        self.rule_generator = seeded_generator(cfg.seed, "rule")
        self.data_generator = seeded_generator(cfg.seed, "data")
        rule_cfg = OmegaConf.to_object(rule_spec.config)
        self.optimizer_cfg = rule_cfg.optimizer
        self.optimizer = self._forward_adam(rule_cfg.output_lr_scale)
        self._grad_dests: dict = {}  # write_weight_grads' per-op .grad maps, kept between steps
        self.precision = plain_value(cfg.trainer.precision)
        self._forward_step = maybe_compile(forward_step, cfg.trainer.compile)
        self._credit = maybe_compile(self._assign_and_write, cfg.trainer.compile)
        try:
            self.rule_hooks.setup(self.model, self.rule_generator)
        except PluginError:
            raise
        except PluginFailure as exc:  # before any work: a broken plugin, exit status 2
            raise PluginError(str(exc)) from exc
        self.parallel.check_identical(self._initial_state(), "the initial model or rule state")
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict] = []
        self.run_dir: Path | None = None
        self.lock: RunLock | None = None
        self.paper_row = rule_spec.paper_row  # plugin code: evaluated once, before any work
        self.run = Run(self)

    # -- construction -----------------------------------------------------------------
    def _initial_state(self) -> list:
        """Tensors every data-parallel rank must hold identically before training."""
        tensors = [p.detach() for p in self.model.parameters()]
        pending = [self.rule_hooks.state_dict()]
        while pending:  # the rule state's tensors, in its dict / list order
            item = pending.pop()
            if isinstance(item, torch.Tensor):
                tensors.append(item)
            elif isinstance(item, dict):
                pending.extend(item.values())
            elif isinstance(item, (list, tuple)):
                pending.extend(item)
        return tensors

    @classmethod
    def create(cls, cfg, rule_spec, observer_specs, data=None) -> "Trainer":
        if "RANK" not in os.environ or os.environ["RANK"] == "0":
            check_writable(cfg.output_dir)  # before the data is read (rank 0 alone writes)
        trainer = cls(cfg, rule_spec, observer_specs, data)
        if trainer.parallel.is_main:
            parts = [rule_spec.name, cfg.data.name, cfg.model.preset, f"s{cfg.seed}", cfg.name]
            trainer.run_dir = create_run_dir(cfg.output_dir, parts)
            trainer._own_run_dir()
            try:
                trainer.write_config()
            except BaseException:
                trainer.lock.release()
                raise
        trainer.run_dir = Path(trainer.parallel.broadcast_object(str(trainer.run_dir)))
        return trainer

    @classmethod
    def resume(cls, run_dir: Path, cfg, rule_spec, observer_specs) -> "Trainer":
        """Rebuild the run and load its checkpoint; nothing is written unless all of it loads."""
        trainer = cls(cfg, rule_spec, observer_specs)
        trainer.run_dir = Path(run_dir)
        if not trainer.parallel.is_main:  # the other ranks only read the checkpoint
            state = load_checkpoint(trainer.run_dir / CHECKPOINT, trainer.identity())
            trainer.load_state(state, trainer.run_dir / CHECKPOINT)
            return trainer
        trainer._own_run_dir()
        try:
            state = load_checkpoint(trainer.run_dir / CHECKPOINT, trainer.identity())
            trainer.load_state(state, trainer.run_dir / CHECKPOINT)
            trainer.history = truncate_metrics(trainer.run_dir, trainer.epoch)  # validates before it writes
            planned = int(state["planned_epochs"]) if "planned_epochs" in state else cfg.trainer.epochs
            if cfg.trainer.epochs != planned:
                print_err(f"bioscale: warning: the run was planned for {planned} epochs and now runs to "
                          f"{cfg.trainer.epochs}: its learning-rate schedule is re-planned over {cfg.trainer.epochs} "
                          f"epochs from epoch {trainer.epoch} on. Under a cosine schedule that is not the run a "
                          f"straight {cfg.trainer.epochs}-epoch run gives; start a new run for that.")
            trainer.write_config()
        except BaseException:
            trainer.lock.release()
            raise
        return trainer

    def _own_run_dir(self) -> None:
        """Lock the run folder for this process and clear temp files of dead writers."""
        self.lock = RunLock(self.run_dir)
        self.lock.acquire()
        for tmp in remove_stale_temp_files(self.run_dir):
            print_err(f"bioscale: removed {tmp.name}, left by a process that was killed while writing")

    def identity(self) -> dict:
        """What must match between a checkpoint and the run it is loaded into."""
        return {
            "rule": self.rule_spec.name,
            "data": self.cfg.data.name,
            "model": OmegaConf.to_container(self.cfg.model, resolve=True, enum_to_str=True),
            "in_shape": list(self.data.in_shape),
            "num_classes": self.data.num_classes,
            "seed": self.cfg.seed,
        }

    def run_info(self) -> dict:
        return {
            "rule": self.rule_spec.info,
            "bioscale_version": __version__,
            "torch_version": str(torch.__version__),
            "python": platform.python_version(),
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "world_size": self.parallel.world_size,  # data-parallel processes (1: not launched by torchrun)
            "backend": self.parallel.backend,
            "cpu_tanh": activations.CPU_TANH,  # which tanh form the CPU evaluates (architectures/activations.py)
            "data_source": self.data.source,
            "normalization": self.data.normalization,
            "train_examples": len(self.data.train),
            "test_examples": len(self.data.test),
            "val_examples": len(self.data.val) if self.data.val is not None else 0,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }

    def write_config(self) -> None:
        resolved = OmegaConf.to_container(self.cfg, resolve=True, enum_to_str=True)
        resolved["rules"] = {name: OmegaConf.to_container(spec.config, enum_to_str=True)
                             for name, spec in {self.rule_spec.name: self.rule_spec, **self.rule_spec.companions}.items()}
        resolved["run_info"] = self.run_info()
        write_text(self.run_dir / CONFIG, OmegaConf.to_yaml(OmegaConf.create(resolved)))

    # -- checkpoint state -------------------------------------------------------------
    def state(self) -> dict:
        rng = {"torch": torch.get_rng_state(), "data": self.data_generator.get_state(), "rule": self.rule_generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "planned_epochs": self.cfg.trainer.epochs,
            "identity": self.identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rule": self.rule_hooks.state_dict(),
            "rng": rng,
        }

    def load_state(self, state: dict, path: Path) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.rule_hooks.load_state_dict(state["rule"])
            self.data_generator.set_state(state["rng"]["data"])
            self.rule_generator.set_state(state["rng"]["rule"])
            torch.set_rng_state(state["rng"]["torch"])
            if "cuda" in state["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        except PluginFailure as exc:  # the rule's own load refused the state
            cause = exc.__cause__ or exc
            raise CheckpointError(f"checkpoint {path} does not match this run: {type(cause).__name__}: {cause}") from exc
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not match this run: {type(exc).__name__}: {exc}") from exc
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])

    def save(self) -> None:
        if not self.cfg.trainer.checkpoint:
            return
        state = self.state()
        try:  # a rule's state must load back with weights_only=True, or its checkpoint never will
            loads_safely(serialize(state["rule"]))
        except Exception as exc:
            raise PluginFailure(f"{self.rule_hooks.origin}: bioscale_state_dict returned state that cannot be "
                                f"loaded back ({type(exc).__name__}: {exc}); only tensors, numbers, strings, "
                                f"lists and dicts are allowed") from exc
        save_checkpoint(self.run_dir / CHECKPOINT, state)

    # -- training ---------------------------------------------------------------------
    def train_epoch(self, epoch: int, progress: Progress) -> dict:
        """One epoch (all passes the rule asks for); returns host-side training statistics."""
        cfg = self.cfg.trainer
        train = self.data.train
        n_train = len(train)
        nb = train.num_batches(cfg.batch_size)
        rows = self.parallel.rows if self.parallel.active else None
        passes = self.rule_hooks.epoch_passes(epoch)
        progress.start_epoch(epoch, cfg.epochs, nb * len(passes), self.global_step)
        zero = lambda dtype: torch.zeros((), dtype=dtype, device=self.device)  # noqa: E731
        loss_sum, wrong, seen = zero(torch.float64), zero(torch.int64), 0
        inverse_sums: dict = {}
        inverse_steps = 0
        lr = None
        for phases in passes:
            for i, (x, y) in enumerate(train.batches(cfg.batch_size, self.data_generator, self.data.augment, rows=rows)):
                n_global = min(cfg.batch_size, n_train - i * cfg.batch_size)
                step, losses = self.train_step(x, y, epoch, phases, (epoch + i / nb) / cfg.epochs, n_global)
                if losses:
                    inverse_steps += 1
                    for layer, value in losses.items():
                        inverse_sums[layer] = inverse_sums.get(layer, 0) + value.detach().double()
                if "forward" in phases:
                    lr = self.optimizer.param_groups[0]["lr"]
                    loss_sum.add_(step.loss, alpha=y.shape[0])
                    wrong.add_(step.logits.argmax(1).ne_(y).sum())
                    seen += y.shape[0]
                self.global_step += 1
                self.observers.step_end(self.run, step)
                if self.global_step % cfg.log_every == 0:
                    self._check_finite(loss_sum, epoch)
                    progress.update(self.global_step, float(loss_sum) / max(seen, 1) if seen else None)
        if self.parallel.active:  # every rank's sums; inverse losses: the mean of the ranks' means
            layers = sorted(inverse_sums)
            packed = self.parallel.sum_(torch.stack([loss_sum, wrong.double(), torch.tensor(float(seen), dtype=torch.float64),
                                                     *(inverse_sums[k] for k in layers)]))
            loss_sum, wrong, seen = packed[0], packed[1], int(packed[2])
            inverse_sums = {k: v / self.parallel.world_size for k, v in zip(layers, packed[3:])}
        self._check_finite(loss_sum, epoch, reduced=True)
        if inverse_sums:
            self._check_finite(sum(inverse_sums.values()), epoch, what="inverse loss", reduced=True)
        stats = {"passes": ["+".join(sorted(p)) for p in passes]}
        if seen:
            stats.update(train_loss=float(loss_sum) / seen, train_error=100.0 * float(wrong) / seen, lr=lr)
        if inverse_sums:
            stats["inverse_loss"] = {str(k): float(v) / inverse_steps for k, v in sorted(inverse_sums.items())}
        return stats

    def _forward_adam(self, output_lr_scale: float) -> torch.optim.Adam:
        """The forward Adam; with ``output_lr_scale != 1`` the output layer's parameters are
        a second group whose lr is scaled (``make_adam`` keeps one group otherwise; the output
        layer's parameters come last in the model's order either way)."""
        top = list(self.model.layer(self.model.num_layers).parameters())
        top_ids = {id(p) for p in top}
        rest = [p for p in self.model.parameters() if id(p) not in top_ids]
        return make_adam(rest, self.optimizer_cfg, scaled=top, lr_scale=output_lr_scale)

    def train_step(self, x, y, epoch: int, phases: frozenset, progress: float, global_batch_size: int | None = None):
        """One step on batch ``x`` ``(B, *in_shape)``, ``y`` ``(B,)``: inverse update and/or
        forward update as ``phases`` says. Returns the step and the rule's inverse losses.
        ``global_batch_size``: data parallelism: the rows of the global batch ``x`` is this rank's share of."""
        share = (self.parallel.rows(global_batch_size), global_batch_size, self.parallel) if self.parallel.active else ()
        with autocast(self.device, self.precision):
            step = self._forward_step(self.model, x, y, epoch, self.global_step, phases, self.label_smoothing, *share)
            step.progress = progress
            losses = self.rule_hooks.update_inverse(step) if "inverse" in phases else None
            grads = self._credit(step) if "forward" in phases else None
        if "forward" in phases:
            if self.parallel.active:  # one all-reduce of the flat gradient buffer
                step.reduce_gradients(self._forward_grad_buffers())
            with torch.no_grad():  # e.g. a rule's learned feedback steps here
                self.rule_hooks.after_forward_grads(step, grads)
            set_lr(self.optimizer, scheduled_lr(self.optimizer_cfg, progress))
            self.optimizer.step()
        return step, losses

    def _assign_and_write(self, step) -> list:
        """The rule's credit assignment for ``step`` written into the forward ``.grad`` tensors;
        returns the signals ``[None, δa_1, ..., δa_L]``."""
        grads = assign_credit(self.rule_hooks, step)
        write_weight_grads(step, grads, self._grad_dests)  # overwrites every .grad: no zero_grad needed
        return grads

    def _forward_grad_buffers(self) -> list:
        """The forward gradients as few tensors as possible: the flat buffer, else each ``.grad``."""
        if self.flat_parameters is not None:
            return [self.flat_parameters.grad]
        return [p.grad for p in self.model.parameters()]

    def _check_finite(self, value: torch.Tensor, epoch: int, what: str = "loss", reduced: bool = False) -> None:
        """Stop with ``DivergenceError`` on a non-finite ``value``; data-parallel ranks decide
        together (``value`` is summed over ranks first unless ``reduced``)."""
        if self.parallel.active and not reduced:
            value = self.parallel.sum_(value.detach().clone())
        if not bool(torch.isfinite(value)):
            kept = f"the last good checkpoint (epoch {self.epoch}) is kept in {self.run_dir}" if self.epoch else "no checkpoint was written"
            raise DivergenceError(
                f"{what} became {float(value)} during epoch {epoch + 1} (step {self.global_step}) with "
                f"{self.rule_hooks.origin}; training stopped, {kept}. Try a smaller learning rate."
            )

    def evaluate_epoch(self) -> dict:
        cfg = self.cfg.trainer
        top_k = self.data.top_k
        result = {}
        with autocast(self.device, self.precision):
            test = evaluate(self.model, self.data.test, cfg.eval_batch_size, top_k, self.parallel)
        result["test_loss"], result["test_error"] = test["loss"], test["error"]
        if "top5_error" in test:
            result["test_top5_error"] = test["top5_error"]
        if self.data.val is not None:
            with autocast(self.device, self.precision):
                val = evaluate(self.model, self.data.val, cfg.eval_batch_size, top_k, self.parallel)
            result["val_loss"], result["val_error"] = val["loss"], val["error"]
        return result

    def fit(self, stop_after: int | None = None) -> dict:
        """Train until ``trainer.epochs``; write metrics, checkpoints and the summary.

        :param stop_after: train at most this many epochs now and leave the run ``paused``
            (resumable; the learning-rate schedule still spans ``trainer.epochs``).
        """
        cfg = self.cfg.trainer
        main = self.parallel.is_main
        progress = Progress(cfg.progress if main else False)
        if main and not self.lock.held:
            self.lock.acquire()
        status, error = "running", None
        trained = 0
        try:
            self.observers.run_start(self.run)
            while self.epoch < cfg.epochs and (stop_after is None or trained < stop_after):
                trained += 1
                epoch = self.epoch
                self._sync()
                start = time.perf_counter()
                stats = self.train_epoch(epoch, progress)
                self._sync()
                seconds = time.perf_counter() - start
                start = time.perf_counter()
                evaluation = self.evaluate_epoch()
                metrics = {"epoch": epoch + 1, **stats, **evaluation, "seconds": seconds,
                           "eval_seconds": time.perf_counter() - start}
                for key in ("test_loss", "test_error"):
                    if evaluation[key] != evaluation[key]:  # NaN
                        self._check_finite(torch.tensor(float("nan")), epoch)
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
            status = "completed" if self.epoch >= cfg.epochs else "paused"
        except DivergenceError:
            status = "diverged"
            raise
        except StopRun as exc:
            status, error = exc.status, str(exc)
            raise
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}" if not isinstance(exc, BioscaleError) else str(exc)
            if self.parallel.active and not isinstance(exc, BioscaleError):  # most likely a collective with a dead peer
                error = f"this rank ({self.parallel.rank} of {self.parallel.world_size}) stopped, most likely because " \
                        f"another rank died (torchrun then stops the others): {error}"
            raise
        finally:
            try:
                progress.close()
                summary = self.summary(status, error)
                if main:
                    try:
                        write_json(self.run_dir / SUMMARY, summary)
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

    def summary(self, status: str, error: str | None = None) -> dict:
        hist = self.history
        test = [m["test_error"] for m in hist]
        train_seconds = [m["seconds"] for m in hist]
        best_epoch = (test.index(min(test)) + 1) if test else None
        last_train = next((m for m in reversed(hist) if "train_error" in m), {})
        summary = {
            "status": status,
            **({"error": error} if error else {}),
            "rule": self.rule_spec.name,
            "rule_distribution": self.rule_spec.entry.distribution,
            "rule_version": self.rule_spec.entry.version,
            "data": self.cfg.data.name,
            "model": self.cfg.model.preset,
            "seed": self.cfg.seed,
            "epochs": self.epoch,
            "epochs_planned": self.cfg.trainer.epochs,
            "best_test_error": min(test) if test else None,
            "best_epoch": best_epoch,
            "final_test_error": test[-1] if test else None,
            "final_train_error": last_train.get("train_error"),
            "final_train_loss": last_train.get("train_loss"),
            "seconds_per_epoch": statistics.median(train_seconds) if train_seconds else None,
            "total_train_seconds": sum(train_seconds),
            "device": str(self.device),
            "torch_version": str(torch.__version__),
            "run_dir": str(self.run_dir),
        }
        paper = paper_test_error(self.cfg.data.name, self.cfg.model.preset, self.paper_row)
        if paper is not None:
            summary["paper_test_error"] = paper
        if test and "test_top5_error" in hist[-1]:
            summary["best_test_top5_error"] = min(m["test_top5_error"] for m in hist)
            summary["final_test_top5_error"] = hist[-1]["test_top5_error"]
        if hist and "val_error" in hist[-1]:
            val = [m["val_error"] for m in hist]
            best_val_epoch = val.index(min(val))
            summary["best_val_error"] = val[best_val_epoch]
            summary["test_error_at_best_val"] = test[best_val_epoch]
        return summary

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # -- probes for observers ---------------------------------------------------------
    def probe_gradients(self, x, y) -> dict:
        names = [n for n, _ in self.model.named_parameters()]
        params = [p for _, p in self.model.named_parameters()]
        rng_state = self.rule_generator.get_state()
        try:
            step = forward_step(self.model, x, y, self.epoch, -1, frozenset({"forward"}),
                                self.label_smoothing)
            step.is_probe = True
            grads = assign_credit(self.rule_hooks, step)
            per_layer = local_weight_grads(step, grads)
            by_param = {id(getattr(op, n)): g for op, d in zip(self.model.ops, per_layer[1:]) for n, g in d.items()}
            rule_grads = [by_param.get(id(p)) for p in params]
        finally:
            self.rule_generator.set_state(rng_state)
        with torch.enable_grad():
            loss = torch.nn.functional.cross_entropy(self.model(x), y, label_smoothing=self.label_smoothing)
            exact = list(torch.autograd.grad(loss, params))
        return {"names": names, "rule": rule_grads, "exact": exact, "step": step}


def _block_dict(block) -> dict:
    d = OmegaConf.to_container(block, enum_to_str=True) if not isinstance(block, dict) else dict(block)
    return d


def print_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
