"""Run state: what a checkpoint holds (weights, optimiser, rule state, counters, RNG streams),
saving it, loading it back into a rebuilt run, and the checks a resume makes before it writes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from . import checkpoint
from .config.schema import config_dict
from .errors import CheckpointError, ConfigError, PluginFailure
from .run_dir import CHECKPOINT, metrics_through
from .trainer_fields import TrainerFields


def read_for_resume(run_dir: Path, epochs: int) -> tuple[dict, tuple]:
    """The run's checkpoint (format, checksum, metrics up to its epoch checked) and its file
    stamp, read before any work or write; a :class:`ConfigError` if ``trainer.epochs=epochs``
    ends before the epoch the checkpoint holds (the run folder is left as it is)."""
    path = Path(run_dir) / CHECKPOINT
    state = checkpoint.load_checkpoint(path)
    metrics_through(run_dir, state["epoch"])  # a checkpoint its metrics do not back is a CheckpointError first
    if epochs < state["epoch"]:
        raise ConfigError(
            f"cannot resume {run_dir} with trainer.epochs={epochs}: the run has already trained "
            f"{state['epoch']} epochs. Give trainer.epochs={state['epoch']} or more (or leave it out); "
            f"start a new run to train fewer. Nothing was changed."
        )
    return state, file_stamp(path)


def file_stamp(path: Path) -> tuple:
    """What changes when a file is replaced: inode, size, modification time."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


class RunState(TrainerFields):
    """Trainer mixin: the checkpointed state. Reads and writes ``model``, ``optimizer``,
    ``rule_hooks``, ``data_generator``, ``rule_generator``, ``epoch``, ``global_step``; reads
    ``cfg``, ``rule_spec``, ``data``, ``device`` and ``run_dir``."""

    def identity(self) -> dict:
        """What must match between a checkpoint and the run it is loaded into."""
        return {
            "rule": self.rule_spec.name,
            "data": self.cfg.data.name,
            "model": config_dict(self.cfg.model, resolve=True, enum_to_str=True),
            "in_shape": list(self.data.in_shape),
            "num_classes": self.data.num_classes,
            "seed": self.cfg.seed,
        }

    def initial_state(self) -> list:
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

    def state(self) -> dict:
        """Everything a checkpoint holds (tensors stay where they are; saving copies them)."""
        rng = {
            "torch": torch.get_rng_state(),
            "data": self.data_generator.get_state(),
            "rule": self.rule_generator.get_state(),
        }
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
        """Load a checkpoint's ``state`` (from ``path``, for messages) into this rebuilt run."""
        checkpoint.check_identity(state, self.identity(), path)
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
            raise CheckpointError(
                f"checkpoint {path} does not match this run: {type(cause).__name__}: {cause}"
            ) from exc
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not match this run: {type(exc).__name__}: {exc}") from exc
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])

    def save(self) -> None:
        """Write the checkpoint (unless ``trainer.checkpoint=false``); a rule state that could not
        be loaded back is a :class:`PluginFailure` naming the rule, and nothing is written."""
        if not self.cfg.trainer.checkpoint:
            return
        state = self.state()
        try:  # a rule's state must load back with weights_only=True, or its checkpoint never will
            checkpoint.loads_safely(checkpoint.serialize(state["rule"]))
        except Exception as exc:
            raise PluginFailure(
                f"{self.rule_hooks.origin}: bioscale_state_dict returned state that cannot be "
                f"loaded back ({type(exc).__name__}: {exc}); only tensors, numbers, strings, "
                f"lists and dicts are allowed"
            ) from exc
        assert self.run_dir is not None  # create and resume set it before anything is saved
        checkpoint.save_checkpoint(self.run_dir / CHECKPOINT, state)
