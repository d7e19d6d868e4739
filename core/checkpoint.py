"""Atomic checkpoint files and their validation.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``weights_only=True`` (tensors, numbers, strings, lists, dicts: no pickled code). It is
written to a temporary file in the same folder, flushed to disk, then renamed over the
old one, so a crash never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import CheckpointError

FORMAT = "bioscale-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "epoch", "global_step", "identity", "model", "optimizer", "rule", "rng")


def atomic_write_bytes(path: Path, write) -> None:
    """Call ``write(file)`` on a temp file next to ``path``, fsync, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save_checkpoint(path: Path, state: dict) -> None:
    payload = {"format": FORMAT, "version": VERSION, **state}
    atomic_write_bytes(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: Path, identity: dict | None = None) -> dict:
    """Read and check a checkpoint; ``identity`` (rule, model, data) must match if given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, pickled objects
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a bioscale checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {state.get('version')}; this bioscale reads {VERSION}")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    if identity is not None and state["identity"] != identity:
        diffs = sorted(k for k in set(identity) | set(state["identity"]) if identity.get(k) != state["identity"].get(k))
        detail = "; ".join(f"{k}: checkpoint {state['identity'].get(k)!r} vs run {identity.get(k)!r}" for k in diffs)
        raise CheckpointError(f"checkpoint {path} belongs to a different run ({detail})")
    return state
