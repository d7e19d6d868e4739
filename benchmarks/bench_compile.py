"""``trainer.compile=true`` (torch.compile, inductor) against eager, per net and rule, on this machine.

For each (model, rule): two trainers built from the same seed, one eager and one compiled. Reported:
- compile cost: wall time of the first compiled step with an empty inductor cache (graph capture +
  codegen) and on a fresh trainer with the cache warm (a second run), and of the
  first step at a second batch size (the short last batch of an epoch: a recompile, or a dynamic
  graph reused), with dynamo's counters (graph breaks by reason, unique graphs) and the graphs each of the
  three first steps added (a second or third batch size that adds graphs recompiled);
- steady speed: milliseconds per step of each, interleaved by rounds (the ratio taken within a
  round, median over rounds, so a shared machine's drifts cancel);
- closeness: after ``--close-steps`` identical steps from the same initial state on the same
  batches, the largest |Δ| of any parameter relative to that parameter's largest |value|.

    python benchmarks/bench_compile.py [--cases mnist_fc:bp,mnist_fc:fa,mnist_fc:dtp,cifar_lc:bp,...]
        [--rounds 7 --steps 5 --close-steps 5 --threads 0 --name speed/compile_cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
from bioscale.commands.train import prepare
from common import REPO, has_schedule, record, step_bench_tokens, step_phases

DATA = {"mnist_fc": "mnist", "cifar_lc": "cifar10", "cifar_fc": "cifar10", "mnist_lc": "mnist"}


def build(model: str, rule: str, compiled: bool, args):
    tokens = step_bench_tokens(DATA[model], args.root, model, args.batch_size, args.threads)
    tokens += [f"rule={rule}", f"trainer.compile={str(compiled).lower()}", "data.limit_train=2048"]
    if has_schedule(rule):
        tokens.append(f"rules.{rule}.schedule=parallel")
    return prepare(tokens)


def dynamo_counts() -> dict:
    from torch._dynamo.utils import counters

    return {
        "graph_breaks": {k: v for k, v in counters["graph_break"].items()},
        "unique_graphs": counters["stats"]["unique_graphs"],
        "frames_ok": counters["frames"]["ok"],
    }


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def wall(fn) -> float:
    """Seconds ``fn`` takes, device work included."""
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def ms_per_step(trainer, x, y, ph, steps: int) -> float:
    """Milliseconds per step over ``steps`` steps after one warm-up step, device work included."""
    trainer.train_step(x, y, 0, ph, 0.5)
    return wall(lambda: [trainer.train_step(x, y, 0, ph, 0.5) for _ in range(steps)]) / steps * 1e3


def closeness(eager, compiled, x, y, ph, steps: int) -> float:
    """Largest relative parameter difference after ``steps`` identical steps (both trainers fresh)."""
    for _ in range(steps):
        eager.train_step(x, y, 0, ph, 0.5)
        compiled.train_step(x, y, 0, ph, 0.5)
    worst = 0.0
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        scale = a.detach().abs().max().clamp_min(1e-12)
        worst = max(worst, float((a.detach() - b.detach()).abs().max() / scale))
    return worst


def case(model: str, rule: str, args) -> dict:
    import torch._dynamo

    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    eager, compiled = build(model, rule, False, args), build(model, rule, True, args)
    x, y = eager.data.train.x[: args.batch_size], eager.data.train.y[: args.batch_size]
    ph = step_phases(rule)
    cold = wall(lambda: compiled.train_step(x, y, 0, ph, 0.5))  # an empty inductor cache: a cold compile
    eager.train_step(x, y, 0, ph, 0.5)
    close = closeness(eager, compiled, x, y, ph, args.close_steps)
    compiled_fresh = build(model, rule, True, args)  # a fresh trainer, inductor's cache now warm
    torch._dynamo.reset()
    counters.clear()
    graphs = []  # unique graphs after each of the three first steps
    first = wall(lambda: compiled_fresh.train_step(x, y, 0, ph, 0.5))
    graphs.append(counters["stats"]["unique_graphs"])
    short = args.batch_size // 2 + 3
    second_size = wall(lambda: compiled_fresh.train_step(x[:short], y[:short], 0, ph, 0.5))
    graphs.append(counters["stats"]["unique_graphs"])
    again = wall(lambda: compiled_fresh.train_step(x[: short - 1], y[: short - 1], 0, ph, 0.5))
    graphs.append(counters["stats"]["unique_graphs"])
    counts = dynamo_counts()
    counts["graphs_added_by_each_first_step"] = [graphs[0], graphs[1] - graphs[0], graphs[2] - graphs[1]]
    ms = {"eager": [], "compiled": []}
    ratios = []
    for rnd in range(args.rounds + 1):
        e = ms_per_step(eager, x, y, ph, args.steps)
        c = ms_per_step(compiled, x, y, ph, args.steps)
        if rnd:
            ms["eager"].append(e)
            ms["compiled"].append(c)
            ratios.append(c / e)
    row = {
        "first_step_cold_cache_s": round(cold, 1),
        "first_step_warm_cache_s": round(first, 1),
        "first_step_at_second_batch_size_s": round(second_size, 1),
        "first_step_at_third_batch_size_s": round(again, 1),
        "dynamo": counts,
        "eager_ms_per_step": round(statistics.median(ms["eager"]), 2),
        "compiled_ms_per_step": round(statistics.median(ms["compiled"]), 2),
        "compiled_over_eager": round(statistics.median(ratios), 3),
        "max_relative_parameter_difference": close,
        "close_steps": args.close_steps,
    }
    print(f"{model}:{rule} {row}", flush=True)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default="mnist_fc:bp,mnist_fc:fa,mnist_fc:dtp,cifar_lc:bp,cifar_lc:fa,cifar_lc:dtp")
    parser.add_argument("--root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--close-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--name", default="speed/compile_cpu")
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-compile-")  # cold compiles measured
    rows = {}
    for item in args.cases.split(","):
        model, rule = item.split(":")
        try:
            rows[item] = case(model, rule, args)
        except Exception as exc:  # a case that does not compile is a result too
            rows[item] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            print(f"{item} failed: {rows[item]['error']}", flush=True)
        path = record(
            args.name,
            {
                "what": "trainer.compile=true (inductor) against eager: compile cost, dynamo counters, ms per step "
                "(interleaved rounds), parameter closeness after identical steps",
                "batch_size": args.batch_size,
                "torch_threads": torch.get_num_threads(),
                "results": rows,
            },
        )
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
