"""The run folder: config.yaml, metrics.jsonl, summary.json, checkpoint.pt.

Every file is replaced atomically except ``metrics.jsonl``, which is appended one line per
epoch (and cut back to the checkpoint's epoch when a run resumes).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from .checkpoint import atomic_write_bytes
from .errors import CheckpointError, StorageError, UsageError

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
        except OSError as exc:
            raise StorageError(f"cannot create the run folder {path}: {exc.strerror or exc}") from exc


def check_writable(output_dir: str) -> None:
    """A :class:`UsageError` naming ``output_dir`` unless a run folder can be made in it. Leaves
    nothing behind (folders it had to make to find out are removed again)."""
    folder = Path(output_dir)
    made = [p for p in [folder, *folder.parents] if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".bioscale-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"output_dir={output_dir}: cannot write there ({exc.strerror or exc})") from exc
    finally:
        for path in reversed(made):
            try:
                path.rmdir()
            except OSError:
                pass


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_metrics(run_dir: Path, line: dict) -> None:
    path = Path(run_dir) / METRICS
    try:
        with open(path, "a") as handle:
            handle.write(json.dumps(line) + "\n")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def read_metrics(run_dir: Path) -> list[dict]:
    """The lines of ``metrics.jsonl``; a cut-off last line (a kill during an append) is dropped,
    any other line that is not JSON is a :class:`CheckpointError`."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is unreadable: {exc}") from exc
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # no newline after it: an append cut off by a kill
                break
            raise CheckpointError(f"{path} line {i + 1} is not JSON: {line[:80]!r}") from None
        if not isinstance(row, dict):
            raise CheckpointError(f"{path} line {i + 1} is not a metrics record: {line[:80]!r}")
        rows.append(row)
    return rows


def metrics_through(run_dir: Path, epochs: int) -> list[dict]:
    """The lines of epochs ``1..epochs``; a :class:`CheckpointError` unless every one is there."""
    kept = [m for m in read_metrics(run_dir) if isinstance(m.get("epoch"), int) and m["epoch"] <= epochs]
    if [m["epoch"] for m in kept] != list(range(1, epochs + 1)):
        raise CheckpointError(
            f"{Path(run_dir) / METRICS} holds epochs {[m.get('epoch') for m in kept]}, "
            f"but the checkpoint is at epoch {epochs}"
        )
    return kept


def truncate_metrics(run_dir: Path, epochs: int) -> list[dict]:
    """Keep the lines of epochs ``1..epochs`` (what the checkpoint holds); return them."""
    kept = metrics_through(run_dir, epochs)
    write_text(Path(run_dir) / METRICS, "".join(json.dumps(m) + "\n" for m in kept))
    return kept
