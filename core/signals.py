"""Hold back Ctrl-C (SIGINT) and SIGTERM while a run commits an epoch to disk.

Inside :func:`signals_held` both signals are only recorded; when the block ends the original
handlers are restored and the first recorded signal is handed to its handler (which raises),
so an interrupt never lands in the middle of a checkpoint, metrics or summary write. Python
runs signal handlers in the main thread whichever thread the OS delivers a signal to, so
this holds with torch's worker threads too. Outside the main thread it does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, signal._HANDLER] = {
        signum: signal.signal(signum, lambda signum, frame: caught.append(signum)) for signum in HELD
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:  # only when the block ended normally: an error in it is not masked
        handler = previous[caught[0]]
        if callable(handler):
            handler(caught[0], None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(caught[0])
