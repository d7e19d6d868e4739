"""``bioscale resume RUN_FOLDER [trainer.epochs=N ...]``: continue a run from its checkpoint.

The run folder is checked (config, overrides, checkpoint, its epoch against ``trainer.epochs``)
before any data is read or file written; a refused resume leaves the folder as it was. Under
torchrun every process must see the folder's config and checkpoint, or every one exits 2 naming
the processes that cannot (before any process group is joined).
"""

from __future__ import annotations

from pathlib import Path

from ..config import resolve_observers
from ..config.saved import RESUMABLE_PREFIXES, load_run_config
from ..distributed import check_visible, launched
from ..run_dir import CHECKPOINT, CONFIG
from ..trainer import Trainer
from .train import fit_to_end

__all__ = ["RESUMABLE_PREFIXES", "load_run_config", "main"]  # load_run_config: its old import path


def main(run_dir: str, tokens: list[str]) -> int:
    return fit_to_end(prepare_resume(run_dir, tokens))


def prepare_resume(run_dir: str, tokens: list[str]) -> Trainer:
    """Check the folder and the overrides, load the data and the checkpoint: the run, ready to fit."""
    path = Path(run_dir)
    if launched():  # every process reads the folder: each must see it (multi-node: a shared file system)
        check_visible([path / CONFIG, path / CHECKPOINT], f"cannot resume {path}")
    cfg, rule_spec = load_run_config(path, tokens)
    observers = resolve_observers(cfg)
    return Trainer.resume(path, cfg, rule_spec, observers)
