"""Framework overhead of a TP step: bioscale's SDTP step against the same step written as
plain PyTorch, in one process, interleaved.

The plain step does what ``Trainer.train_step`` does for ``rule=sdtp`` with the parallel
schedule on a net shaped like ``mnist_fc`` (``--width`` units in each of 5 hidden layers),
op for op: the forward pass, one noise draw for layers 2-5 and one for the top layer,
the grouped inverse update (``baddbmm``/``bmm``), the top inverse, the inverse Adam, the
difference targets on ``[target; h]``, the local gradients and the forward Adam. It skips
what bioscale adds: hooks and their checks, modules, the step object, the logged losses.
So ``sdtp / plain`` is the framework's cost per step; with a small ``--width`` (the matrix
products nearly free) it is almost all Python and per-op work. BP's step (bioscale's) is
timed too, as the usual reference.

    python benchmarks/bench_tp_overhead.py [--width 8 --rounds 40 --steps 8 --name NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from bioscale.commands.train import prepare
from common import REPO, record, step_bench_tokens

HIDDEN = 5


class PlainSDTP:
    """SDTP's parallel step on a ``784 → width × 5 → 10`` tanh net, plain PyTorch, no autograd.
    Weights are ``(out, in)``; inverses ``V_l`` ``(out_l, in_l)`` map ``h_l`` back to ``h_{l-1}``."""

    def __init__(self, width: int, batch_size: int, sigma: float = 0.25, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        dims = [784] + [width] * HIDDEN + [10]
        self.W = [torch.randn(dims[i + 1], dims[i], generator=gen) * dims[i] ** -0.5 for i in range(HIDDEN + 1)]
        self.b = [torch.zeros(dims[i + 1]) for i in range(HIDDEN + 1)]
        self.V = torch.randn(HIDDEN - 1, width, width, generator=gen) * width**-0.5  # g_2..g_5, stacked
        self.c = torch.zeros(HIDDEN - 1, 1, width)
        self.V_top, self.c_top = torch.randn(10, width, generator=gen) * 0.3, torch.zeros(width)  # g_6
        self.W_stack, self.b_stack = torch.stack(self.W[1:HIDDEN]), torch.stack(self.b[1:HIDDEN]).unsqueeze(1)
        forward, inverse = self.W + self.b, [self.V, self.c, self.V_top, self.c_top]
        for p in forward + inverse:
            p.grad = torch.zeros_like(p)
        self.forward_adam = torch.optim.Adam(forward, lr=1e-4, fused=True)
        self.inverse_adam = torch.optim.Adam(inverse, lr=1e-4, fused=True)
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.sigma, self.scale = sigma, 2.0 / batch_size

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One step on ``x`` ``(B, 784)``, ``y`` ``(B,)``."""
        B, W, b, sc = x.shape[0], self.W, self.b, self.scale
        h = [x]
        for i in range(HIDDEN):
            h.append(torch.tanh(F.linear(h[-1], W[i], b[i])))
        out = F.linear(h[-1], W[HIDDEN], b[HIDDEN])
        grad_out = F.log_softmax(out, 1).exp_()
        grad_out.scatter_add_(1, y[:, None], torch.full((B, 1), -1.0)).div_(B)
        # inverse update: layers 2..5 as one group, then the top inverse
        clean = torch.stack(h[1:HIDDEN])
        noisy = torch.empty_like(clean).normal_(0, self.sigma, generator=self.noise).add_(clean)
        read = torch.baddbmm(self.b_stack, noisy, self.W_stack.transpose(1, 2)).tanh_()
        rec = torch.baddbmm(self.c, read, self.V).tanh_()
        grad_pre = torch.ops.aten.tanh_backward.default((rec - clean).mul_(sc), rec)
        torch.bmm(read.transpose(1, 2), grad_pre, out=self.V.grad)
        torch.sum(grad_pre, 1, keepdim=True, out=self.c.grad)
        top_in = torch.empty_like(h[HIDDEN]).normal_(0, self.sigma, generator=self.noise).add_(h[HIDDEN])
        top_read = F.softmax(F.linear(top_in, W[HIDDEN], b[HIDDEN]), 1)
        top_rec = torch.addmm(self.c_top, top_read, self.V_top).tanh_()
        top_grad = torch.ops.aten.tanh_backward.default((top_rec - h[HIDDEN]).mul_(sc), top_rec)
        torch.mm(top_read.t(), top_grad, out=self.V_top.grad)
        torch.sum(top_grad, 0, out=self.c_top.grad)
        self.inverse_adam.step()
        # targets, top-down, and the local gradients
        onehot = torch.zeros_like(out).scatter_(1, y[:, None], 1.0)
        both = torch.addmm(self.c_top, torch.cat([onehot, F.softmax(out, 1)]), self.V_top).tanh_()
        target = both[:B].add_(h[HIDDEN]).sub_(both[B:])
        deltas = {HIDDEN + 1: grad_out}
        for l in range(HIDDEN, 0, -1):
            deltas[l] = torch.ops.aten.tanh_backward.default(torch.sub(h[l], target).mul_(sc), h[l])
            if l > 1:
                both = torch.addmm(self.c[l - 2, 0], torch.cat([target, h[l]]), self.V[l - 2]).tanh_()
                target = both[:B].add_(h[l - 1]).sub_(both[B:])
        for l in range(1, HIDDEN + 2):
            torch.mm(deltas[l].t(), h[l - 1], out=W[l - 1].grad)
            torch.sum(deltas[l], 0, out=b[l - 1].grad)
        self.forward_adam.step()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()

    common = step_bench_tokens("mnist", args.root, "mnist_fc", args.batch_size, 0)
    widths = f"model.widths=[{','.join([str(args.width)] * HIDDEN)}]"
    bp = prepare([*common, widths, "rule=bp"])
    sdtp = prepare([*common, widths, "rule=sdtp", "rules.sdtp.schedule=parallel"], data=bp.data)
    x, y = bp.data.train.x[: args.batch_size], bp.data.train.y[: args.batch_size]
    plain = PlainSDTP(args.width, args.batch_size)
    flat_x = x.reshape(x.shape[0], -1)
    variants = {
        "bp": lambda: bp.train_step(x, y, 0, frozenset({"forward"}), 0.5),
        "sdtp": lambda: sdtp.train_step(x, y, 0, frozenset({"forward", "inverse"}), 0.5),
        "plain_sdtp": lambda: plain.step(flat_x, y),
    }
    times = {k: [] for k in variants}
    for rnd in range(args.rounds + 1):
        for key, fn in variants.items():
            fn()
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            if rnd:  # round 0 warms up
                times[key].append((time.perf_counter() - start) / args.steps * 1e3)
    ratio = lambda a, b: statistics.median(p / q for p, q in zip(times[a], times[b]))  # noqa: E731
    rows = {k: round(statistics.median(v), 3) for k, v in times.items()}
    ratios = {
        "sdtp/bp": ratio("sdtp", "bp"),
        "plain_sdtp/bp": ratio("plain_sdtp", "bp"),
        "sdtp/plain_sdtp": ratio("sdtp", "plain_sdtp"),
    }
    for key, ms in rows.items():
        print(f"{key:12s} {ms:7.3f} ms/step")
    for key, value in ratios.items():
        print(f"{key:16s} x{value:.3f}")
    if args.name:
        path = record(
            args.name,
            {
                "what": "median ms per step and median per-round ratios: bioscale's bp and sdtp (parallel) steps and "
                "the same sdtp step written as plain PyTorch (framework overhead)",
                "settings": vars(args),
                "ms_per_step": rows,
                "ratios": {k: round(v, 3) for k, v in ratios.items()},
            },
        )
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
