"""Train a run of equal-shaped dense inverses ``g_l`` as one batched call.

A TP rule trains each inverse on ``||g_l(f_l(h_{l-1} + ε)) - goal||²``. For consecutive
fully connected layers with equal weight shapes and equal activations these are ``G``
identical computations on different tensors; an :class:`InverseGroup` stacks them and runs
each matmul as one ``bmm`` and each element-wise op once on ``(G, B, n)`` tensors (big
enough to use every thread, where ``(B, n)`` often is not).

The inverses' parameters stay views of the rule's one flat parameter (and their gradients
views of its flat gradient); the group reads and writes them through *strided* views of
those flat tensors, so the checkpointed layout and the Adam state are exactly those of the
per-layer path. Shapes: ``G`` layers, batch ``B``, layer input width ``n_in``, output
width ``n_out``; inverse weight ``V_l`` is ``(n_out, n_in)`` (like ``W_l``). No autograd.
"""

from __future__ import annotations

import torch

from bioscale.architectures.ops import LinearOp

from .inverse import LayerInverse


def stacked_view(tensors: list) -> torch.Tensor | None:
    """``(G, *shape)`` view of ``G`` equal-shaped tensors that sit at equally spaced offsets
    of one storage (e.g. parameters of a flattened module list); None if they do not."""
    first = tensors[0]
    if any(t.shape != first.shape or t.stride() != first.stride() or t.untyped_storage().data_ptr()
           != first.untyped_storage().data_ptr() for t in tensors):
        return None
    offsets = [t.storage_offset() for t in tensors]
    step = offsets[1] - offsets[0] if len(offsets) > 1 else first.numel()
    if step <= 0 or any(b - a != step for a, b in zip(offsets, offsets[1:])):
        return None
    return first.as_strided((len(tensors), *first.shape), (step, *first.stride()), offsets[0])


class StackedReader:
    """Reads the ``name`` parameters of ``modules`` as one ``(G, *shape)`` tensor per call: a
    strided view where they sit at equally spaced offsets of one storage (the trainer flattens
    the model's parameters), else a copy. The view is kept while the parameters stay where
    they are (checked by data pointer, shape and stride each call, a few microseconds;
    ``stacked_view``'s full check costs tens); the kept view holds the storage, so a pointer
    cannot be reused by another tensor while it is kept."""

    def __init__(self, modules: list, name: str):
        self.modules, self.name = list(modules), name
        self.key, self.view = None, None

    def __call__(self) -> torch.Tensor:
        tensors = [getattr(m, self.name) for m in self.modules]
        key = [(t.data_ptr(), t.shape, t.stride()) for t in tensors]
        if key != self.key:
            self.view = stacked_view(tensors)
            if self.view is None:
                self.key = None
                return torch.stack(tensors)
            self.key = key
        return self.view


def groupable(inverse) -> bool:
    """Whether ``inverse`` can join a group: a plain ``LayerInverse`` of a fully connected op
    whose input is a flat vector (so ``h_{l-1}`` is ``(B, n_in)``)."""
    return type(inverse) is LayerInverse and type(inverse.op) is LinearOp and len(inverse.op.in_shape) == 1


def same_kind(model, a: tuple, b: tuple) -> bool:
    """Layers ``a = (l, g_l)`` and ``b`` compute the same function of different weights."""
    (la, ga), (lb, gb) = a, b
    act_a, act_b = model.activations[la - 1], model.activations[lb - 1]
    return (ga.weight.shape == gb.weight.shape and ga.bias.shape == gb.bias.shape
            and type(act_a) is type(act_b) and act_a.name == act_b.name
            and type(ga.activation) is type(gb.activation) and ga.activation.name == gb.activation.name)


class InverseGroup:
    """Inverses ``g_l`` for ``layers`` (consecutive, equal kind) trained in one batched call."""

    def __init__(self, model, layers: list, inverses: list):
        self.model = model
        self.layers = list(layers)
        self.inverses = list(inverses)
        self.forward_activation = model.activations[self.layers[0] - 1]
        self.inverse_activation = self.inverses[0].activation
        self.weight = stacked_view([g.weight.data for g in self.inverses])
        self.bias = stacked_view([g.bias.data for g in self.inverses])
        self.weight_grad = stacked_view([g.weight.grad for g in self.inverses])
        self.bias_grad = stacked_view([g.bias.grad for g in self.inverses])
        if any(v is None for v in (self.weight, self.bias, self.weight_grad, self.bias_grad)):
            raise ValueError(f"inverses of layers {self.layers} are not equally spaced views of one flat tensor")
        self.bias_row = self.bias.unsqueeze(1)  # (G, 1, n_in), broadcast over the batch
        ops = [model.ops[l - 1] for l in self.layers]
        self.forward_weight, self.forward_bias = StackedReader(ops, "weight"), StackedReader(ops, "bias")

    @classmethod
    def build(cls, model, inverses: dict) -> list:
        """Split ``inverses`` (layer → module, increasing layers) into groups of two or more
        consecutive groupable layers of equal kind and the layers left for the per-layer path.
        Returns the units in layer order, each an ``InverseGroup`` or a layer number."""
        runs: list[list] = []
        for l, g in inverses.items():
            entry = (l, g)
            last = runs[-1][-1] if runs else None
            if (groupable(g) and last is not None and last[0] == l - 1 and groupable(last[1])
                    and same_kind(model, last, entry)):
                runs[-1].append(entry)
            else:
                runs.append([entry])
        units = []
        for run in runs:
            group = None
            if len(run) > 1:
                try:
                    group = cls(model, [l for l, _ in run], [g for _, g in run])
                except ValueError:
                    group = None
            units.extend([group] if group is not None else [l for l, _ in run])
        return units

    def update(self, step, noise, sigma: float, noise_preserving: bool, scale: float) -> dict:
        """Perturb the group's inputs (``noise.perturb``: the step's shared ``(B, n_in)`` draw for
        every layer, or one ``(G, B, n_in)`` draw, layers in order), write the
        gradient of ``Σ_b ||g_l(f_l(h̃_{l-1})) - goal||² · scale/2`` (``scale = 2/B``: the
        batch-mean inverse loss) into the inverses' gradient views, and return layer → mean
        squared reconstruction error (0-dim). ``goal`` is ``h̃`` if ``noise_preserving`` (DTP)
        else the clean ``h_{l-1}``. Call under ``no_grad``."""
        weight_t = self.forward_weight().transpose(1, 2)  # (G, n_in, n_out)
        bias = self.forward_bias().unsqueeze(1)  # (G, 1, n_out)
        clean = torch.stack([step.h[l - 1] for l in self.layers])  # (G, B, n_in): groupable layers read flat inputs
        noisy = noise.perturb(clean, sigma, stacked=True)
        read = self.forward_activation.forward_(torch.baddbmm(bias, noisy, weight_t))  # f_l(h̃): (G, B, n_out)
        reconstruction = self.inverse_activation.forward_(torch.baddbmm(self.bias_row, read, self.weight))
        diff = reconstruction - (noisy if noise_preserving else clean)  # (G, B, n_in)
        flat = diff.reshape(len(self.layers), -1)
        errors = torch.linalg.vector_norm(flat, dim=1).square_().div_(flat.shape[1])  # no (G, B, n_in) temporary
        grad_pre = self.inverse_activation.backward(reconstruction, diff.mul_(scale))
        torch.bmm(read.transpose(1, 2), grad_pre, out=self.weight_grad)  # Σ_b read_bᵀ grad_b: (G, n_out, n_in)
        torch.sum(grad_pre, 1, out=self.bias_grad)
        return dict(zip(self.layers, errors.unbind()))
