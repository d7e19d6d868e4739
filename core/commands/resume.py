"""``bioscale resume RUN_FOLDER [trainer.epochs=N ...]``: continue a run from its checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..config import resolve_observers
from ..config.saved import load_run_config
from ..trainer import Trainer
from .train import fit_to_end


def main(run_dir: str, tokens: list[str]) -> int:
    path = Path(run_dir)
    cfg, rule_spec = load_run_config(path, tokens)
    observers = resolve_observers(cfg)
    return fit_to_end(Trainer.resume(path, cfg, rule_spec, observers))
