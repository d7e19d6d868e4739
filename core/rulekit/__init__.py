"""Building blocks for rule authors: fixed feedback weights, learned inverses, TP schedules."""

from .feedback import FeedbackWeights

__all__ = ["FeedbackWeights"]
