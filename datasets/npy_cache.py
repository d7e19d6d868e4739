"""Downsampled ImageNet's npz batches as one memory-mapped copy per machine.

The npz batches are converted once into raw arrays in a cache folder: ``train_x.npy``
``(N, 3, S, S)`` uint8, ``train_y.npy`` ``(N,)`` int64 in ``0..999``, ``val_x.npy``, ``val_y.npy``
and, written last, ``manifest.json`` (each source file's name, size and mtime; the row counts).
A cache whose manifest does not match today's source files is not used.

- One writer: the conversion runs under an exclusive ``flock`` of ``<cache>/.lock``; processes
  started together (torchrun's ranks) wait there and then open what the first one wrote.
- No partial cache: every file is written to ``<name>.tmp-<pid>``, fsynced and renamed; the old
  manifest is removed before any array is replaced, so a process killed mid-write leaves a
  cache without a manifest, rebuilt (and its temp files removed) by the next loader.
- No transient copies: each npz member is streamed into the mapped output a chunk at a time.
- One copy in memory: readers map the arrays (``np.load(mmap_mode="r")``), so the OS page cache
  holds the pixels once for every process on the machine.

On a shared file system the machines share the cache files (``flock`` works over NFS) and each
machine's page cache holds its own copy.

Where: ``$BIOSCALE_DATA_CACHE/<name>-<hash of root>`` when that variable is set; else
``<data.root>/.bioscale-cache/<name>`` (used read-only if complete), or, where the data folder
cannot be written, ``$XDG_CACHE_HOME`` (``~/.cache``) ``/bioscale/<name>-<hash of root>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from bioscale.run_lock import waiting_lock

from .errors import DataError
from .sources import read_arrays

FORMAT = 1
CLASSES = 1000
COPY_BYTES = 1 << 24  # bytes streamed from an npz member at a time
ARRAYS = ("train_x", "train_y", "val_x", "val_y")


def _stamp(files: list[Path]) -> list[list]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def candidates(root: Path, name: str) -> list[Path]:
    """The cache folders to try, in order (see the module docstring)."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    env = os.environ.get("BIOSCALE_DATA_CACHE")
    if env:
        return [Path(env).expanduser() / f"{name}-{digest}"]
    home = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return [root / ".bioscale-cache" / name, home / "bioscale" / f"{name}-{digest}"]


def read_manifest(folder: Path, sources: list[list], side: int) -> dict | None:
    """The manifest of a complete cache of these ``sources``, else None."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    want = {"format": FORMAT, "side": side, "sources": sources}
    ok = isinstance(manifest, dict) and all(manifest.get(k) == v for k, v in want.items())
    return manifest if ok else None


@contextmanager
def _member(archive: zipfile.ZipFile, path: Path, key: str):
    """``(stream, shape, dtype)`` of the npz member ``key``, the stream just past the .npy header."""
    with archive.open(f"{key}.npy") as stream:
        version = np.lib.format.read_magic(stream)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(stream)
        if fortran:
            raise DataError(f"{path}: '{key}' is stored in Fortran order; a downsampled ImageNet batch is C order")
        yield stream, shape, dtype


def scan(path: Path, side: int) -> tuple[int, np.ndarray]:
    """``(rows, labels (N,) int64 in 0..999)`` of one npz batch, its pixels' header checked, not read."""
    (labels,) = read_arrays(path, ("labels",), "a downsampled ImageNet batch")
    with zipfile.ZipFile(path) as archive:
        if "data.npy" not in archive.namelist():
            raise DataError(f"{path}: missing arrays ['data']; a downsampled ImageNet batch needs ['data', 'labels']")
        with _member(archive, path, "data") as (_, shape, dtype):
            if dtype != np.uint8 or len(shape) != 2 or shape[1] != 3 * side * side:
                raise DataError(
                    f"{path}: 'data' must be uint8 (N, {3 * side * side}) for {side}x{side} images; got {dtype} {shape}"
                )
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: 'labels' must be (N,) integers with N = {shape[0]}; got {labels.dtype} {labels.shape}"
        )
    bad = (labels < 1) | (labels > CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: labels[{i}] = {int(labels[i])} is not a class (1..{CLASSES}); {int(bad.sum())} such label(s)"
        )
    return shape[0], labels.astype(np.int64) - 1


def copy_pixels(path: Path, out: np.ndarray) -> None:
    """Stream the pixels of npz batch ``path`` into ``out`` (its rows, any shape, uint8), a chunk at a time."""
    view = out.reshape(-1).data.cast("B")  # the rows, contiguous
    with zipfile.ZipFile(path) as archive, _member(archive, path, "data") as (stream, _, _):
        done = 0
        while done < len(view):
            got = stream.readinto(view[done : done + COPY_BYTES])
            if not got:
                raise DataError(f"{path}: 'data' ends after {done} of {len(view)} bytes (a cut-off file)")
            done += got


def _commit(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)


def _write_split(folder: Path, prefix: str, files: list[Path], side: int) -> int:
    scanned = [scan(p, side) for p in files]
    rows = sum(n for n, _ in scanned)
    tmp = folder / f"{prefix}_x.npy.tmp-{os.getpid()}"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(rows, 3, side, side))
    start = 0
    for path, (n, _) in zip(files, scanned):
        copy_pixels(path, out[start : start + n])
        start += n
    out.flush()
    del out
    _commit(tmp, folder / f"{prefix}_x.npy")
    tmp = folder / f"{prefix}_y.npy.tmp-{os.getpid()}"
    with open(tmp, "wb") as handle:
        np.save(handle, np.concatenate([labels for _, labels in scanned]))
    _commit(tmp, folder / f"{prefix}_y.npy")
    return rows


def build(folder: Path, train: list[Path], val: list[Path], side: int, sources: list[list]) -> dict:
    """Convert the npz batches into ``folder`` (the caller holds its lock); returns the manifest."""
    (folder / "manifest.json").unlink(missing_ok=True)  # from here on the folder is not a cache
    for stale in folder.glob("*.tmp-*"):  # left by a process killed mid-write (we hold the lock)
        stale.unlink()
    manifest = {"format": FORMAT, "side": side, "sources": sources}
    try:
        manifest["train"] = _write_split(folder, "train", train, side)
        manifest["val"] = _write_split(folder, "val", val, side)
        tmp = folder / f"manifest.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(manifest))
        _commit(tmp, folder / "manifest.json")
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as exc:  # a bad source file, a full disk, Ctrl-C: no temp file stays behind
        for stale in folder.glob(f"*.tmp-{os.getpid()}"):
            stale.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        raise DataError(
            f"cannot write the data cache {folder} ({exc.strerror or exc}); "
            "free disk space there or set BIOSCALE_DATA_CACHE to another folder"
        ) from exc
    return manifest


def locked(folder: Path):
    """Hold an exclusive ``flock`` of ``folder/.lock`` (waits for the holder)."""
    return waiting_lock(folder / ".lock")


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def open_arrays(folder: Path, manifest: dict) -> dict[str, np.ndarray] | None:
    """The cache's arrays, memory-mapped read-only; None if a file is missing, damaged or not the
    manifest's shape."""
    rows = {"train": manifest["train"], "val": manifest["val"]}
    side = manifest["side"]
    try:
        arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in ARRAYS}
    except (OSError, ValueError):
        return None
    for split, n in rows.items():
        if arrays[f"{split}_x"].shape != (n, 3, side, side) or arrays[f"{split}_y"].shape != (n,):
            return None
    return arrays


def _complete(folder: Path, sources: list[list], side: int) -> dict[str, np.ndarray] | None:
    manifest = read_manifest(folder, sources, side)
    return open_arrays(folder, manifest) if manifest else None


def cached_arrays(root: Path, name: str, side: int, train: list[Path], val: list[Path]) -> tuple[Path, dict]:
    """``(folder, arrays)``: the cache of these npz batches (``ARRAYS``: pixels ``(N, 3, S, S)`` uint8
    mapped read-only, labels ``(N,)`` int64 mapped), built first if no complete one exists."""
    sources = _stamp(train + val)
    folders = candidates(root, name)
    for folder in folders:
        arrays = _complete(folder, sources, side)
        if arrays is not None:
            return folder, arrays
    target = next((f for f in folders if _writable(f)), None)
    if target is None:
        raise DataError(
            f"{name}: no folder to cache the npz batches as .npy in (tried {', '.join(map(str, folders))}); "
            "set BIOSCALE_DATA_CACHE to a writable folder"
        )
    target.mkdir(parents=True, exist_ok=True)
    with locked(target):
        arrays = _complete(target, sources, side)  # another process may have built it meanwhile
        if arrays is None:
            arrays = open_arrays(target, build(target, train, val, side, sources))
    if arrays is None:
        raise DataError(f"{name}: the data cache {target} was written but cannot be read back")
    return target, arrays
