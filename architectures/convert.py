"""A user's plain ``torch.nn.Module`` turned into a bioscale :class:`Network` that rules train.

``from_module(module, in_shape, num_classes)`` traces ``module.forward`` with ``torch.fx`` and
reads it as layers (ARCHITECTURE.md, "The network"): each weight module opens a layer, what
follows it fills the layer's post part in this order: batch norm, a residual addition, an
activation, pooling. Accepted (anything else is refused, naming the module or call):

- weights: ``nn.Linear``, ``nn.Conv2d`` (square kernel and stride, symmetric integer padding,
  no groups or dilation, zero padding mode);
- ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` (affine, tracking running statistics) right after a
  weight module;
- activations: ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.ELU`` (α = 1), ``nn.Identity`` and
  ``F.relu`` / ``torch.relu`` / ``torch.tanh`` / ``torch.sigmoid`` / ``F.elu``;
- pooling after the activation: ``nn.MaxPool2d`` / ``nn.AvgPool2d`` (square, ``ceil_mode`` off;
  average counts padding), ``nn.AdaptiveAvgPool2d(1)`` / ``x.mean((2, 3))`` (global average);
  max pooling may also come before a ReLU (they commute);
- ``nn.Flatten``, ``torch.flatten(x, 1)``, ``x.flatten(1)``, ``x.view(x.size(0), -1)``;
- residual additions ``a + b`` (or ``torch.add``) of a layer's normalised op output and a block
  input (identity) or a projection (a weight module with optional batch norm and no activation).

The converted net holds copies of the module's parameters and running statistics (the module is
left as it was); ``network.source_names`` maps each converted parameter or buffer to the module's
name for it. The conversion is checked: both give the same logits on a random batch, in training
and in evaluation mode, or the module is refused.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .activations import make_activation
from .network import Layer, Network
from .ops import Conv2dOp, LinearOp
from .post import BatchNorm, Pool

ACTIVATION_MODULES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ELU: "elu", nn.Identity: "identity"}
ACTIVATION_CALLS = {F.relu: "relu", torch.relu: "relu", torch.tanh: "tanh", torch.sigmoid: "sigmoid", F.elu: "elu"}
FLATTEN_METHODS = ("flatten", "view", "reshape")


class Partial:
    """A layer being read: its op and source, then what of its post part has been seen."""

    def __init__(self, op, source: int, names: dict):
        self.op, self.source, self.names = op, source, names
        self.norm: BatchNorm | None = None
        self.skip_from: int | None = None
        self.activation: str | None = None
        self.pool: Pool | None = None
        self.index: int | None = None  # its layer number once closed


class Reader:
    """Walks the traced graph; each value is a layer output (``int``, 0 the input) or a Partial."""

    def __init__(self, module: nn.Module, in_shape: tuple):
        self.module = module
        self.layers: list[Layer] = []
        self.names: dict[str, str] = {}
        self.shapes: dict[int, tuple] = {0: tuple(in_shape)}
        self.values: dict[Any, Any] = {}
        self.uses: dict[Any, int] = {}
        self.flattened: set[fx.Node] = set()

    def refuse(self, node: fx.Node, why: str):
        if node.op == "call_module":
            what = f"module {node.target!r} ({type(self.module.get_submodule(str(node.target))).__name__})"
        else:
            what = f"{node.op.replace('_', ' ')} {getattr(node.target, '__name__', node.target)!s} at {node.name!r}"
        raise ValueError(f"cannot convert {what}: {why}")

    def close(self, value) -> int:
        """The layer output ``value`` stands for: a Partial becomes a layer of its own."""
        if isinstance(value, int):
            return value
        p = value
        if p.index is not None:
            return p.index
        layer = Layer(
            p.op,
            make_activation(p.activation or "identity"),
            norm=p.norm,
            pool=p.pool,
            source=p.source,
            skip_from=p.skip_from,
        )
        self.layers.append(layer)
        l = p.index = len(self.layers)
        self.shapes[l] = layer.out_shape
        self.names.update({f"layers.{l - 1}.{k}": v for k, v in p.names.items()})
        return l

    def open_of(self, node: fx.Node, arg: Any) -> Partial:
        """The Partial that ``node`` continues; refused when it is a closed layer output."""
        value = self.values[arg]
        if isinstance(value, int) or self.uses[arg] > 1:
            self.refuse(node, "it must follow a weight module (nn.Linear / nn.Conv2d) directly")
        return value  # type: ignore[return-value]

    # -- the node kinds --------------------------------------------------------------------
    def weight(self, node: fx.Node, m: Any) -> None:
        k = self.close(self.values[node.args[0]])
        shape = self.shapes[k]
        if isinstance(m, nn.Linear):
            if len(shape) != 1 and node.args[0] not in self.flattened:
                self.refuse(node, f"its input {shape} must be flattened first (nn.Flatten)")
            if m.in_features != math.prod(shape):
                self.refuse(node, f"in_features {m.in_features}, but its input has {math.prod(shape)} values")
            op: LinearOp | Conv2dOp = LinearOp(shape, m.out_features, bias=m.bias is not None)
        else:
            op = self._conv(node, m, shape)
        with torch.no_grad():
            op.weight.copy_(m.weight.reshape(op.weight.shape))
            if m.bias is not None:
                op.bias.copy_(m.bias)
        names = {
            "op.weight": f"{node.target}.weight",
            **({"op.bias": f"{node.target}.bias"} if m.bias is not None else {}),
        }
        self.values[node] = Partial(op, k, names)

    def _conv(self, node: fx.Node, m: Any, shape: tuple) -> Conv2dOp:
        k, s, p = m.kernel_size, m.stride, m.padding
        if len(shape) != 3:
            self.refuse(node, f"a convolution needs (C, H, W) input, gets {shape}")
        if m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros" or isinstance(p, str):
            self.refuse(node, "groups, dilation, string padding and non-zero padding modes are not supported")
        if k[0] != k[1] or s[0] != s[1] or p[0] != p[1]:
            self.refuse(node, "kernel, stride and padding must be square")
        return Conv2dOp(shape, m.out_channels, k[0], s[0], p[0], bias=m.bias is not None)

    def norm(self, node: fx.Node, m: Any) -> None:
        p = self.open_of(node, node.args[0])
        if p.norm is not None or p.skip_from is not None or p.activation is not None or p.pool is not None:
            self.refuse(node, "batch norm must come right after a weight module")
        if not (m.affine and m.track_running_stats and m.momentum is not None) or m.num_features != p.op.out_shape[0]:
            self.refuse(
                node, "batch norm needs affine=True, track_running_stats=True, a momentum and matching channels"
            )
        p.norm = BatchNorm(m.num_features, eps=m.eps, momentum=m.momentum)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(p.norm, name).copy_(getattr(m, name))
                p.names[f"norm.{name}"] = f"{node.target}.{name}"
        self.values[node] = p

    def activation(self, node: fx.Node, kind: str) -> None:
        p = self.open_of(node, node.args[0])
        if p.activation is not None:
            self.refuse(node, "a second activation in one layer")
        if p.pool is not None and not (kind == "relu" and p.pool.kind == "max"):
            self.refuse(node, "an activation after pooling (only ReLU after max pooling commutes); put it first")
        p.activation = kind
        self.values[node] = p

    def pool(self, node: fx.Node, pool: Pool) -> None:
        p = self.open_of(node, node.args[0])
        if p.pool is not None or len(p.op.out_shape) != 3:
            self.refuse(node, "one pooling per layer, after a convolution")
        pool.out_shape(p.op.out_shape)
        p.pool = pool
        self.values[node] = p

    def add(self, node: fx.Node) -> None:
        a, b = (self.values[n] for n in node.args[:2])
        if isinstance(a, int) and isinstance(b, int) or self.uses[node.args[0]] > 1 and self.uses[node.args[1]] > 1:
            self.refuse(node, "a residual addition adds a weight module's output to a block input or projection")
        main, other = (a, b) if not isinstance(a, int) and (isinstance(b, int) or a.source >= b.source) else (b, a)
        assert isinstance(main, Partial)
        if main.skip_from is not None or main.activation is not None or main.pool is not None:
            self.refuse(node, "the addition must come before the layer's activation and pooling")
        k = self.close(other)
        if self.shapes[k] != tuple(main.op.out_shape):
            self.refuse(node, f"adds {self.shapes[k]} to {main.op.out_shape}; use a projection for other shapes")
        main.skip_from = k
        self.values[node] = main

    def flatten(self, node: fx.Node) -> None:
        self.values[node] = self.close(self.values[node.args[0]])
        self.flattened.add(node)

    # -- dispatch --------------------------------------------------------------------------
    def visit(self, node: fx.Node) -> None:
        self.uses[node] = len(node.users)
        if node.op == "placeholder":
            if 0 in self.values.values():
                self.refuse(node, "the module's forward must take one tensor")
            self.values[node] = 0
        elif node.op == "call_module":
            self.visit_module(node, self.module.get_submodule(str(node.target)))
        elif node.op == "call_function":
            self.visit_function(node)
        elif node.op == "call_method":
            self.visit_method(node)
        elif node.op != "output":
            self.refuse(node, "reads a tensor attribute of the module; only layers and their calls are converted")

    def visit_module(self, node: fx.Node, m: Any) -> None:
        if isinstance(m, nn.Linear | nn.Conv2d):
            self.weight(node, m)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            self.norm(node, m)
        elif type(m) in ACTIVATION_MODULES:
            if isinstance(m, nn.ELU) and m.alpha != 1.0:
                self.refuse(node, "ELU with alpha other than 1")
            self.activation(node, ACTIVATION_MODULES[type(m)])
        elif isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
            self.pool(node, self._pool(node, m))
        elif isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1)):
            self.pool(node, Pool("global"))
        elif isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
            self.flatten(node)
        else:
            self.refuse(node, f"{type(m).__name__} is not a layer bioscale converts (see the accepted forms)")

    def _pool(self, node: fx.Node, m: Any) -> Pool:
        k, s, p = (_square(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding))
        plain_avg = isinstance(m, nn.AvgPool2d) and m.count_include_pad and m.divisor_override is None
        plain_max = isinstance(m, nn.MaxPool2d) and _square(m.dilation) == 1 and not m.return_indices
        if k is None or s is None or p is None or m.ceil_mode or not (plain_avg or plain_max):
            self.refuse(node, "square kernel, stride and padding, no ceil_mode or dilation")
        return Pool("max" if isinstance(m, nn.MaxPool2d) else "avg", k, s, p)  # type: ignore[arg-type]

    def visit_function(self, node: fx.Node) -> None:
        fn = node.target
        if fn in ACTIVATION_CALLS and len(node.args) == 1 and set(node.kwargs) <= {"inplace"}:
            self.activation(node, ACTIVATION_CALLS[fn])
        elif fn in (operator.add, torch.add) and len(node.args) == 2 and not node.kwargs:
            self.add(node)
        elif fn is torch.flatten and node.args[1:] in ((1,), ()) and not node.kwargs:
            self.flatten(node)
        elif fn is getattr:
            self.values[node] = None  # x.shape: only ever read for a view's size
        else:
            self.refuse(node, "not an accepted call (activations, +, torch.flatten)")

    def visit_method(self, node: fx.Node) -> None:
        name = node.target
        if name in FLATTEN_METHODS and (name == "flatten" and node.args[1:] == (1,) or name != "flatten"):
            self.flatten(node)
        elif name == "size":
            self.values[node] = None
        elif name == "mean" and _global_dims(node):
            self.pool(node, Pool("global"))
        else:
            self.refuse(node, f"the method {name!r} is not converted (flatten, view, reshape, size, mean((2, 3)))")

    def output(self, node: fx.Node, num_classes: int) -> None:
        value: Any = self.values.get(node.args[0])
        if not isinstance(value, Partial) or not isinstance(value.op, LinearOp) or value.activation or value.pool:
            self.refuse(node, "the output must be an nn.Linear's logits (no activation, softmax or pooling after it)")
        if value.op.out_shape != (num_classes,) or value.norm is not None or value.skip_from is not None:
            self.refuse(node, f"the output layer must give {num_classes} logits with no batch norm or skip")
        self.close(value)


def _square(v) -> int | None:
    if isinstance(v, int):
        return v
    return v[0] if len(v) == 2 and v[0] == v[1] else None


def _global_dims(node: fx.Node) -> bool:
    dims: Any = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return tuple(dims or ()) in ((2, 3), (-2, -1), [2, 3]) and not node.kwargs.get("keepdim", False)


def from_module(module: nn.Module, in_shape: tuple, num_classes: int, name: str = "custom") -> Network:
    """``module`` (a plain ``nn.Module`` taking ``(B, *in_shape)``, giving ``(B, num_classes)``
    logits) as a :class:`Network` with copies of its parameters; a ValueError names the first
    part that is not an accepted form, or says where the converted net's logits differ."""
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception as exc:
        raise ValueError(f"cannot trace {type(module).__name__}.forward with torch.fx: {exc}") from exc
    reader = Reader(module, in_shape)
    for node in graph.nodes:
        if node.op == "output":
            reader.output(node, num_classes)
        else:
            reader.visit(node)
    net = Network(reader.layers, in_shape, num_classes, name=name)
    net.source_names = reader.names
    _check_same_logits(module, net, in_shape)
    return net


def _check_same_logits(module: nn.Module, net: Network, in_shape: tuple) -> None:
    """Both on a seeded random batch of 4, in training and evaluation mode (copies: nothing changes)."""
    import copy

    device = next(module.parameters()).device
    x = torch.randn(4, *in_shape, generator=torch.Generator().manual_seed(0)).to(device)
    for training in (True, False):
        ref, mine = copy.deepcopy(module).train(training), copy.deepcopy(net).to(device).train(training)
        with torch.no_grad():
            expected, got = ref(x), mine(x)
        if expected.shape != got.shape or not torch.allclose(expected, got, rtol=1e-4, atol=1e-5):
            mode = "training" if training else "evaluation"
            raise ValueError(
                f"the converted net's logits differ from the module's in {mode} mode; is every layer in forward?"
            )
