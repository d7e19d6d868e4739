"""Layer stacks whose layers keep local computation graphs.

``Layer``: ``a = op(x)``, ``h = σ(a)``. ``Network``: layers ``1..L``; ``forward(x)`` gives the
logits with an ordinary end-to-end graph (evaluation, BP references), and
``forward_layers(x)`` gives every layer's pre-activation and output with each layer's
input detached, which is what the trainer hands to learning rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from .activations import Activation, make_activation
from .ops import AffineOp


class Layer(nn.Module):
    """One layer: an affine op followed by an element-wise activation."""

    def __init__(self, op: AffineOp, activation: Activation):
        super().__init__()
        self.op = op
        self.activation = activation

    @property
    def in_shape(self) -> tuple:
        return self.op.in_shape

    @property
    def out_shape(self) -> tuple:
        return self.op.out_shape

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``(B, *in_shape)`` → ``(a, h)``, each ``(B, *out_shape)``; grad mode as called."""
        a = self.op(x)
        return a, self.activation(a)


class Network(nn.Module):
    """A stack of :class:`Layer`; the last one's activation is the identity (logits)."""

    ops: list[AffineOp]  # set through __dict__ in __init__ (plain lists, not submodules)
    activations: list[Activation]

    def __init__(self, layers: list[Layer], in_shape: tuple, num_classes: int, name: str = "custom"):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        # plain lists for the hot path (nn.Module attribute lookup is slow); same objects
        self.__dict__["ops"] = [layer.op for layer in layers]
        self.__dict__["activations"] = [layer.activation for layer in layers]
        self.in_shape = tuple(in_shape)
        self.num_classes = num_classes
        self.name = name

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer(self, l: int) -> Layer:
        """Layer ``l`` with the paper's 1-based numbering."""
        return cast(Layer, self.layers[l - 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, *in_shape)`` → logits ``(B, num_classes)``; end-to-end graph if grad is on."""
        h = x
        for layer in self.layers:
            h = layer(h)[1]
        return h

    def forward_layers(self, x: torch.Tensor) -> tuple[list, list]:
        """Every layer's pre-activation and output (the trainer calls it under no_grad).

        :return: ``(a, h)``: lists indexed by layer number (``a[0]`` is None, ``h[0] = x``),
            ``a[l]``, ``h[l]``: ``(B, *out_shape of layer l)``.
        """
        a_list, h_list = [None], [x]
        h = x
        for op, act in zip(self.ops, self.activations):
            a = op(h)
            h = act(a)
            a_list.append(a)
            h_list.append(h)
        return a_list, h_list


BLOCK_KEYS = ("type", "channels", "kernel", "stride", "padding")  # the fields of the config's BlockConfig


def check_block(index: int, spec: dict) -> None:
    """Block ``index`` of ``blocks`` names only known keys and has ``type``, ``channels`` and ``kernel``;
    else a ValueError naming the block and its valid keys."""
    label = f"blocks[{index}]" + (f" ({spec['type']})" if "type" in spec else "")
    unknown = [k for k in spec if k not in BLOCK_KEYS]
    if unknown:
        raise ValueError(f"{label}: unknown key {unknown[0]!r}; valid keys of a block: {', '.join(BLOCK_KEYS)}")
    missing = [k for k in ("type", "channels", "kernel") if k not in spec]
    if missing:
        raise ValueError(f"{label}: missing {', '.join(missing)}; a block needs type (conv or lc), channels and kernel")


def build_network(
    in_shape: tuple,
    num_classes: int,
    blocks: Sequence[dict] = (),
    widths: Sequence[int] = (),
    activation: str = "tanh",
    generator: torch.Generator | None = None,
    name: str = "custom",
    init: bool = True,
    weight_init: str = "glorot",
) -> Network:
    """Build ``blocks`` (spatial layers) then ``widths`` (fully connected) then a linear output.

    :param blocks: dicts with ``type`` (``conv`` or ``lc``), ``channels``, ``kernel``,
        ``stride`` and optional ``padding`` (default: kernel // 2).
    :param generator: CPU generator for Glorot initialisation (seeded by the caller).
    :param init: draw the initial weights (False for shape-only builds, e.g. on the meta device).
    :param weight_init: how to draw them: ``glorot`` (uniform) or ``orthogonal``; biases start at 0.
    """
    from .ops import Conv2dOp, LinearOp

    layers: list[Layer] = []
    shape = tuple(in_shape)
    op: AffineOp
    for index, spec in enumerate(blocks):
        check_block(index, spec)
        kind = spec["type"]
        if kind == "conv":
            op = Conv2dOp(shape, spec["channels"], spec["kernel"], spec.get("stride", 1), spec.get("padding"))
        elif kind == "lc":
            from .locally_connected import LocallyConnected2d

            op = LocallyConnected2d(
                shape[0], spec["channels"], spec["kernel"], spec.get("stride", 1), spec.get("padding"), shape[1:]
            )
        else:
            raise ValueError(f"unknown block type {kind!r}; valid: conv, lc")
        layers.append(Layer(op, make_activation(activation)))
        shape = op.out_shape
    for width in widths:
        op = LinearOp(shape, width)
        layers.append(Layer(op, make_activation(activation)))
        shape = op.out_shape
    layers.append(Layer(LinearOp(shape, num_classes), make_activation("identity")))
    if init:
        for layer in layers:
            layer.op.reset_parameters(generator, weight_init)
    return Network(layers, in_shape, num_classes, name=name)
