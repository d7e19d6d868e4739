"""``bioscale resume RUN_FOLDER [trainer.epochs=N ...]``: continue a run from its checkpoint.

The run folder is checked (config, overrides, checkpoint, its epoch against ``trainer.epochs``)
before any data is read or file written; a refused resume leaves the folder as it was.
"""

from __future__ import annotations

from pathlib import Path

from ..config import resolve_observers
from ..config.saved import RESUMABLE_PREFIXES, load_run_config
from ..trainer import Trainer
from .train import fit_to_end

__all__ = ["RESUMABLE_PREFIXES", "load_run_config", "main"]  # load_run_config: its old import path


def main(run_dir: str, tokens: list[str]) -> int:
    path = Path(run_dir)
    cfg, rule_spec = load_run_config(path, tokens)
    observers = resolve_observers(cfg)
    return fit_to_end(Trainer.resume(path, cfg, rule_spec, observers))
