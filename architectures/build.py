"""Networks from the ``model`` config section: spatial ``blocks``, then fully connected ``widths``,
then a linear output layer (ARCHITECTURE.md, "The network").

A block is a dict with ``type`` (``conv``, ``lc`` or ``residual``), ``channels``, ``kernel``,
``stride``, ``padding`` (None: ``kernel // 2``), ``bias``, ``norm`` (batch norm after the op),
``pool`` (``none``, ``max``, ``avg``, ``global``) with ``pool_kernel`` / ``pool_stride`` /
``pool_padding``, ``activation`` (None: the model's) and, for ``residual``, ``shortcut``
(``projection`` or ``pad``: what a block that changes shape adds; equal shapes add the identity).
A residual block is He et al.'s basic block: two ``kernel`` convolutions (the first with the
block's stride), each with batch norm when ``norm``, the skip added before the second activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .activations import make_activation
from .network import Layer, Network
from .ops import AffineOp, Conv2dOp, LinearOp
from .post import POOLS, BatchNorm, Pool, Shortcut

# the fields of the config's BlockConfig
BLOCK_KEYS = (
    "type",
    "channels",
    "kernel",
    "stride",
    "padding",
    "bias",
    "norm",
    "pool",
    "pool_kernel",
    "pool_stride",
    "pool_padding",
    "activation",
    "shortcut",
)
BLOCK_TYPES = ("conv", "lc", "residual")


def check_block(index: int, spec: dict) -> None:
    """Block ``index`` of ``blocks`` names only known keys and has ``type``, ``channels`` and ``kernel``;
    else a ValueError naming the block and its valid keys."""
    label = f"blocks[{index}]" + (f" ({spec['type']})" if "type" in spec else "")
    unknown = [k for k in spec if k not in BLOCK_KEYS]
    if unknown:
        raise ValueError(f"{label}: unknown key {unknown[0]!r}; valid keys of a block: {', '.join(BLOCK_KEYS)}")
    missing = [k for k in ("type", "channels", "kernel") if k not in spec]
    if missing:
        raise ValueError(
            f"{label}: missing {', '.join(missing)}; a block needs type ({', '.join(BLOCK_TYPES)}), channels and kernel"
        )
    if spec["type"] not in BLOCK_TYPES:
        raise ValueError(f"{label}: unknown block type {spec['type']!r}; valid: {', '.join(BLOCK_TYPES)}")
    pool = spec.get("pool") or "none"
    if pool != "none" and pool not in POOLS:
        raise ValueError(f"{label}: unknown pool {pool!r}; valid: none, {', '.join(POOLS)}")


class _Builder:
    """Appends layers, keeping the current output shape and layer number."""

    def __init__(self, in_shape: tuple, activation: str):
        self.layers: list[Layer] = []
        self.shape = tuple(in_shape)
        self.activation = activation

    @property
    def last(self) -> int:
        return len(self.layers)

    def add(self, op: AffineOp, spec: dict, source: int | None = None, **post) -> int:
        """A layer reading ``h_source`` (default: the last layer); returns its number."""
        norm = BatchNorm(op.out_shape[0]) if spec.get("norm") else None
        layer = Layer(op, make_activation(spec.get("activation") or self.activation), norm=norm, source=source, **post)
        self.layers.append(layer)
        self.shape = layer.out_shape
        return self.last


def _pool(spec: dict) -> Pool | None:
    kind = spec.get("pool") or "none"
    if kind == "none":
        return None
    return Pool(kind, spec.get("pool_kernel", 2), spec.get("pool_stride"), spec.get("pool_padding", 0))


def _conv(shape: tuple, spec: dict, stride: int | None = None, kernel: int | None = None, padding=None) -> Conv2dOp:
    k = spec["kernel"] if kernel is None else kernel
    return Conv2dOp(
        shape,
        spec["channels"],
        k,
        spec.get("stride", 1) if stride is None else stride,
        spec.get("padding") if padding is None else padding,
        bias=spec.get("bias", True),
    )


def _add_residual(b: _Builder, spec: dict) -> None:
    """He et al.'s basic block: conv (stride) → conv, the block input added before the last activation."""
    start, in_shape = b.last, b.shape
    b.add(_conv(in_shape, spec), spec)
    out_shape = _conv(b.shape, spec, stride=1).out_shape
    kind = spec.get("shortcut") or "projection"
    skip_from, shortcut = start, None  # identity
    if tuple(in_shape) != tuple(out_shape):
        if kind == "pad":
            shortcut = Shortcut("pad", in_shape, out_shape)
        elif kind == "projection":  # a layer of its own: 1x1 conv (the block's stride) + norm, no activation
            proj = {**spec, "activation": "identity", "pool": "none"}
            skip_from = b.add(_conv(in_shape, proj, kernel=1, padding=0), proj, source=start)
        else:
            raise ValueError(f"unknown shortcut {kind!r}; valid: projection, pad")
    conv1 = start + 1
    b.add(
        _conv(b.layers[conv1 - 1].out_shape, spec, stride=1),
        spec,
        source=conv1,
        pool=_pool(spec),
        skip_from=skip_from,
        shortcut=shortcut,
    )


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

    :param blocks: dicts as the module docstring says.
    :param generator: CPU generator for the initial weights (seeded by the caller).
    :param init: draw the initial weights (False for shape-only builds, e.g. on the meta device).
    :param weight_init: how to draw them: ``glorot`` (uniform) or ``orthogonal``; biases start at 0.
    """
    from .locally_connected import LocallyConnected2d

    b = _Builder(in_shape, activation)
    for index, spec in enumerate(blocks):
        check_block(index, spec)
        if spec["type"] == "residual":
            _add_residual(b, spec)
            continue
        if spec["type"] == "conv":
            op: AffineOp = _conv(b.shape, spec)
        else:
            op = LocallyConnected2d(
                b.shape[0], spec["channels"], spec["kernel"], spec.get("stride", 1), spec.get("padding"), b.shape[1:]
            )
        b.add(op, spec, pool=_pool(spec))
    for width in widths:
        b.add(LinearOp(b.shape, width), {})
    b.add(LinearOp(b.shape, num_classes), {"activation": "identity"})
    if init:
        for layer in b.layers:
            layer.op.reset_parameters(generator, weight_init)
    return Network(b.layers, in_shape, num_classes, name=name)
