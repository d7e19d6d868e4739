"""glibc's allocator settings for a CPU training process.

A step allocates and frees the same few large tensors (activations, signals, gradients) every step.
glibc serves a block above its mmap threshold with a fresh ``mmap`` (and gives it back on ``free``),
and it trims freed memory at the top of the heap; its dynamic threshold often settles for plain
autograd's order of frees but not for bioscale's (layer-local signals freed as the credit assignment
moves down), so every step touched fresh pages: 30,000 to 40,000 page faults per ResNet-20 step, and a
BP step at 1.3 to 2 x a plain autograd step on ``resnet20`` and ``lenet`` (``benchmarks/bench_nets.py``).
Fixing the mmap and trim thresholds at 1 GiB keeps those blocks in the heap for reuse: 0 page faults
per step and the step within about 1.1 x plain autograd (a 32 MiB mmap threshold left SimpleVGG's
67 MB first-layer blocks mapped afresh each step: 1.14 x; 1 GiB: about 1.0 x, and plain autograd in the
same process gets faster too). Freed memory up to 1 GiB stays with the process instead of returning
to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 1 << 30
_state: dict[str, bool | None] = {"tuned": None}


def tune_for_training() -> bool:
    """Set glibc's mmap and trim thresholds once per process; False where there is no glibc
    ``mallopt`` (macOS, musl) or it refuses. Idempotent."""
    if _state["tuned"] is None:
        _state["tuned"] = _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(_state["tuned"])


def _mallopt(param: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)))
    except (OSError, AttributeError):
        return False
