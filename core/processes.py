"""Whether a process is still running (for temp files, locks and sweep trials it left)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while a process ``pid`` exists on this host (also one of another user's)."""
    if pid <= 0:  # os.kill would address a process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
