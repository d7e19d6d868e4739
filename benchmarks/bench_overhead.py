"""Framework overhead: one epoch of ``bioscale train rule=bp`` vs a minimal PyTorch loop.

Both train the same network (same shapes, tanh, Glorot init) with the same batch size,
the same tanh evaluation (bioscale's ``Tanh`` module, which on the CPU is faster than
``torch.nn.Tanh``: this script measures the framework's overhead, not a kernel choice),
Adam and data tensors, in the same process, interleaved, several times; medians are
compared. The framework epoch is ``Trainer.train_epoch``, the code ``bioscale train``
runs (evaluation excluded on both sides).

    python benchmarks/bench_overhead.py [--data mnist --root ../shared/data --model mnist_fc --repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from bioscale.architectures import make_activation
from bioscale.commands.train import prepare
from bioscale.optim import adam_kwargs
from bioscale.progress import Progress
from common import REPO, record


def plain_net(model) -> torch.nn.Sequential:
    """An nn.Sequential copy of the bioscale network (Linear + bioscale's Tanh, autograd
    through it), same initial weights."""
    layers = [torch.nn.Flatten()]
    for i, layer in enumerate(model.layers):
        lin = torch.nn.Linear(layer.op.weight.shape[1], layer.op.weight.shape[0])
        with torch.no_grad():
            lin.weight.copy_(layer.op.weight)
            lin.bias.copy_(layer.op.bias)
        layers.append(lin)
        if i < len(model.layers) - 1:
            layers.append(make_activation("tanh"))
    return torch.nn.Sequential(*layers)


def plain_epoch(net, opt, x, y, batch_size, generator):
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), batch_size):
        idx = order[start : start + batch_size]
        loss = F.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--model", default="mnist_fc")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", default="speed/overhead_bp_mnist_fc")
    args = parser.parse_args()

    tokens = [
        "rule=bp",
        f"data={args.data}",
        f"data.root={args.root}",
        f"model={args.model}",
        f"trainer.batch_size={args.batch_size}",
        "trainer.epochs=1000",
        "output_dir=/tmp/bioscale-bench",
        "observers.console.enabled=false",
        "trainer.checkpoint=false",
    ]
    trainer = prepare(tokens)
    data = trainer.data.train
    net = plain_net(trainer.model)
    opt_cfg = trainer.optimizer_cfg
    params = list(net.parameters())
    opt = torch.optim.Adam(params, **adam_kwargs(params, opt_cfg))  # the same Adam settings (fused kernel) as bioscale
    gen = torch.Generator().manual_seed(0)
    progress = Progress(False)
    plain, framework = [], []
    for rep in range(args.repeats + 1):  # the first round warms up both
        t = time.perf_counter()
        plain_epoch(net, opt, data.x, data.y, args.batch_size, gen)
        t_plain = time.perf_counter() - t
        t = time.perf_counter()
        trainer.train_epoch(rep, progress)
        t_fw = time.perf_counter() - t
        if rep:
            plain.append(t_plain)
            framework.append(t_fw)
        print(f"round {rep}: plain {t_plain:.3f}s  bioscale {t_fw:.3f}s", flush=True)
    ratio = statistics.median(framework) / statistics.median(plain)
    print(
        f"median plain {statistics.median(plain):.3f}s, bioscale {statistics.median(framework):.3f}s, ratio {ratio:.3f}"
    )
    path = record(
        args.name,
        {
            "what": "one training epoch, bioscale train rule=bp vs minimal PyTorch loop (same net, batch, Adam, data)",
            "data": args.data,
            "model": args.model,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "plain_seconds": plain,
            "bioscale_seconds": framework,
            "plain_median": statistics.median(plain),
            "bioscale_median": statistics.median(framework),
            "ratio": ratio,
            "target": "ratio <= 1.15",
        },
    )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
