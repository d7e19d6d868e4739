"""One process at a time in a run folder: an exclusive ``flock`` on ``<run>/.lock``.

The lock file holds the owner's pid (for the messages). The kernel drops a ``flock`` when its
process dies, so the lock of a killed run is free again; taking it over says whose it was.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .errors import StorageError, UsageError

LOCK = ".lock"


@contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` of the file ``path`` (created if missing), waiting for its holder:
    the one writer among the processes of a machine (a sweep's workers, data loaders building a cache)."""
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class RunFolderBusy(UsageError):
    """Another live process trains this run folder."""


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._handle: TextIO | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunFolderBusy` naming the owner's pid."""
        if self._handle is not None:
            return
        try:
            handle = open(self.path, "a+")
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise RunFolderBusy(
                f"{self.path.parent} is in use by process {owner}; wait for it to end or stop it"
            ) from None
        except OSError as exc:
            handle.close()
            raise StorageError(f"cannot lock {self.path}: {exc.strerror or exc}") from exc
        handle.seek(0)
        previous = handle.read().strip()
        if previous and previous != str(os.getpid()):
            print(
                f"bioscale: taking over the run folder lock of process {previous}, which is no longer running",
                file=sys.stderr,
                flush=True,
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        finally:
            self._handle.close()
            self._handle = None
