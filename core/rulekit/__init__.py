"""Building blocks for rule authors: fixed feedback weights, learned inverses, noise, the TP base."""

from .feedback import FeedbackWeights
from .inverse import DenseInverse, LayerInverse
from .noise import NoiseSource
from .optimizer import RuleOptimizer
from .target_propagation import TargetPropagation, TPConfig, TPSchedule, paper_search_space, per_schedule_recipes

__all__ = ["DenseInverse", "FeedbackWeights", "LayerInverse", "NoiseSource", "RuleOptimizer", "TPConfig", "TPSchedule", "TargetPropagation", "paper_search_space", "per_schedule_recipes"]
