"""Run configuration: schemas, presets and resolution from the command line."""

from .bounds import bounded, check_bounds
from .resolve import ObserverSpec, RuleSpec, build_run_config, resolve_observers, resolve_rule
from .schema import AdamConfig, LRSchedule, OptimizerConfig, OptimizerName, RuleConfig, RunConfig, plain_value

__all__ = [
    "AdamConfig",
    "LRSchedule",
    "OptimizerConfig",
    "OptimizerName",
    "ObserverSpec",
    "RuleConfig",
    "RuleSpec",
    "RunConfig",
    "bounded",
    "build_run_config",
    "check_bounds",
    "plain_value",
    "resolve_observers",
    "resolve_rule",
]
