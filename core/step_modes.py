"""How the step's tensor maths runs: precision (``trainer.precision``) and compilation
(``trainer.compile``). Both are off by default. On the CPU compile does not pay (inductor: no
faster on ``mnist_fc``, about 2 x slower on ``cifar_lc``, not bit-close; ``results/speed/``); bf16 makes a
``cifar_lc`` step about 1.6 x faster on a CPU with AVX512-BF16 but stays opt-in, since results are
fp32. On a GPU both stay off until ``benchmarks/device_check.sh`` shows them faster and within seed spread.

- ``bf16``: the forward pass, the rule's hooks, the credit assignment and the local gradient
  products run under ``torch.autocast(dtype=bfloat16)`` (matmuls and convolutions in bf16,
  reductions and elementwise maths as autocast decides); parameters, their ``.grad`` and every
  optimiser's state stay float32 (master weights), and each optimiser step runs outside autocast.
  Every target and every difference in it is float32 (a displacement ``t - h`` is often below
  bf16's spacing; ``bioscale.rulekit.targets``, ``credit.assign_credit``). Evaluation runs under
  the same autocast.
- ``compile``: ``torch.compile`` of the two core-owned parts of a step, the forward pass with
  the task loss and the credit assignment with the gradient writes (the rule's credit hooks
  are traced inside it). Optimiser steps and ``bioscale_update_inverse`` stay eager: their
  learning rate changes every step and would recompile the graph each time.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str):
    """A context manager running its block in ``precision`` on ``device``'s type."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")


def maybe_compile(fn, enabled: bool):
    """``torch.compile(fn)`` when ``enabled`` (the graph is built on the first call), else ``fn``."""
    return torch.compile(fn, dynamic=None) if enabled else fn
