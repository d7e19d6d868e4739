"""Facts about the host CPU that choices and records depend on (Linux ``/proc/cpuinfo``)."""

from __future__ import annotations

from pathlib import Path


def cpuinfo_field(key: str) -> str | None:
    """The first ``key : value`` line's value in ``/proc/cpuinfo`` (e.g. ``vendor_id``,
    ``model name``), or None where there is no such file or field."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
