"""The run folder: config.yaml, metrics.jsonl, summary.json, checkpoint.pt.

Every file is replaced atomically except ``metrics.jsonl``, which is appended one line per
epoch (and cut back to the checkpoint's epoch when a run resumes).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .checkpoint import atomic_write_bytes

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"


def create_run_dir(output_dir: str, parts: list[str]) -> Path:
    """A new, unique folder ``<output_dir>/<YYYYmmdd-HHMMSS>-<parts...>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    slug = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", p) for p in parts if p)
    base = Path(output_dir) / f"{stamp}-{slug}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda handle: handle.write(text.encode()))


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_metrics(run_dir: Path, line: dict) -> None:
    with open(run_dir / METRICS, "a") as handle:
        handle.write(json.dumps(line) + "\n")


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_metrics(run_dir: Path, epochs: int) -> list[dict]:
    """Keep the lines of epochs ``1..epochs`` (what the checkpoint holds); return them."""
    kept = [m for m in read_metrics(run_dir) if m.get("epoch", 0) <= epochs]
    write_text(Path(run_dir) / METRICS, "".join(json.dumps(m) + "\n" for m in kept))
    return kept
