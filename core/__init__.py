"""bioscale: biologically motivated learning rules as plugins of one trainer.

From Python: ``bioscale.train(...)``, ``resume``, ``compare``, ``sweep`` and ``load_run`` return
``Run`` / ``Comparison`` / ``Sweep`` objects; ``register_rule`` (and ``register_architecture``,
``register_dataset``, ``register_observer``) make Python objects plugins of this process (``bioscale.api``). Rule
authors need ``hookimpl`` (decorate hook methods), ``RuleConfig`` / ``OptimizerConfig`` (base of a
rule's structured config) and, optionally, ``bioscale.rulekit``.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .config.schema import AdamConfig, LRSchedule, OptimizerConfig, OptimizerName, RuleConfig  # noqa: E402
from .errors import BioscaleError, ConfigError  # noqa: E402
from .layer_target import LayerTarget  # noqa: E402
from .markers import hookimpl, hookspec  # noqa: E402

_API = (
    "Comparison",
    "Run",
    "Sweep",
    "compare",
    "load_run",
    "register_architecture",
    "register_dataset",
    "register_observer",
    "register_rule",
    "resume",
    "sweep",
    "train",
)


if TYPE_CHECKING:  # type checkers and IDEs see the API's types; at run time it is imported on first use
    from .api import (  # noqa: F401  # listed in __all__ through _API
        Comparison,
        Run,
        Sweep,
        compare,
        load_run,
        register_architecture,
        register_dataset,
        register_observer,
        register_rule,
        resume,
        sweep,
        train,
    )


def __getattr__(name: str):
    """The Python API, imported on first use: ``import bioscale`` stays light for plugins."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'bioscale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))  # tab completion offers the lazily imported API too


__all__ = [
    *_API,
    "AdamConfig",
    "BioscaleError",
    "ConfigError",
    "LRSchedule",
    "LayerTarget",
    "OptimizerConfig",
    "OptimizerName",
    "RuleConfig",
    "__version__",
    "hookimpl",
    "hookspec",
]
