"""Element-wise activations with a derivative computed from the output.

``backward(h, grad_h)`` returns ``grad_h * σ'(a)`` using only the output ``h = σ(a)``, with
the same ATen kernels autograd uses, so that rules reproduce autograd's numbers exactly.
All tensors share one shape; no grad mode requirement.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch
from torch import nn


class Activation(nn.Module):
    name = "identity"

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a

    def forward_(self, a: torch.Tensor) -> torch.Tensor:
        """``forward(a)``, free to overwrite ``a`` (a temporary pre-activation nobody else
        reads) when no autograd graph is being built; the same values as ``forward``."""
        return self.forward(a)

    def backward(self, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        return grad_h

    def backward_(self, h: torch.Tensor, grad_h: torch.Tensor) -> torch.Tensor:
        """:meth:`backward` written over ``grad_h`` (the same values; for a signal no one else holds)."""
        return self.backward(h, grad_h)

    def extra_repr(self) -> str:
        return self.name


_ONE = torch.tensor(1.0)  # cpu: 0-dim, CUDA kernels take it as a scalar (a Python scalar costs a conversion per call)


def cpuinfo_field(key: str) -> str | None:
    """The first ``key : value`` line's value in ``/proc/cpuinfo`` (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_vendor() -> str:
    """The CPU vendor string (``GenuineIntel``, ``AuthenticAMD``, ...), or ``""`` if unknown."""
    vendor = cpuinfo_field("vendor_id")
    if vendor is not None:
        return vendor
    return "GenuineIntel" if "GenuineIntel" in platform.processor() else ""


def choose_cpu_tanh(vendor: str, mkl: bool) -> str:
    """``"torch"`` (``torch.tanh``) or ``"sigmoid"`` (``2 sigmoid(2a) - 1``) for the CPU.

    In MKL builds torch's CPU tanh is MKL's vector tanh, fast on Intel CPUs only; elsewhere the
    sigmoid form (ATen's own vectorised sigmoid) saves 5-13 % of a step
    (``benchmarks/bench_tanh.py``, results/speed/)."""
    return "torch" if mkl and vendor == "GenuineIntel" else "sigmoid"


CPU_TANH = choose_cpu_tanh(cpu_vendor(), torch.backends.mkl.is_available())


class Tanh(Activation):
    """``tanh``. On the CPU the faster of two forms for this machine (:data:`CPU_TANH`, fixed
    per machine, so a run and its resume compute the same numbers): ``torch.tanh``, or
    ``2 sigmoid(2a) - 1`` (the same function, at most ~2e-7 from ``torch.tanh`` in float32).
    Elsewhere ``torch.tanh``. The output, and so ``backward``, is bit-for-bit the same in
    both grad modes and in ``forward_``; the TP rules evaluate tanh up to 24 batch-sized
    times per step."""

    name = "tanh"

    def forward(self, a):
        if a.device.type != "cpu" or CPU_TANH == "torch":
            return torch.tanh(a)
        if torch.is_grad_enabled() and a.requires_grad:
            return torch.sigmoid(a + a) * 2 - 1  # autograd-safe: no in-place op on a saved output
        return self.sigmoid_form_(a + a)

    def forward_(self, a):
        if torch.is_grad_enabled() and a.requires_grad:
            return self.forward(a)
        if a.device.type != "cpu" or CPU_TANH == "torch":
            return a.tanh_()
        return self.sigmoid_form_(a.add_(a))

    @staticmethod
    def sigmoid_form_(t: torch.Tensor) -> torch.Tensor:
        """``2 sigmoid(t) - 1`` (= ``tanh(t / 2)``) computed in ``t``'s memory."""
        s = torch.sigmoid_(t)
        return s.add_(s).sub_(_ONE)

    def backward(self, h, grad_h):
        return torch.ops.aten.tanh_backward.default(grad_h, h)

    def backward_(self, h, grad_h):
        return torch.ops.aten.tanh_backward.grad_input(grad_h, h, grad_input=grad_h)


class ReLU(Activation):
    name = "relu"

    def forward(self, a):
        return torch.relu(a)

    def backward(self, h, grad_h):
        return torch.ops.aten.threshold_backward.default(grad_h, h, 0)

    def backward_(self, h, grad_h):
        return torch.ops.aten.threshold_backward.grad_input(grad_h, h, 0, grad_input=grad_h)


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, a):
        return torch.sigmoid(a)

    def backward(self, h, grad_h):
        return torch.ops.aten.sigmoid_backward.default(grad_h, h)

    def backward_(self, h, grad_h):
        return torch.ops.aten.sigmoid_backward.grad_input(grad_h, h, grad_input=grad_h)


class ELU(Activation):
    """``a`` for ``a > 0``, ``exp(a) - 1`` otherwise (α = 1; scalingDTP's SimpleVGG)."""

    name = "elu"

    def forward(self, a):
        return torch.nn.functional.elu(a)

    def backward(self, h, grad_h):
        return torch.ops.aten.elu_backward.default(grad_h, 1.0, 1.0, 1.0, True, h)

    def backward_(self, h, grad_h):
        return torch.ops.aten.elu_backward.grad_input(grad_h, 1.0, 1.0, 1.0, True, h, grad_input=grad_h)


ACTIVATIONS = {cls.name: cls for cls in (Activation, Tanh, ReLU, Sigmoid, ELU)}


def make_activation(name: str) -> Activation:
    """Activation by name (``identity``, ``tanh``, ``relu``, ``sigmoid``, ``elu``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(ACTIVATIONS))}") from None
