"""The built-in architectures as entry point objects: one :class:`Architecture` per preset.

Each ``PRESETS`` entry (``presets.py``) is an attribute of this module, declared in the root
``pyproject.toml`` as ``NAME = "bioscale.architectures.catalog:NAME"`` under
``bioscale.architectures``, so ``model=NAME`` finds the built-ins as it finds a third party's.
"""

from __future__ import annotations

from .architecture import Architecture
from .presets import DESCRIPTIONS, PRESETS

ARCHITECTURES: dict[str, Architecture] = {
    name: Architecture(DESCRIPTIONS.get(name, ""), config=values) for name, values in PRESETS.items()
}


def __getattr__(name: str) -> Architecture:
    """``catalog.NAME``: the built-in architecture of preset ``NAME`` (what the entry points name)."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
