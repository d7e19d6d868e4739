"""Settings added after cells were cached: a cache key leaves them out while they hold their defaults, so a
cell trained before a field existed keeps its key (``reproduce``'s cell cache, ``commands/reproduce.py``)."""

from __future__ import annotations


def plain_default(value):
    """An enum default as its value, anything else as it is (how a plain config dict holds it)."""
    return getattr(value, "value", value)


def without_defaults(plain: dict, defaults, fields: tuple) -> dict:
    """``plain`` without the keys in ``fields`` whose value equals ``defaults``'s attribute of that name."""
    return {k: v for k, v in plain.items() if k not in fields or v != plain_default(getattr(defaults, k))}
