"""Layer lists whose layers keep local computation graphs.

``Layer``: ``a = op(h_s)``, then the post part: optional batch norm, optional skip addition, the
element-wise activation, optional pooling (ARCHITECTURE.md, "The network"). ``Network``: layers
``1..L`` in topological order; ``forward(x)`` gives the logits with an ordinary end-to-end graph
(evaluation, BP references), and ``forward_train(x)`` gives every layer's op output and output
(no graph) plus what each layer's post backward needs, which is what the trainer hands to rules.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from .activations import Activation
from .ops import AffineOp
from .post import BatchNorm, BatchSync, Pool, Shortcut


class Layer(nn.Module):
    """One layer: an affine op, then optional batch norm, optional skip, an element-wise
    activation and optional pooling. ``source``: the layer whose output the op reads (None: the
    one below); ``skip_from`` / ``shortcut``: the layer whose output is added before the
    activation, and the fixed map it is added through."""

    def __init__(
        self,
        op: AffineOp,
        activation: Activation,
        norm: BatchNorm | None = None,
        pool: Pool | None = None,
        source: int | None = None,
        skip_from: int | None = None,
        shortcut: Shortcut | None = None,
    ):
        super().__init__()
        self.op = op
        self.activation = activation
        self.norm = norm
        self.pool = pool
        self.source = source
        self.skip_from = skip_from
        self.shortcut = shortcut  # None: a skip, where one arrives, adds as it is (identity)
        self.plain = norm is None and pool is None and skip_from is None

    def skip_term(self, skip: torch.Tensor) -> torch.Tensor:
        """What the skip adds before the activation: ``S h_skip``, ``(B, *op.out_shape)``."""
        return skip if self.shortcut is None else self.shortcut(skip)

    def skip_transpose(self, grad_z: torch.Tensor) -> torch.Tensor:
        """``Sᵀ δz``: the signal the skip carries back to its source, ``(B, *source's out_shape)``."""
        return grad_z if self.shortcut is None else self.shortcut.transpose(grad_z)

    @property
    def in_shape(self) -> tuple:
        return self.op.in_shape

    @property
    def out_shape(self) -> tuple:
        return self.op.out_shape if self.pool is None else self.pool.out_shape(self.op.out_shape)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``(B, *in_shape)`` → ``(a, h)``: ``(B, *op.out_shape)``, ``(B, *out_shape)``;
        differentiable (batch norm as its mode says, running statistics untouched)."""
        a = self.op(x)
        if self.plain:
            return a, self.activation(a)
        z = a if self.norm is None else self.norm(a)
        if skip is not None:
            z = z + self.skip_term(skip)
        h = self.activation(z)
        return a, (h if self.pool is None else self.pool(h))

    def train_forward(self, x, skip, sync: BatchSync | None, update: bool, keep_a: bool = True) -> tuple:
        """``(a, h, saved)`` under no_grad: ``saved`` is what ``post_backward`` needs (None for a
        plain layer): ``(u, pool indices, batch-norm x̂ and 1/σ)``, ``u`` the activation's output.
        ``keep_a`` False: ``a`` is None unless batch norm keeps it, and is let go before pooling."""
        a = self.op(x)
        if self.plain:
            return a, self.activation(a), None
        z, normed = (a, None) if self.norm is None else self.norm.train_forward(a, sync, update)
        if skip is not None:
            z = z + self.skip_term(skip)
        if not keep_a and self.norm is None:
            a = None
        u = self.activation(z)
        del z  # the op's output is not held through pooling (autograd holds u alone)
        h, indices = (u, None) if self.pool is None else self.pool.train_forward(u)
        return a, h, (u, indices, normed)

    def post_backward(self, h, grad_h, saved, sync: BatchSync | None = None) -> tuple:
        """``(δa, δz)`` from ``δh`` ``(B, *out_shape)``: through pooling, ``σ'`` and batch norm;
        ``δz`` is the signal at the skip's addition. No grad."""
        if saved is None:
            grad_a = self.activation.backward(h, grad_h)
            return grad_a, grad_a
        u, indices, normed = saved
        if self.pool is None:
            grad_z = self.activation.backward(u, grad_h)
        else:  # pooling's backward is a fresh tensor: σ' is applied in place, as autograd's peak has it
            grad_z = self.activation.backward_(u, self.pool.backward(grad_h, u, indices))
        grad_a = grad_z if self.norm is None else self.norm.backward(grad_z, normed, sync)
        return grad_a, grad_z


class Network(nn.Module):
    """Layers in topological order; the last one's activation is the identity (logits)."""

    ops: list[AffineOp]  # set through __dict__ in __init__ (plain lists, not submodules)
    activations: list[Activation]

    def __init__(self, layers: list[Layer], in_shape: tuple, num_classes: int, name: str = "custom"):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        # plain lists for the hot path (nn.Module attribute lookup is slow); same objects
        self.__dict__["ops"] = [layer.op for layer in layers]
        self.__dict__["activations"] = [layer.activation for layer in layers]
        self.sources = [layer.source if layer.source is not None else l for l, layer in enumerate(layers)]
        self.skips = [layer.skip_from for layer in layers]  # by layer index 1..L at position l - 1
        self.plain = all(layer.plain for layer in layers) and all(s == l for l, s in enumerate(self.sources))
        self.in_shape = tuple(in_shape)
        self.num_classes = num_classes
        self.name = name
        self.source_names: dict[str, str] = {}  # converted from a torch module: our name -> the module's

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer(self, l: int) -> Layer:
        """Layer ``l`` with the paper's 1-based numbering."""
        return cast(Layer, self.layers[l - 1])

    def source(self, l: int) -> int:
        """The layer whose output layer ``l``'s op reads (``l - 1`` in a chain; 0 is the input)."""
        return self.sources[l - 1]

    def consumers(self, k: int) -> list[int]:
        """The layers whose op reads ``h_k`` (``[k + 1]`` in a chain), in order."""
        return [l for l in range(1, self.num_layers + 1) if self.sources[l - 1] == k]

    def structures(self) -> dict[str, list[int]]:
        """The layers with each structure beyond a plain chain: ``pooling``, ``batchnorm``,
        ``skip`` (a skip addition, or an op that reads another layer than the one below)."""
        found: dict[str, list[int]] = {"pooling": [], "batchnorm": [], "skip": []}
        for l in range(1, self.num_layers + 1):
            layer = self.layer(l)
            if layer.pool is not None:
                found["pooling"].append(l)
            if layer.norm is not None:
                found["batchnorm"].append(l)
            if layer.skip_from is not None or self.sources[l - 1] != l - 1:
                found["skip"].append(l)
        return found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, *in_shape)`` → logits ``(B, num_classes)``; end-to-end graph if grad is on."""
        if self.plain:
            h = x
            for layer in self.layers:
                h = layer(h)[1]
            return h
        hs = [x]
        for l, layer in enumerate(self.layers, start=1):
            skip = self.skips[l - 1]
            hs.append(layer(hs[self.sources[l - 1]], None if skip is None else hs[skip])[1])
        return hs[-1]

    def forward_layers(self, x: torch.Tensor) -> tuple[list, list]:
        """Every layer's op output and output (the trainer calls it under no_grad; batch norm
        uses the batch's statistics and leaves the running ones).

        :return: ``(a, h)``: lists indexed by layer number (``a[0]`` is None, ``h[0] = x``),
            ``a[l]``: ``(B, *op.out_shape)``, ``h[l]``: ``(B, *out_shape of layer l)``.
        """
        a, h, _ = self.forward_train(x, keep_a=True)
        return a, h

    def forward_train(
        self, x: torch.Tensor, sync: BatchSync | None = None, update: bool = False, keep_a: bool = False
    ) -> tuple:
        """``(a, h, saved)``, each a list by layer number; ``saved[l]``: what layer ``l``'s
        ``post_backward`` needs (None for plain layers). ``sync``: data-parallel batch norm;
        ``update``: move batch norm's running statistics (the trainer's steps only). No grad.
        ``keep_a``: keep every ``a_l``; else ``a[l]`` is None where no backward needs it (every
        layer without batch norm: ``σ'`` is formed from ``h_l`` or ``u_l``), so a step holds what an
        autograd step saves (``step.a`` recomputes such an ``a_l`` when a rule reads it)."""
        a_list, h_list, saved = [None], [x], [None]
        if self.plain:
            h = x
            for op, act in zip(self.ops, self.activations):
                a = op(h)
                h = act(a)
                a_list.append(a if keep_a else None)
                h_list.append(h)
                del a  # not held through the next layer's op
            return a_list, h_list, saved * len(h_list)
        for l, layer in enumerate(self.layers, start=1):
            skip = self.skips[l - 1]
            a, h, kept = cast(Layer, layer).train_forward(
                h_list[self.sources[l - 1]], None if skip is None else h_list[skip], sync, update, keep_a
            )
            a_list.append(a)
            h_list.append(h)
            saved.append(kept)
        return a_list, h_list, saved
