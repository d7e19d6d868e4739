"""Shared machinery of the target-propagation family (DTP, SDTP, AO-SDTP).

A TP rule trains each hidden layer towards a target ``ĥ_l`` (the trainer turns targets
into the local loss ``||h_l - ĥ_l||²``) and learns inverses ``g_l`` that map ``h_l`` back
to ``h_{l-1}``. Lower targets use the difference correction
``ĥ_{l-1} = h_{l-1} + g_l(ĥ_l) - g_l(h_l)``, evaluated as one batched call on
``[ĥ_l; h_l]``. Subclasses choose which layers have inverses, what the top inverse reads,
the top target, and whether inverse training preserves the noise (DTP) or removes it
(SDTP, AO-SDTP).

On a pooled layer ``g_l`` undoes the pooling first (``rulekit.inverse``): both evaluations of
a target with the clean forward's max-pooling indices, inverse training with those of the
noisy forward it inverts.

Schedules: ``parallel`` = both updates every batch (inverse first);
``alternating`` = a whole pass of inverse updates, then a whole pass of forward updates,
every epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from bioscale.config.schema import plain_value
from bioscale.flat_parameters import flatten_parameters
from bioscale.markers import hookimpl
from torch import nn

from .inverse import LayerInverse
from .inverse_kernels import SingleKernel, StackedKernel
from .noise import NoiseSource
from .optimizer import RuleOptimizer
from .settings import FeedbackRule, TPConfig, check_inverse_activation, paper_search_space
from .targets import difference_target, pool_context

if TYPE_CHECKING:
    from bioscale.architectures import Network


class TargetPropagation(FeedbackRule):
    """Base class; subclasses set ``noise_preserving`` and override the ``top_*`` methods."""

    Config = TPConfig
    # the inverses of equal fully connected layers below the top read h_out itself (``read``), so
    # they may be trained as one stacked kernel; a subclass overriding ``read`` must declare it
    stackable = True
    search_space = paper_search_space(("optimizer", "inverse_optimizer"), sigma=True)
    noise_preserving = False  # DTP: reconstruct the noisy input itself; SDTP: the clean one
    paper_name: str | None = None  # the rule's name in the paper's tables, e.g. "DTP"

    paper_variants = ({"schedule": "parallel"}, {"schedule": "alternating"})  # the paper's rows per TP rule

    @classmethod
    def paper_row(cls, config: TPConfig) -> str | None:
        """``"<paper_name> <schedule>"`` (e.g. ``"DTP parallel"``), or None without a paper name."""
        return f"{cls.paper_name} {plain_value(config.schedule)}" if cls.paper_name else None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "read" in cls.__dict__ and "stackable" not in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__} overrides read: declare stackable (False unless every layer "
                f"below the top still reads h_out itself)"
            )

    def __init__(self, config: TPConfig):
        check_inverse_activation(config)
        self.config = config
        self.inverse_init = plain_value(config.inverse_init)  # "glorot" / "orthogonal"
        self.inverses: nn.ModuleDict | None = None
        self.optimizer: RuleOptimizer | None = None
        self.noise: NoiseSource | None = None
        self.model: Network | None = None

    # -- what subclasses decide -------------------------------------------------------
    def inverse_layers(self, model) -> range:
        """Layers ``l`` that own an inverse ``g_l`` (default: every hidden layer above the first)."""
        return range(2, model.num_layers)

    def build_inverse(self, model, l: int, generator) -> nn.Module:
        """``g_l``; its forward must return a fresh tensor (the difference correction is
        computed in the output's memory). A pooled layer's undoes the pooling first."""
        layer = model.layer(l)
        return LayerInverse(layer.op, self.config.inverse_activation, generator, self.inverse_init, pool=layer.pool)

    def read(self, l: int, h_out: torch.Tensor, h_in: torch.Tensor) -> torch.Tensor:
        """What ``g_l`` reads of layer ``l``'s output ``h_out`` (computed from ``h_in``):
        ``read_top`` for the top layer, ``h_out`` itself below it. A subclass that overrides
        ``read`` itself (rather than ``read_top``) declares ``stackable`` (False: no grouped
        inverse training)."""
        assert self.model is not None  # set by bioscale_setup
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
            self.optimizer = RuleOptimizer(
                below_flat, self.config.inverse_optimizer, scaled=top_flat, lr_scale=self.top_inverse_lr_scale()
            )
        self.units = self._training_units(model)

    def _training_units(self, model, stack: bool = True) -> list:
        """Inverse training units in increasing layer order: ``StackedKernel``s for runs of equal
        dense layers below the top with a plain read and one noise std (with ``stack``), a
        ``SingleKernel`` for every other layer."""
        assert self.inverses is not None  # bioscale_setup builds them first
        layers = {int(k): g for k, g in self.inverses.items()}
        stacked = (
            StackedKernel.runs(model, {l: g for l, g in layers.items() if l < model.num_layers})
            if stack and self.stackable and self.flats
            else []
        )
        units: list[StackedKernel | SingleKernel] = []
        for unit in stacked:
            if isinstance(unit, StackedKernel) and len({self.inverse_sigma(l) for l in unit.layers}) == 1:
                units.append(unit)
        covered = {l for unit in units for l in unit.layers}
        units += [SingleKernel(model, l, g, self._reader(l)) for l, g in layers.items() if l not in covered]
        return sorted(units, key=lambda unit: unit.layers[0])

    def _reader(self, l: int):
        return lambda h_out, h_in: self.read(l, h_out, h_in)

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        if layer == step.num_layers:
            return self.top_target(step, target_above)
        return self.difference_target(step, layer, target_above, step.h[layer])

    def difference_target(self, step, layer: int, target_read, read) -> torch.Tensor:
        """``h_{l-1} + g_l(target_read) - g_l(read)`` for ``l = layer``: the two inverse
        evaluations as one batched call on ``[target_read; read]`` (each ``(B, ...)``), the sum
        in the first output's memory (``rulekit.targets.difference_target``); a pooled layer's
        inverse unpools both with the clean forward's indices (``step.post``). No grad."""
        assert self.inverses is not None  # set by bioscale_setup
        return difference_target(
            self.inverses[str(layer)], step.h[layer - 1], target_read, read, pool_context(step, layer)
        )

    @hookimpl
    def bioscale_update_inverse(self, step):
        """Inverse loss ``mean_b ||g_l(read(f_l(h̃_{l-1}))) - goal||²`` summed over layers; its
        gradients come in closed form (no autograd), then one Adam step. One implementation
        for every unit; the unit's kernel computes the products (``inverse_kernels.py``)."""
        if self.optimizer is None:
            return None
        losses = {}
        scale = 2.0 / step.batch_size
        with torch.no_grad(), self.noise.drawing(step):
            for unit in self.units:
                clean = unit.inputs(step)  # (B, ...) or, stacked, (G, B, n)
                noisy = self.noise.perturb(clean, self.inverse_sigma(unit.layers[0]), stacked=unit.stacked)
                read, ctx = unit.forward_read(noisy)  # ctx: the noisy evaluation's pooling indices (or None)
                reconstruction = unit.reconstruct(read, ctx)
                diff = reconstruction - (noisy if self.noise_preserving else clean)
                flat = diff.reshape(len(unit.layers), -1)
                errors = torch.linalg.vector_norm(flat, dim=1).square_().div_(flat.shape[1])
                losses.update(zip(unit.layers, errors.unbind()))
                unit.write_grads(read, ctx, reconstruction, diff.mul_(scale))  # into the flat gradient's views
        self.optimizer.step(step)  # reduced over data-parallel ranks, at the scheduled lr
        return losses

    @hookimpl
    def bioscale_inverse_error(self, step):
        if not self.inverses:
            return None
        errors = {}
        with torch.no_grad():
            for key, g in self.inverses.items():
                l = int(key)
                read, ctx = self.read(l, step.h[l], step.h[l - 1]), pool_context(step, l)
                errors[l] = ((g(read) if ctx is None else g(read, ctx)) - step.h[l - 1]).square().mean()
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
