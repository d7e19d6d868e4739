"""Building blocks for rule authors: fixed feedback weights, learned inverses, noise, the rule's own
optimiser, the shared settings and targets of rules with learned feedback, the TP base."""

from . import targets
from .feedback import FeedbackWeights, consumers_of
from .inverse import DenseInverse, LayerInverse
from .noise import NoiseSource
from .optimizer import RuleOptimizer
from .settings import (
    FeedbackConfig,
    FeedbackRule,
    InverseConfig,
    TPConfig,
    TPSchedule,
    check_inverse_activation,
    paper_search_space,
    per_schedule_recipes,
)
from .target_propagation import TargetPropagation

__all__ = [
    "DenseInverse",
    "FeedbackConfig",
    "FeedbackRule",
    "FeedbackWeights",
    "InverseConfig",
    "LayerInverse",
    "NoiseSource",
    "RuleOptimizer",
    "TPConfig",
    "TPSchedule",
    "TargetPropagation",
    "check_inverse_activation",
    "consumers_of",
    "paper_search_space",
    "per_schedule_recipes",
    "targets",
]
