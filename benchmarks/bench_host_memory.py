"""Host memory per rank of a 2-process ``bioscale train data=imagenet32`` run under torchrun, with
the downsampled-ImageNet loader before the .npy cache (a copy of it below, patched in) and today's.

usage: python benchmarks/bench_host_memory.py [--images 160000] [--dir /tmp] [--keep]

It writes a synthetic data set in the release's format (``train_data_batch_1..10.npz``: ``data``
``(N, 3072)`` uint8 random pixels, ``labels`` 1..1000, ``mean``; ``val_data.npz``), then trains one
epoch of a small net on all of it with a validation split held out, in 2 processes started
together by torchrun, three times: the old loader; today's, building the cache; today's, the
cache present. Each rank runs under this script: a thread samples ``/proc/self/smaps_rollup``
every 50 ms (peaks of Rss, Pss, private = Private_Clean + Private_Dirty, Anonymous) and the
kernel's exact RSS peak (``VmHWM``) is read at the end. Pss splits a page shared by k processes
k ways, so two ranks sharing one copy show about half of it each. Writes
``results/host_memory/bench_host_memory.json``; the synthetic data is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

FIELDS = {"Rss": "rss", "Pss": "pss", "Private_Clean": "private", "Private_Dirty": "private", "Anonymous": "anonymous"}


def smaps_rollup() -> dict[str, int]:
    """This process's ``{rss, pss, private, anonymous}`` in bytes, now."""
    out = dict.fromkeys(FIELDS.values(), 0)
    for line in open("/proc/self/smaps_rollup"):
        key = line.split(":")[0]
        if key in FIELDS:
            out[FIELDS[key]] += int(line.split()[1]) * 1024
    return out


class Sampler(threading.Thread):
    """Peaks of :func:`smaps_rollup` every ``interval`` seconds, per phase (``start``: imports and
    set-up, ``load``: inside ``load_data``, ``train``: after it), until :meth:`stop`."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval, self.done, self.phase = interval, threading.Event(), "start"
        self.peaks: dict[str, dict[str, int]] = {}
        self.marks: dict[str, dict[str, int]] = {}

    def sample(self) -> dict[str, int]:
        now, peaks = smaps_rollup(), self.peaks.setdefault(self.phase, dict.fromkeys(FIELDS.values(), 0))
        for key, value in now.items():
            peaks[key] = max(peaks[key], value)
        return now

    def enter(self, phase: str) -> None:
        """Start ``phase``; what the process holds at that moment is kept as ``at_<phase>``."""
        self.sample()
        self.phase = phase
        self.marks[f"at_{phase}"] = self.sample()

    def run(self):
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.interval)

    def stop(self) -> dict:
        self.done.set()
        self.join()
        self.sample()
        vmhwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
        return {"vmhwm": vmhwm, **self.marks, **{f"peak_{k}": v for k, v in self.peaks.items()}}


def old_load_downsampled(cfg, device):
    """The loader of b72ee18 (before the cache): every npz read whole, concatenated, the held-out
    splits copied, float64 channel statistics over 65,536 images at a time."""
    import torch
    from bioscale.datasets import imagenet_downsampled as new
    from bioscale.datasets.augment import Augmentation
    from bioscale.datasets.in_memory import DataBundle, InMemorySplit
    from bioscale.datasets.normalize import channel_norm
    from bioscale.datasets.sources import read_arrays
    from bioscale.datasets.splits import hold_out

    side, root = new.SIDES[cfg.name], Path(cfg.root).expanduser()

    def read(path):
        data, labels = read_arrays(path, ("data", "labels"), "a downsampled ImageNet batch")
        return data.reshape(-1, 3, side, side), np.asarray(labels).astype(np.int64) - 1

    def stats(x):
        total, square = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
        for start in range(0, len(x), 65536):
            chunk = x[start : start + 65536].to(torch.float64).div_(255.0)
            total += chunk.sum((0, 2, 3))
            square += chunk.square_().sum((0, 2, 3))
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean = total / count
        return mean, (square / count - mean.square()).clamp_min(1e-16).sqrt()

    parts = [read(p) for p in new._find(root, "train_data_batch_*.npz")]
    xtr = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    ytr = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    xte, yte = (torch.from_numpy(a) for a in read(new._find(root, "val_data.npz")[0]))
    xtr, ytr, val = hold_out(cfg, xtr, ytr)
    norm = channel_norm(cfg.normalize, 3, 255.0, lambda: stats(xtr))
    scale = (1.0 / (255.0 * norm.std)).float().view(-1, 1, 1)
    shift = (-norm.mean / norm.std).float().view(-1, 1, 1)
    split = lambda x, y: InMemorySplit(x.to(device), y.to(device), scale, shift)  # noqa: E731
    return DataBundle(
        cfg.name, split(xtr, ytr), split(xte, yte), split(*val) if val else None, (3, side, side), 1000,
        "old loader", norm.record(), Augmentation(cfg.crop_padding, cfg.flip) if cfg.augment else None, (1, 5),
    )  # fmt: skip


def rank_main(loader: str, out: Path, argv: list[str]) -> int:
    """One torchrun rank: ``bioscale <argv>`` with ``loader``'s code, memory sampled throughout."""
    sampler = Sampler()
    sampler.start()
    if loader == "old":
        from bioscale.datasets import imagenet_downsampled

        imagenet_downsampled.load_downsampled = old_load_downsampled
    import bioscale.trainer
    from bioscale.cli import main

    real_load = bioscale.trainer.load_data

    def load_data(*a, **k):  # the trainer's call, bracketed
        sampler.enter("load")
        try:
            return real_load(*a, **k)
        finally:
            sampler.enter("train")

    bioscale.trainer.load_data = load_data
    start = time.perf_counter()
    code = main(argv)
    result = {"exit": code, "wall_s": round(time.perf_counter() - start, 1), **sampler.stop()}
    (out / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(result))
    return code


def write_data(root: Path, images: int, val: int, files: int = 10) -> int:
    """The synthetic npz batches; returns the training pixels' bytes."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for k, rows in enumerate(np.array_split(np.arange(images), files), start=1):
        labels = rng.permutation(rows % 1000) + 1  # every class in every file
        data = rng.integers(0, 256, (len(rows), 3072), dtype=np.uint8)
        np.savez(root / f"train_data_batch_{k}.npz", data=data, labels=labels, mean=np.zeros(3072))
    data = rng.integers(0, 256, (val, 3072), dtype=np.uint8)
    np.savez(root / "val_data.npz", data=data, labels=np.arange(val) % 1000 + 1)
    return images * 3072


def run_case(loader: str, root: Path, out: Path) -> dict:
    tokens = [
        "train", "rule=bp", "data=imagenet32", f"data.root={root}", "data.validation=5000", "model.widths=[16]",
        "trainer.epochs=1", "trainer.batch_size=500", "trainer.threads=1", "trainer.checkpoint=false",
        f"output_dir={out / 'runs'}", "observers.console.enabled=false", "observers.diagnostics.enabled=false",
    ]  # fmt: skip
    out.mkdir(parents=True)
    command = ["torchrun", "--standalone", "--nproc_per_node=2", __file__, "--rank-of", loader, "--out", str(out), "--"]
    start = time.perf_counter()
    subprocess.run(command + tokens, check=True, capture_output=True)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return {"loader": loader, "wall_s": round(time.perf_counter() - start, 1), "ranks": ranks, "argv": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=160_000, help="training images (32x32, 3072 bytes each)")
    parser.add_argument("--val", type=int, default=10_000, help="val_data.npz images")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the synthetic data goes (deleted)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic data")
    parser.add_argument("--rank-of", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.rank_of:
        sys.exit(rank_main(args.rank_of, args.out, rest[1:] if rest[:1] == ["--"] else rest))
    sys.path.insert(0, str(Path(__file__).parent))
    from common import record

    work = Path(tempfile.mkdtemp(prefix="bench-host-memory-", dir=args.dir))
    try:
        pixels = write_data(work / "data", args.images, args.val)
        cases = {}
        for name, loader in (("before", "old"), ("after_building_the_cache", "new"), ("after_cache_present", "new")):
            cases[name] = run_case(loader, work / "data", work / name)
            for r, rank in enumerate(cases[name]["ranks"]):
                print(name, f"rank {r}: VmHWM {rank['vmhwm'] / 2**30:.2f} GiB;", *(
                    f"{phase}: " + " ".join(f"{k} {v / 2**30:.2f}" for k, v in rank[phase].items())
                    for phase in ("at_load", "peak_load", "peak_train")))  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(work)
    path = record("host_memory/bench_host_memory", {"train_pixels_bytes": pixels, "images": args.images,
                                                    "val_images": args.val, "cases": cases})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
