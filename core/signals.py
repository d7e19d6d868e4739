"""Hold back Ctrl-C (SIGINT) and SIGTERM while a run commits an epoch to disk.

Inside :func:`signals_held` both signals stay pending at the OS level; they are delivered, and
their Python handlers raise, as soon as the block ends, so an interrupt never lands in the
middle of a checkpoint, metrics or summary write. Outside the main thread it does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading

HELD = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def signals_held():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
