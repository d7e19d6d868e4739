"""Locally connected layer speed and cifar_lc step memory.

1. This machine's fp32 matrix-multiply throughput (2048 x 2048 x 2048 matmuls, median).
2. Forward + backward (input gradient and weight gradient) of the CIFAR LC layers 2 and 3
   at batch 128 with ``bioscale.architectures.LocallyConnected2d`` (the explicit calls the
   trainer makes: ``op(x)``, ``input_vjp``, ``write_param_grads`` into last step's gradient;
   and the autograd path), as achieved GFLOPS (3 batched matmuls of ``2·L·B·K·C_out``
   flops each) and as a fraction of (1). Inputs and output gradients are channels-last,
   the layout the layer produces.
3. The same with a straightforward unfold + einsum version (autograd backward).
4. Peak resident memory of a process doing training steps of ``cifar_lc`` with BP at batch
   128 (synthetic 32x32 inputs; model, gradients and Adam state included), measured in a
   fresh subprocess.

    python benchmarks/bench_lc.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from bioscale.architectures import LocallyConnected2d
from common import record

LAYERS = {  # name: (C_in, H, W, C_out, kernel, stride) of cifar_lc
    "cifar_lc layer 2": (64, 16, 16, 128, 5, 2),
    "cifar_lc layer 3": (128, 8, 8, 256, 3, 1),
}


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_gflops(repeats):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / timed(lambda: a @ b, repeats) / 1e9


class UnfoldEinsumLC(torch.nn.Module):
    """The usual straightforward version: F.unfold, einsum over locations, autograd backward."""

    def __init__(self, c, h, w, o, k, s):
        super().__init__()
        self.k, self.s, self.p = k, s, k // 2
        self.ho, self.wo = (h + 2 * self.p - k) // s + 1, (w + 2 * self.p - k) // s + 1
        self.weight = torch.nn.Parameter(torch.randn(self.ho * self.wo, c * k * k, o) * 0.01)
        self.bias = torch.nn.Parameter(torch.zeros(o, self.ho, self.wo))

    def forward(self, x):
        cols = F.unfold(x, self.k, padding=self.p, stride=self.s)  # (B, K, L)
        out = torch.einsum("bkl,lko->bol", cols, self.weight)
        return out.reshape(x.shape[0], -1, self.ho, self.wo) + self.bias


def layer_benchmark(name, spec, batch, repeats, peak):
    c, h, w, o, k, s = spec
    op = LocallyConnected2d(c, o, k, s, None, (h, w))
    op.reset_parameters(torch.Generator().manual_seed(0))
    # channels-last, as the layer's own outputs and the gradients the trainer computes from them are
    x = torch.randn(batch, c, h, w).contiguous(memory_format=torch.channels_last)
    g = torch.randn(batch, *op.out_shape).contiguous(memory_format=torch.channels_last)
    flops = 3 * 2 * op.locations * batch * op.patch_size * o

    grads = {name: torch.zeros_like(p) for name, p in op.named_parameters(recurse=False)}

    def explicit():  # what the trainer does: no autograd graph, last step's .grad tensors overwritten
        with torch.no_grad():
            op(x)
            op.input_vjp(g)
            op.write_param_grads(x, g, grads)

    xg = x.clone().requires_grad_(True)

    def autograd_path():
        out = op(xg)
        torch.autograd.grad(out, [xg, op.weight, op.bias], g)

    naive = UnfoldEinsumLC(c, h, w, o, k, s)

    x_nchw = x.contiguous().requires_grad_(True)  # the baseline's own layout (its fastest here)
    g_nchw = g.contiguous()

    def naive_path():
        out = naive(x_nchw)
        torch.autograd.grad(out, [x_nchw, naive.weight, naive.bias], g_nchw)

    t_explicit, t_autograd, t_naive = (timed(f, repeats) for f in (explicit, autograd_path, naive_path))
    result = {
        "shape": {"in": [c, h, w], "out": list(op.out_shape), "kernel": k, "stride": s, "batch": batch},
        "gflop_per_fwd_bwd": flops / 1e9,
        "bioscale_ms": t_explicit * 1e3,
        "bioscale_gflops": flops / t_explicit / 1e9,
        "fraction_of_matmul_peak": flops / t_explicit / 1e9 / peak,
        "bioscale_autograd_ms": t_autograd * 1e3,
        "unfold_einsum_ms": t_naive * 1e3,
        "speedup_vs_unfold_einsum": t_naive / t_explicit,
    }
    print(
        f"{name}: bioscale {t_explicit * 1e3:.1f} ms ({result['bioscale_gflops']:.1f} GFLOPS, "
        f"{result['fraction_of_matmul_peak']:.2f} of peak), autograd path {t_autograd * 1e3:.1f} ms, "
        f"unfold+einsum {t_naive * 1e3:.1f} ms (x{result['speedup_vs_unfold_einsum']:.2f})",
        flush=True,
    )
    return result


MEMORY_PROBE = r"""
import json, resource, sys, torch
from bioscale.testing import fake_entry
from bioscale.commands.train import prepare
from bioscale.datasets import DataBundle, InMemorySplit
batch = int(sys.argv[1])
x = torch.randn(batch, 3, 32, 32); y = torch.randint(0, 10, (batch,))
data = DataBundle("synthetic", InMemorySplit(x, y), InMemorySplit(x, y), None, (3, 32, 32), 10, "synthetic")
trainer = prepare(["rule=bp", "model=cifar_lc", "output_dir=/tmp/bioscale-bench", "trainer.checkpoint=false",
                   "observers.console.enabled=false", "observers.diagnostics.enabled=false"], data=data)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(3):
    trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_before_first_step_mb": base / 1024, "peak_rss_mb": peak / 1024,
                  "parameters": sum(p.numel() for p in trainer.model.parameters())}))
"""


def step_memory(batch):
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(batch)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--name", default="speed/lc/lc_layer_speed")
    args = parser.parse_args()
    peak = matmul_gflops(args.repeats)
    print(f"fp32 matmul (2048^3): {peak:.1f} GFLOPS", flush=True)
    layers = {name: layer_benchmark(name, spec, args.batch_size, args.repeats, peak) for name, spec in LAYERS.items()}
    memory = step_memory(args.batch_size)
    print(
        f"cifar_lc BP step at batch {args.batch_size}: peak RSS {memory['peak_rss_mb']:.0f} MB "
        f"(before the first step {memory['rss_before_first_step_mb']:.0f} MB), {memory['parameters'] / 1e6:.1f} M parameters"
    )
    path = record(
        args.name,
        {
            "what": "LC layer forward+backward speed vs matmul peak and vs unfold+einsum; cifar_lc BP step peak memory",
            "matmul_gflops": peak,
            "layers": layers,
            "cifar_lc_bp_step_memory": memory,
            "targets": "fraction_of_matmul_peak >= 0.5; speedup_vs_unfold_einsum >= 2; peak memory < 3 GB",
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
