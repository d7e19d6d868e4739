"""Settings shared by the rules that learn their feedback, and the helpers for their recipes.

``FeedbackConfig`` (schedule, noise std, feedback optimiser) is the base of every such rule's
``Config`` (DDTP's); ``InverseConfig`` adds the learned inverses' activation and initial weights
(L-DRL's); ``TPConfig`` adds the shared noise of the paper's TP rules (DTP, SDTP, AO-SDTP).
``FeedbackRule`` answers ``bioscale_epoch_passes`` from ``config.schedule``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from bioscale.architectures import make_activation
from bioscale.config.bounds import bounded
from bioscale.config.schema import LRSchedule, OptimizerConfig, RuleConfig, WeightInit, config_dict
from bioscale.errors import ConfigError
from bioscale.markers import hookimpl
from omegaconf import OmegaConf


class TPSchedule(Enum):
    parallel = "parallel"
    alternating = "alternating"

    def passes(self) -> list[set[str]]:
        """``bioscale_epoch_passes`` for this schedule: alternating makes an epoch two passes over
        the data (the inverses, then the forward weights); parallel trains both in each step."""
        if self is TPSchedule.alternating:
            return [{"inverse"}, {"forward"}]
        return [{"inverse", "forward"}]


def _constant_adam() -> OptimizerConfig:
    return OptimizerConfig(lr=1e-3, schedule=LRSchedule.constant)


@dataclass
class FeedbackConfig(RuleConfig):
    """Settings of every rule with learned feedback: when it trains, its noise, its optimiser."""

    schedule: TPSchedule = TPSchedule.parallel
    sigma: float = bounded(0.1, low=0)  # std of the noise the feedback is trained on
    inverse_optimizer: OptimizerConfig = field(default_factory=_constant_adam)  # trains the feedback parameters


@dataclass
class InverseConfig(FeedbackConfig):
    """Feedback made of learned layer inverses ``g_l`` (``rulekit.LayerInverse``)."""

    inverse_activation: str = "tanh"
    inverse_init: WeightInit = WeightInit.glorot  # initial inverse weights V_l (see model.weight_init)


@dataclass
class TPConfig(InverseConfig):
    """Settings every paper TP rule shares: schedule, inverse noise, inverse optimiser."""

    schedule: TPSchedule = TPSchedule.alternating
    # one noise draw per step and input shape, reused by every inverse with that shape (fresh
    # random signs per sample, its own sigma); false: an independent draw per layer
    shared_noise: bool = True


def check_inverse_activation(config: InverseConfig) -> None:
    """Refuse an unknown ``inverse_activation`` in ``__init__`` (a config error, exit status 2,
    before setup, which would blame the plugin)."""
    try:
        make_activation(config.inverse_activation)
    except ValueError as exc:
        raise ConfigError(f"inverse_activation: {exc}") from None


# why the target rules refuse batch norm and skips (``support_note``, appended to the refusal)
TARGETS_NEED_A_CHAIN = (
    "targets need a chain: layer l's inverse makes h_{l-1}'s target alone, undoing pooling but not a skip's sum "
    "or batch norm's batch statistics"
)


class FeedbackRule:
    """Base of rules with a ``FeedbackConfig``: the epoch's passes follow ``config.schedule``."""

    Config = FeedbackConfig

    @hookimpl
    def bioscale_epoch_passes(self, epoch):
        return TPSchedule(self.config.schedule).passes()


def per_schedule_recipes(config_cls, presets, alternating: dict, parallel: dict) -> dict:
    """A TP rule's ``recipes`` for ``presets``: ``alternating`` under each preset name (the
    default schedule) and ``parallel`` under ``"<preset>:schedule=parallel"``.

    Recipes layer (the conditional one is merged over the preset's), so every setting the
    alternating recipe makes and the parallel one does not is reset to ``config_cls``'s
    default in the parallel entry: ``schedule=parallel`` gets exactly ``parallel``."""
    defaults = config_dict(OmegaConf.structured(config_cls), enum_to_str=True)
    parallel = _fill_from_defaults(alternating, parallel, defaults)
    recipes = {}
    for preset in presets:
        recipes[preset] = alternating
        recipes[f"{preset}:schedule=parallel"] = parallel
    return recipes


def _fill_from_defaults(other: dict, recipe: dict, defaults: dict) -> dict:
    """``recipe`` plus, for each key (nested) ``other`` sets and ``recipe`` does not, its default."""
    out = dict(recipe)
    for key, value in other.items():
        if isinstance(value, dict):
            out[key] = _fill_from_defaults(value, recipe.get(key, {}), defaults[key])
        elif key not in recipe:
            out[key] = defaults[key]
    return out


def paper_search_space(optimizers=("optimizer",), alpha: bool = False, sigma: bool = False) -> dict:
    """Bartunov et al.'s search space, keys relative to a rule's section: for each optimiser (Adam's settings),
    log-uniform lr in [1e-5, 3e-4], beta2 in {0.99, 0.999}, eps in {1e-4, 1e-6, 1e-8};
    alpha in [0.01, 0.2] and sigma in [0.01, 0.3] where the rule has them."""
    space = {}
    for opt in optimizers:
        space.update(
            {
                f"{opt}.lr": "loguniform:1e-5:3e-4",
                f"{opt}.beta2": "choice:0.99,0.999",
                f"{opt}.eps": "choice:1e-4,1e-6,1e-8",
            }
        )
    if alpha:
        space["alpha"] = "uniform:0.01:0.2"
    if sigma:
        space["sigma"] = "uniform:0.01:0.3"
    return space
