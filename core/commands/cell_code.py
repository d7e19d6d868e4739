"""Does a cached ``reproduce`` cell come from the code installed now?

A cell's run folder records the code that trained it (``config.yaml``: ``run_info.code``, see
``provenance.code_fingerprint``). ``reproduce`` never reuses a finished cell silently when that
code differs from today's core, rule, or plugin architecture or data set sources: with
``stale=mark`` (the default) the cell is reused and its table row says what changed; with
``stale=retrain`` it is trained again.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..named_plugins import installed_fingerprints
from ..provenance import code_changes, code_fingerprint
from ..record import read_run_info

POLICIES = ("mark", "retrain")


def stale_policy(value: str | None) -> str:
    """The ``stale=`` option, checked: ``mark`` (default) or ``retrain``."""
    policy = value or "mark"
    if policy not in POLICIES:
        raise ConfigError(f"stale={policy!r}: valid values: {', '.join(POLICIES)}")
    return policy


def recorded_code(run_dir: Path) -> dict | None:
    """The code fingerprint a run folder's ``config.yaml`` records, or None (older runs, an unreadable file)."""
    try:
        return read_run_info(run_dir).get("code")
    except Exception:  # missing or unreadable config.yaml: nothing recorded
        return None


def changes_since(run_dir: Path, rule_name: str) -> list[str]:
    """What differs between the code that trained ``run_dir`` and the code installed now:
    ``[]`` when the same, e.g. ``["bioscale sources"]`` or ``["no code fingerprint recorded"]``."""
    recorded = recorded_code(run_dir)
    names = sorted((recorded or {}).get("rules") or {}) or [rule_name]
    try:
        current = code_fingerprint(names)
    except Exception:  # a rule the run used is not installed any more
        return [f"rule {name} not installed" for name in names]
    return code_changes(recorded, {**current, **installed_fingerprints(recorded or {})})


def note(changes: list[str]) -> str:
    """The table's mark for a row whose cells came from other code ('' when none did)."""
    return f" (trained by other code: {'; '.join(changes)})" if changes else ""
