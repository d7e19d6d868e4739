"""bioscale: biologically motivated learning rules as plugins of one trainer.

Rule authors need ``hookimpl`` (decorate hook methods), ``RuleConfig`` / ``OptimizerConfig``
(base of a rule's structured config) and, optionally, ``bioscale.rulekit``.
"""

__version__ = "0.1.0"

from .config.schema import AdamConfig, LRSchedule, OptimizerConfig, OptimizerName, RuleConfig  # noqa: E402
from .layer_target import LayerTarget  # noqa: E402
from .markers import hookimpl, hookspec  # noqa: E402

__all__ = [
    "AdamConfig",
    "LRSchedule",
    "LayerTarget",
    "OptimizerConfig",
    "OptimizerName",
    "RuleConfig",
    "__version__",
    "hookimpl",
    "hookspec",
]
