"""The ``sweep.*`` settings, split from the run's own ``key=value`` tokens and checked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import cast

from omegaconf import OmegaConf

from ..config.bounds import bounded, check_bounds
from ..config.resolve import apply_dotlist, split_tokens


class Sampler(Enum):
    random = "random"  # the paper's protocol
    tpe = "tpe"


class Pruner(Enum):
    none = "none"
    median = "median"
    halving = "halving"  # successive halving


@dataclass
class SweepConfig:
    trials: int = bounded(20, low=1)  # configurations in the study (finished, pruned or failed)
    workers: int = bounded(1, low=1)  # processes on this machine
    storage: str = ""  # an Optuna storage URL; "": SQLite in the sweep folder
    study: str = ""  # "": sweep-<rule>-<data>-<model>
    dir: str = ""  # the sweep folder; "": <output_dir>/sweeps/<study>
    sampler: Sampler = Sampler.random
    pruner: Pruner = Pruner.none
    prune_warmup: int = bounded(3, low=0)  # epochs before the pruner may stop a trial
    space: str = ""  # a YAML file of key: spec (overrides the rule's space key by key)
    seed: int = bounded(0, low=0, high=2**31 - 1)  # the sampler's seed
    validation_fraction: float = bounded(0.1, low=0, high=1, low_open=True, high_open=True)  # when data.validation is 0
    heartbeat: int = bounded(10, low=1)  # seconds between a running trial's heartbeats


def split_sweep_tokens(tokens: list[str]) -> tuple[list[str], list[tuple[str, str]], dict[str, str]]:
    """``(run tokens, sweep.* pairs, sweep.space.<key> specs)``."""
    run, sweep, space = [], [], {}
    for key, value in split_tokens(tokens):
        if key.startswith("sweep.space."):
            space[key[len("sweep.space.") :]] = value
        elif key.startswith("sweep."):
            sweep.append((key[len("sweep.") :], value))
        else:
            run.append(f"{key}={value}")
    return run, sweep, space


def sweep_config(pairs: list[tuple[str, str]]) -> SweepConfig:
    cfg = apply_dotlist(OmegaConf.structured(SweepConfig), pairs, "sweep")
    check_bounds(cfg, "sweep")
    return cast(SweepConfig, OmegaConf.to_object(cfg))  # a structured SweepConfig's object
