"""Shared machinery of the target-propagation family (DTP, SDTP, AO-SDTP).

A TP rule trains each hidden layer towards a target ``ĥ_l`` (the trainer turns targets
into the local loss ``||h_l - ĥ_l||²``) and learns inverses ``g_l`` that map ``h_l`` back
to ``h_{l-1}``. Lower targets use the difference correction
``ĥ_{l-1} = h_{l-1} + g_l(ĥ_l) - g_l(h_l)``, evaluated as one batched call on
``[ĥ_l; h_l]``. Subclasses choose which layers have inverses, what the top inverse reads,
the top target, and whether inverse training preserves the noise (DTP) or removes it
(SDTP, AO-SDTP).

Schedules: ``parallel`` = both updates every batch (inverse first);
``alternating`` = a whole pass of inverse updates, then a whole pass of forward updates,
every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import torch
from omegaconf import OmegaConf
from torch import nn

from bioscale.config.schema import AdamConfig, LRSchedule, RuleConfig, WeightInit, plain_value
from bioscale.architectures import make_activation
from bioscale.config.bounds import bounded
from bioscale.errors import ConfigError
from bioscale.flat_parameters import flatten_parameters
from bioscale.markers import hookimpl
from bioscale.optim import make_adam, scheduled_lr, set_lr

from .inverse import LayerInverse
from .inverse_kernels import SingleKernel, StackedKernel
from .noise import NoiseSource


class TPSchedule(Enum):
    parallel = "parallel"
    alternating = "alternating"

    def passes(self) -> list[set[str]]:
        """``bioscale_epoch_passes`` for this schedule: alternating makes an epoch two passes over
        the data (the inverses, then the forward weights); parallel trains both in each step."""
        if self is TPSchedule.alternating:
            return [{"inverse"}, {"forward"}]
        return [{"inverse", "forward"}]


def per_schedule_recipes(config_cls, presets, alternating: dict, parallel: dict) -> dict:
    """A TP rule's ``recipes`` for ``presets``: ``alternating`` under each preset name (the
    default schedule) and ``parallel`` under ``"<preset>:schedule=parallel"``.

    Recipes layer (the conditional one is merged over the preset's), so every setting the
    alternating recipe makes and the parallel one does not is reset to ``config_cls``'s
    default in the parallel entry: ``schedule=parallel`` gets exactly ``parallel``."""
    defaults = OmegaConf.to_container(OmegaConf.structured(config_cls), enum_to_str=True)
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


def _constant_adam():
    return AdamConfig(lr=1e-3, schedule=LRSchedule.constant)


@dataclass
class TPConfig(RuleConfig):
    """Settings every TP rule shares: schedule, inverse noise, inverse optimiser."""

    schedule: TPSchedule = TPSchedule.alternating
    sigma: float = bounded(0.1, low=0)  # std of the noise added to h_{l-1} when training g_l
    inverse_activation: str = "tanh"
    inverse_init: WeightInit = WeightInit.glorot  # initial inverse weights V_l (see model.weight_init)
    # one noise draw per step and input shape, reused by every inverse with that shape (fresh
    # random signs per sample, its own sigma); false: an independent draw per layer
    shared_noise: bool = True
    inverse_optimizer: AdamConfig = field(default_factory=_constant_adam)


def paper_search_space(optimizers=("optimizer",), alpha: bool = False, sigma: bool = False) -> dict:
    """Bartunov et al.'s search space, keys relative to a rule's section: for each Adam,
    log-uniform lr in [1e-5, 3e-4], beta2 in {0.99, 0.999}, eps in {1e-4, 1e-6, 1e-8};
    alpha in [0.01, 0.2] and sigma in [0.01, 0.3] where the rule has them."""
    space = {}
    for opt in optimizers:
        space.update({f"{opt}.lr": "loguniform:1e-5:3e-4", f"{opt}.beta2": "choice:0.99,0.999",
                      f"{opt}.eps": "choice:1e-4,1e-6,1e-8"})
    if alpha:
        space["alpha"] = "uniform:0.01:0.2"
    if sigma:
        space["sigma"] = "uniform:0.01:0.3"
    return space


class TargetPropagation:
    """Base class; subclasses set ``noise_preserving`` and override the ``top_*`` methods."""

    Config = TPConfig
    search_space = paper_search_space(("optimizer", "inverse_optimizer"), sigma=True)
    noise_preserving = False  # DTP: reconstruct the noisy input itself; SDTP: the clean one
    paper_name: str | None = None  # the rule's name in the paper's tables, e.g. "DTP"

    paper_variants = ({"schedule": "parallel"}, {"schedule": "alternating"})  # the paper's rows per TP rule

    @classmethod
    def paper_row(cls, config: TPConfig) -> str | None:
        """``"<paper_name> <schedule>"`` (e.g. ``"DTP parallel"``), or None without a paper name."""
        return f"{cls.paper_name} {plain_value(config.schedule)}" if cls.paper_name else None

    def __init__(self, config: TPConfig):
        try:
            make_activation(config.inverse_activation)
        except ValueError as exc:  # refused before setup, which would blame the plugin
            raise ConfigError(f"inverse_activation: {exc}") from None
        self.config = config
        self.inverse_init = plain_value(config.inverse_init)  # "glorot" / "orthogonal"
        self.inverses: nn.ModuleDict | None = None
        self.optimizer = None
        self.noise: NoiseSource | None = None
        self.model = None

    # -- what subclasses decide -------------------------------------------------------
    def inverse_layers(self, model) -> range:
        """Layers ``l`` that own an inverse ``g_l`` (default: every hidden layer above the first)."""
        return range(2, model.num_layers)

    def build_inverse(self, model, l: int, generator) -> nn.Module:
        """``g_l``; its forward must return a fresh tensor (the difference correction is
        computed in the output's memory)."""
        return LayerInverse(model.layer(l).op, self.config.inverse_activation, generator, self.inverse_init)

    def read(self, l: int, h_out: torch.Tensor, h_in: torch.Tensor) -> torch.Tensor:
        """What ``g_l`` reads of layer ``l``'s output ``h_out`` (computed from ``h_in``):
        ``read_top`` for the top layer, ``h_out`` itself below it. A subclass that overrides
        ``read`` itself (rather than ``read_top``) opts out of grouped inverse training."""
        return self.read_top(h_out, h_in) if l == self.model.num_layers else h_out

    def read_top(self, h_out: torch.Tensor, h_in: torch.Tensor) -> torch.Tensor:
        """What ``g_L`` reads of the output ``h_L`` (computed from ``h_{L-1}``); default ``h_L``."""
        return h_out

    def top_target(self, step, target_above) -> torch.Tensor:
        """Target of ``h_{L-1}``; every TP rule defines its own."""
        raise NotImplementedError

    def inverse_sigma(self, l: int) -> float:
        """Std of the noise added to ``h_{l-1}`` when training ``g_l``; default ``sigma`` for
        every layer. Layers with different stds are never stacked into one kernel."""
        return self.config.sigma

    def top_inverse_lr_scale(self) -> float:
        """The top inverse ``g_L``'s lr is the inverse optimiser's times this (default 1)."""
        return 1.0

    # -- hooks ------------------------------------------------------------------------
    @hookimpl
    def bioscale_setup(self, model, generator, layers):
        self.model = model
        device = next(model.parameters()).device
        wanted = [l for l in self.inverse_layers(model) if l - 1 in layers]  # g_l makes the target of h_{l-1}
        self.inverses = nn.ModuleDict({str(l): self.build_inverse(model, l, generator) for l in wanted})
        self.inverses.to(device)
        self.noise = NoiseSource(generator, device, shared=self.config.shared_noise)
        L = model.num_layers
        below = [p for k, g in self.inverses.items() if int(k) < L for p in g.parameters()]
        top = [p for k, g in self.inverses.items() if int(k) >= L for p in g.parameters()]
        # two flat parameters: the inverses below the top, and the top inverse (own lr scale)
        # (one Adam tensor each instead of two per layer: less per-tensor optimiser work per step)
        below_flat, top_flat = ([flatten_parameters(ps)] if ps else [] for ps in (below, top))
        self.flats = below_flat + top_flat
        self.optimizer = None
        if self.flats:
            self.optimizer = make_adam(below_flat, self.config.inverse_optimizer, top_flat, self.top_inverse_lr_scale())
        self.units = self._training_units(model)

    def _training_units(self, model, stack: bool = True) -> list:
        """Inverse training units in increasing layer order: ``StackedKernel``s for runs of equal
        dense layers below the top with a plain read and one noise std (with ``stack``), a
        ``SingleKernel`` for every other layer."""
        layers = {int(k): g for k, g in self.inverses.items()}
        plain_read = type(self).read is TargetPropagation.read
        stacked = StackedKernel.runs(model, {l: g for l, g in layers.items() if l < model.num_layers}) \
            if stack and plain_read and self.flats else []
        units = []
        for unit in stacked:
            if isinstance(unit, StackedKernel) and len({self.inverse_sigma(l) for l in unit.layers}) == 1:
                units.append(unit)
        covered = {l for unit in units for l in unit.layers}
        units += [SingleKernel(model, l, g, self._reader(l)) for l, g in layers.items() if l not in covered]
        return sorted(units, key=lambda unit: unit.layers[0])

    def _reader(self, l: int):
        return lambda h_out, h_in: self.read(l, h_out, h_in)

    @hookimpl
    def bioscale_epoch_passes(self, epoch):
        return TPSchedule(self.config.schedule).passes()

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        if layer == step.num_layers:
            return self.top_target(step, target_above)
        return self.difference_target(step, layer, target_above, step.h[layer])

    def difference_target(self, step, layer: int, target_read, read) -> torch.Tensor:
        """``h_{l-1} + g_l(target_read) - g_l(read)`` for ``l = layer``: the two inverse
        evaluations as one batched call on ``[target_read; read]`` (each ``(B, ...)``), the sum
        in the first output's memory. No grad."""
        B = step.batch_size
        both = self.inverses[str(layer)](torch.cat([target_read, read]))
        return both[:B].add_(step.h[layer - 1]).sub_(both[B:])

    @hookimpl
    def bioscale_update_inverse(self, step):
        """Inverse loss ``mean_b ||g_l(read(f_l(h̃_{l-1}))) - goal||²`` summed over layers; its
        gradients come in closed form (no autograd), then one Adam step. One implementation
        for every unit; the unit's kernel computes the products (``inverse_kernels.py``)."""
        if self.optimizer is None:
            return None
        losses = {}
        scale = 2.0 / step.batch_size
        self.noise.begin(step)
        with torch.no_grad():
            for unit in self.units:
                clean = unit.inputs(step)  # (B, ...) or, stacked, (G, B, n)
                noisy = self.noise.perturb(clean, self.inverse_sigma(unit.layers[0]), stacked=unit.stacked)
                read = unit.forward_read(noisy)
                reconstruction = unit.reconstruct(read)
                diff = reconstruction - (noisy if self.noise_preserving else clean)
                flat = diff.reshape(len(unit.layers), -1)
                errors = torch.linalg.vector_norm(flat, dim=1).square_().div_(flat.shape[1])
                losses.update(zip(unit.layers, errors.unbind()))
                unit.write_grads(read, reconstruction, diff.mul_(scale))  # into the flat gradient's views
            self.noise.clear_shared()
            step.reduce_gradients([flat.grad for flat in self.flats])  # data-parallel: the global batch's mean
            set_lr(self.optimizer, scheduled_lr(self.config.inverse_optimizer, step.progress))
            self.optimizer.step()
        return losses

    @hookimpl
    def bioscale_inverse_error(self, step):
        if not self.inverses:
            return None
        errors = {}
        with torch.no_grad():
            for key, g in self.inverses.items():
                l = int(key)
                read = self.read(l, step.h[l], step.h[l - 1])
                errors[l] = (g(read) - step.h[l - 1]).square().mean()
        return errors

    @hookimpl
    def bioscale_state_dict(self):
        return {
            "inverses": self.inverses.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "noise": self.noise.state_dict(),
            **self.extra_state(),
        }

    @hookimpl
    def bioscale_load_state_dict(self, state):
        self.inverses.load_state_dict(state["inverses"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.noise.load_state_dict(state["noise"])
        self.load_extra_state(state)

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass
