"""``bioscale train key=value ...``: one run; prints the run folder last."""

from __future__ import annotations

import sys

from ..config import build_run_config, resolve_observers, resolve_rule
from ..config.resolve import unused_rule_sections
from ..trainer import Trainer


def prepare(tokens: list[str], data=None) -> Trainer:
    """Validate everything, load data, build the run (creates its folder)."""
    cfg = build_run_config(tokens)
    rule_spec = resolve_rule(cfg)
    observers = resolve_observers(cfg)
    for name in unused_rule_sections(cfg, rule_spec):  # a config file may keep several rules' sections
        print(
            f"bioscale: warning: rules.{name}: settings for rule {name!r}, which this run (rule={cfg.rule}) does not use; "
            f"they were checked and are ignored",
            file=sys.stderr,
            flush=True,
        )
    return Trainer.create(cfg, rule_spec, observers, data=data)


def main(tokens: list[str]) -> int:
    return fit_to_end(prepare(tokens))


def fit_to_end(trainer: Trainer) -> int:
    """Train, then print the run folder (rank 0) and close the process group, however fit() ends."""
    try:
        trainer.fit()
    finally:
        if trainer.parallel.is_main:
            print(trainer.run_dir, flush=True)
        trainer.parallel.close()
    return 0
