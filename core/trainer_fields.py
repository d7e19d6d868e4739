"""``TrainerFields``: the attributes ``Trainer.__init__`` sets, declared once for the parts of the
trainer that live in their own modules (``loop.py``, ``run_state.py``, ``record.py``) and read them.
Annotations only: nothing here runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from bioscale.architectures.network import Network
    from bioscale.datasets.in_memory import DataBundle
    from omegaconf import DictConfig

    from .config.specs import ObserverSpec, RuleSpec
    from .distributed import DataParallel
    from .plugin_host import ObserverHooks, RuleHooks
    from .run import Run
    from .run_lock import RunLock


class TrainerFields:
    cfg: DictConfig
    rule_spec: RuleSpec
    observer_specs: list[ObserverSpec]
    parallel: DataParallel
    device: torch.device
    host_malloc: str  # "tuned": glibc's thresholds set for training (core/host_malloc.py), else "system"
    label_smoothing: float
    data: DataBundle
    model: Network
    flat_parameters: Any  # a FlatParameters, or None when the parameters cannot share one storage
    rule_hooks: RuleHooks
    observers: ObserverHooks
    rule_generator: torch.Generator
    data_generator: torch.Generator
    optimizer_cfg: Any  # the rule's OptimizerConfig
    optimizer: torch.optim.Optimizer
    planned_epochs: int  # trainer.epochs as a plain int (the lr schedule reads it every step)
    precision: str
    epoch: int
    global_step: int
    history: list[dict]
    run_dir: Path | None
    lock: RunLock | None
    paper_row: Any
    run: Run
    _grad_dests: dict
    _forward_step: Callable
    _credit: Callable
