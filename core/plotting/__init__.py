"""The PNG figures bioscale draws: learning curves (``compare``, ``reproduce``) and a sweep's
objective against each searched setting. Drawn on matplotlib ``Figure`` objects (no pyplot state).

matplotlib is imported on first use of a name below, not when a command imports this package."""

from __future__ import annotations

import importlib

_HOME = {
    "draw_curves": "curves",
    "plot_curves": "curves",
    "draw_sweep": "sweep",
    "plot_sweep": "sweep",
    "runs_title": "titles",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
