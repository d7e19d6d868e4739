"""Atomic, checksummed checkpoint files and their validation.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``weights_only=True`` (tensors, numbers, strings, lists, dicts: no pickled code). It carries
``format``, ``version`` and ``sha256``, a digest of everything else (keys, dtypes, shapes,
tensor bytes, numbers) checked on load. It is serialised in memory, written to a temporary
file in the same folder, flushed to disk, then renamed over the old one, so a crash never
leaves a half-written checkpoint behind and an ``OSError`` (disk full, read-only folder)
surfaces as itself.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
from pathlib import Path

import torch

from .errors import CheckpointError, StorageError
from .processes import pid_alive

FORMAT = "bioscale-checkpoint"
VERSION = 2
REQUIRED = ("format", "version", "sha256", "epoch", "global_step", "identity", "model", "optimizer", "rule", "rng")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync, then rename it to ``path``.
    An ``OSError`` becomes a :class:`StorageError` naming the path; ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
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


def _feed(digest, value) -> None:
    """Feed ``value`` (a checkpoint's nested dicts, lists, tensors and scalars) into ``digest``
    deterministically: dict keys in sorted order, tensors as dtype, shape and raw bytes."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"S{type(value).__name__}:{value!r}".encode())


def state_digest(state: dict) -> str:
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != "sha256"})
    return digest.hexdigest()


class UnloadableState(ValueError):
    """State a checkpoint cannot hold, or holds but bioscale will not unpickle; a plain message."""


ALLOWED = "a checkpoint holds only tensors, numbers, strings, lists and dicts"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain_text(exc: BaseException) -> str:
    """The first line of ``exc``'s message without terminal colour codes."""
    return (ANSI.sub("", str(exc)).strip().splitlines() or [""])[0]


def _path_to(value, qualname: str, path: str = "", depth: int = 0) -> str | None:
    """Where in nested dicts / lists ``value`` an object of type (or being a class or function)
    ``qualname`` sits, e.g. ``['thing']``; None if not found."""
    names = {f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', '')}" for v in (value, type(value))}
    if qualname in names:  # an instance of that class, or the class or function itself
        return path or "the state itself"
    if depth > 20:
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _path_to(item, qualname, f"{path}[{key!r}]", depth + 1)
        if found:
            return found
    return None


def serialize(value) -> bytes:
    """``torch.save`` of ``value`` into bytes; an object pickle cannot save is an :class:`UnloadableState`."""
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:  # lambdas, local classes, open files
        raise UnloadableState(f"it cannot be saved ({plain_text(exc)}); {ALLOWED}") from exc
    return buffer.getvalue()


def loads_safely(data: bytes, value=None):
    """``torch.load`` of ``data`` with ``weights_only=True``. A pickled object is an
    :class:`UnloadableState` naming its type (and where in ``value``, the state that was saved,
    when given); anything else raises what torch raises."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.<>]+)", str(exc))
        if not found:
            raise
        where = _path_to(value, found.group(1)) if value is not None else None
        at = f" at {where}" if where else ""
        raise UnloadableState(
            f"it holds a {found.group(1)} object{at}, which bioscale does not load; {ALLOWED}"
        ) from exc


def check_loadable(value) -> None:
    """Raise :class:`UnloadableState` (naming the culprit's type and place) unless ``value``
    saves and loads back with ``weights_only=True``."""
    loads_safely(serialize(value), value)


def save_checkpoint(path: Path, state: dict) -> None:
    payload = {"format": FORMAT, "version": VERSION, **state}
    payload["sha256"] = state_digest(payload)
    atomic_write_bytes(path, serialize(payload))


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove temp files ``.<name>.tmp-<pid>`` (e.g. ``.checkpoint.pt.tmp-123``) whose process
    is gone (left by a SIGKILL during a write); return them."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _check_counter(state: dict, key: str, path: Path, low: int) -> None:
    value = state.get(key)
    if type(value) is not int or value < low:
        raise CheckpointError(f"checkpoint {path}: {key} is {value!r}; expected an integer >= {low}")


def load_checkpoint(path: Path, identity: dict | None = None) -> dict:
    """Read and check a checkpoint; ``identity`` (rule, model, data) must match if given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = loads_safely(path.read_bytes())
    except UnloadableState as exc:  # pickled objects: not written by bioscale, or edited
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {exc}") from exc
    except Exception as exc:  # truncated zip, garbage bytes
        detail = f"{type(exc).__name__}: {plain_text(exc)}"
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({detail})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a bioscale checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {state.get('version')}; this bioscale reads {VERSION}"
        )
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    if state["sha256"] != state_digest(state):
        raise CheckpointError(f"checkpoint {path} fails its checksum: its contents changed after it was written")
    _check_counter(state, "epoch", path, 1)
    _check_counter(state, "global_step", path, 0)
    if identity is not None:
        check_identity(state, identity, path)
    return state


def check_identity(state: dict, identity: dict, path: Path) -> None:
    """A :class:`CheckpointError` naming each difference unless the checkpoint ``state`` was
    written by a run with this ``identity`` (rule, data, model, shapes, seed)."""
    if state["identity"] != identity:
        diffs = sorted(k for k in set(identity) | set(state["identity"]) if identity.get(k) != state["identity"].get(k))
        detail = "; ".join(f"{k}: checkpoint {state['identity'].get(k)!r} vs run {identity.get(k)!r}" for k in diffs)
        raise CheckpointError(f"checkpoint {path} belongs to a different run ({detail})")
