"""The products a TP inverse update needs, for a unit of one or more inverses ``g_l``.

``TargetPropagation.bioscale_update_inverse`` trains every inverse with one piece of code
(noise, reconstruction, loss, gradient scale); a unit's *kernel* supplies its four
products: the unit's clean inputs, the forward layer and read ``read_l(f_l(h̃))`` with the
pooling context of that noisy evaluation (``forward_read`` returns ``(read, ctx)``), the
inverse ``g_l(read, ctx)``, and the closed-form weight and bias gradients written into the
inverses' flat gradient. Two kernels, one maths:

* :class:`SingleKernel`: one layer of any kind, through the op's own methods, with its
  pooling (``f_l(h̃) = pool(σ(op(h̃)))``; ``ctx`` its max-pooling indices, None without
  them). Tensors ``(B, ...)``.
* :class:`StackedKernel`: ``G`` consecutive fully connected layers with equal weight shapes
  and activations and a plain read, as one ``bmm`` per product on strided views of the flat
  tensors (the fast path: element-wise ops on ``(G, B, n)`` use every thread where ``(B, n)``
  often does not; ``benchmarks/bench_tp_overhead.py``); layers without pooling only, ``ctx``
  always None. Tensors ``(G, B, n)``.

Shapes: batch ``B``, layer input width ``n_in``, output width ``n_out``; an inverse weight
``V_l`` is ``(n_out, n_in)`` like ``W_l``. No autograd; forward weights are only read.
"""

from __future__ import annotations

import torch
from bioscale.architectures.ops import LinearOp, product_into, sum_into

from .inverse import LayerInverse


def stacked_view(tensors: list) -> torch.Tensor | None:
    """``(G, *shape)`` view of ``G`` equal-shaped tensors that sit at equally spaced offsets
    of one storage (e.g. parameters of a flattened module list); None if they do not."""
    first = tensors[0]
    if any(
        t.shape != first.shape
        or t.stride() != first.stride()
        or t.untyped_storage().data_ptr() != first.untyped_storage().data_ptr()
        for t in tensors
    ):
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
        self.key: list | None = None
        self.view: torch.Tensor | None = None

    def __call__(self) -> torch.Tensor:
        tensors = [getattr(m, self.name) for m in self.modules]
        key = [(t.data_ptr(), t.shape, t.stride()) for t in tensors]
        if key != self.key:
            self.view = view = stacked_view(tensors)
            if view is None:
                self.key = None
                return torch.stack(tensors)
            self.key = key
            return view
        assert self.view is not None  # kept with self.key, which matched
        return self.view


def groupable(inverse) -> bool:
    """Whether ``inverse`` can join a group: a plain ``LayerInverse`` of a fully connected op
    without pooling whose input is a flat vector (so ``h_{l-1}`` is ``(B, n_in)``)."""
    return (
        type(inverse) is LayerInverse
        and type(inverse.op) is LinearOp
        and inverse.pool is None
        and len(inverse.op.in_shape) == 1
    )


def same_kind(model, a: tuple, b: tuple) -> bool:
    """Layers ``a = (l, g_l)`` and ``b`` compute the same function of different weights."""
    (la, ga), (lb, gb) = a, b
    act_a, act_b = model.activations[la - 1], model.activations[lb - 1]
    return (
        ga.weight.shape == gb.weight.shape
        and ga.bias.shape == gb.bias.shape
        and type(act_a) is type(act_b)
        and act_a.name == act_b.name
        and type(ga.activation) is type(gb.activation)
        and ga.activation.name == gb.activation.name
    )


class SingleKernel:
    """One inverse ``g_l`` (any op kind); ``read(h_out, h_in)`` is what ``g_l`` reads of the
    layer's output. ``stacked = False``: tensors are ``(B, ...)``."""

    stacked = False

    def __init__(self, model, l: int, inverse, read):
        self.layers = [l]
        self.op, self.activation = model.ops[l - 1], model.activations[l - 1]
        self.pool = model.layer(l).pool  # None: no pooling (and no context)
        self.inverse, self.read = inverse, read
        self.grads = {"weight": inverse.weight.grad, "bias": inverse.bias.grad}

    def inputs(self, step) -> torch.Tensor:
        return step.h[self.layers[0] - 1]

    def forward_read(self, noisy: torch.Tensor) -> tuple:
        """``(read(f_l(noisy)), ctx)``: ``f_l`` with the layer's pooling, ``ctx`` the pooling
        indices of this noisy evaluation (None without max pooling)."""
        out = self.activation.forward_(self.op(noisy))
        if self.pool is None:
            return self.read(out, noisy), None
        out, ctx = self.pool.train_forward(out)
        return self.read(out, noisy), ctx

    def reconstruct(self, read: torch.Tensor, ctx) -> torch.Tensor:
        return self.inverse(read) if ctx is None else self.inverse(read, ctx)

    def write_grads(self, read, ctx, reconstruction, grad_reconstruction) -> None:
        """Gradient of ``<g(read, ctx), grad_reconstruction>`` into the inverse's ``.grad`` views."""
        if ctx is None:
            self.inverse.write_param_grads(read, reconstruction, grad_reconstruction, self.grads)
        else:
            self.inverse.write_param_grads(read, reconstruction, grad_reconstruction, self.grads, ctx)


class StackedKernel:
    """Inverses ``g_l`` for ``layers`` (consecutive, equal kind) as one batched call;
    ``stacked = True``: tensors are ``(G, B, n)``."""

    stacked = True

    def __init__(self, model, layers: list, inverses: list):
        self.model = model
        self.layers = list(layers)
        self.inverses = list(inverses)
        self.forward_activation = model.activations[self.layers[0] - 1]
        self.inverse_activation = self.inverses[0].activation
        weight = stacked_view([g.weight.data for g in self.inverses])
        bias = stacked_view([g.bias.data for g in self.inverses])
        weight_grad = stacked_view([g.weight.grad for g in self.inverses])
        bias_grad = stacked_view([g.bias.grad for g in self.inverses])
        if weight is None or bias is None or weight_grad is None or bias_grad is None:
            raise ValueError(f"inverses of layers {self.layers} are not equally spaced views of one flat tensor")
        self.weight, self.bias, self.weight_grad, self.bias_grad = weight, bias, weight_grad, bias_grad
        self.bias_row = self.bias.unsqueeze(1)  # (G, 1, n_in), broadcast over the batch
        ops = [model.ops[l - 1] for l in self.layers]
        self.forward_weight, self.forward_bias = StackedReader(ops, "weight"), StackedReader(ops, "bias")

    @classmethod
    def runs(cls, model, inverses: dict) -> list:
        """Split ``inverses`` (layer → module, increasing layers) into stacked kernels of two or
        more consecutive groupable layers of equal kind, and single layers. Returns, in layer
        order, each a ``StackedKernel`` or a layer number."""
        runs: list[list] = []
        for l, g in inverses.items():
            entry = (l, g)
            last = runs[-1][-1] if runs else None
            if (
                groupable(g)
                and last is not None
                and last[0] == l - 1
                and groupable(last[1])
                and same_kind(model, last, entry)
            ):
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

    def inputs(self, step) -> torch.Tensor:
        return torch.stack([step.h[l - 1] for l in self.layers])  # (G, B, n_in)

    def forward_read(self, noisy: torch.Tensor) -> tuple:
        """``(f(noisy), None)``: ``(G, B, n_out)``; no pooling, so no context."""
        weight_t = self.forward_weight().transpose(1, 2)  # (G, n_in, n_out)
        bias = self.forward_bias().unsqueeze(1)  # (G, 1, n_out)
        return self.forward_activation.forward_(torch.baddbmm(bias, noisy, weight_t)), None  # (G, B, n_out)

    def reconstruct(self, read: torch.Tensor, ctx=None) -> torch.Tensor:
        return self.inverse_activation.forward_(torch.baddbmm(self.bias_row, read, self.weight))  # (G, B, n_in)

    def write_grads(self, read, ctx, reconstruction, grad_reconstruction) -> None:
        grad_pre = self.inverse_activation.backward(reconstruction, grad_reconstruction)
        product_into(
            torch.bmm, read.transpose(1, 2), grad_pre, self.weight_grad
        )  # Σ_b read_bᵀ grad_b: (G, n_out, n_in)
        sum_into(grad_pre, 1, self.bias_grad)
