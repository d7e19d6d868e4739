"""Images per second of the ImageNet folder input pipeline, per decode path, without training.

    python benchmarks/bench_imagenet_pipeline.py --folder /tmp/jpegs [--make 3000] [--paths workers device]
        [--workers 2] [--batch-size 256] [--batches 8] [--name NAME]

``--make N`` first writes N real JPEGs (quality 90) at ImageNet's typical sizes (the shorter side
between 333 and 500 pixels, aspect 3:4 to 4:3, a few larger) into ``FOLDER/train/<class>/`` and
``FOLDER/val/<class>/`` (10 classes), each a smooth random field plus fine noise, so that files
have ImageNet's size (~100-150 KB) and decode cost. Each path then yields ``--batches`` training
batches (224 x 224 crops with flips, the usual 256 resize) after one warm-up batch, on the device
the trainer would use (``--device``, default cuda when available), synchronised before the clock
stops. ``workers``: PIL in ``--workers`` DataLoader processes; ``device``: ``--workers`` reader
threads and batched ``decode_jpeg`` on the device.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from bioscale.config import build_run_config
from bioscale.datasets import load_data
from common import record


def make_folder(root: Path, count: int, classes: int = 10, seed: int = 0) -> None:
    from PIL import Image

    if count < 10 * classes:
        raise SystemExit(f"--make {count}: at least {10 * classes} images (every tenth of each class goes to val/)")
    rng = np.random.default_rng(seed)
    for i in range(count):
        split = "val" if (i // classes) % 10 == 9 else "train"
        folder = root / split / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        short = int(rng.choice([333, 375, 400, 500, 500, 500, 640]))
        long = int(short * rng.uniform(1.0, 1.5))
        h, w = (short, long) if rng.random() < 0.75 else (long, short)
        coarse = rng.normal(128, 50, (h // 16 + 2, w // 16 + 2, 3))
        field = np.kron(coarse, np.ones((16, 16, 1)))[:h, :w]
        pixels = np.clip(field + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.JPEG", quality=90)


def images_per_second(root: Path, path: str, workers: int, batch_size: int, batches: int, device: str) -> dict:
    cfg = build_run_config(
        [
            "data=imagenet",
            f"data.root={root}",
            f"data.decode={path}",
            f"data.workers={workers}",
            "data.augment=true",
            "data.image_size=224",
            "data.resize=256",
        ]
    )
    data = load_data(cfg.data, device)
    dev = torch.device(device)
    it = data.train.batches(batch_size, torch.Generator().manual_seed(0))
    next(it)  # warm-up: worker start, first reads
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start, seen = time.perf_counter(), 0
    for _, (x, _y) in zip(range(batches), it):
        seen += x.shape[0]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    return {"images": seen, "seconds": round(seconds, 3), "images_per_second": round(seen / seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", required=True)
    ap.add_argument("--make", type=int, default=0)
    ap.add_argument("--paths", nargs="+", default=["workers", "device"], choices=["workers", "device"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    root = Path(args.folder)
    if args.make:
        make_folder(root, args.make)
    files = sorted(root.glob("train/*/*.JPEG"))
    mean_kb = sum(f.stat().st_size for f in files) / max(len(files), 1) / 1024
    rows = {}
    for path in args.paths:
        rows[path] = images_per_second(root, path, args.workers, args.batch_size, args.batches, args.device)
        print(f"{path:8s} {rows[path]['images_per_second']:8.1f} images/s on {args.device}", flush=True)
    name = args.name or f"speed/imagenet_pipeline/{torch.device(args.device).type}"
    print(
        "recorded",
        record(
            name,
            {
                "what": "ImageNet folder input pipeline: training batches (256 resize, random 224 crop, flip, standardise) per "
                "second, no training; generated JPEGs at ImageNet sizes",
                "train_images": len(files),
                "mean_file_kib": round(mean_kb, 1),
                "workers": args.workers,
                "batch_size": args.batch_size,
                "batches": args.batches,
                "device_used": args.device,
                "results": rows,
            },
        ),
    )


if __name__ == "__main__":
    main()
