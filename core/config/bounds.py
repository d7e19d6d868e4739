"""Value ranges declared on config fields, checked before any work starts.

A config dataclass (the core's, or any rule's or observer's ``Config``) declares a field's
range with :func:`bounded` in place of a plain default::

    sigma: float = bounded(0.1, low=0)                 # sigma >= 0
    alpha: float = bounded(0.1, low=0, low_open=True)  # alpha > 0
    widths: List[int] = bounded(default_factory=..., low=1)  # every element >= 1

:func:`check_bounds` walks a structured config (nested sections and lists of sections
included) and raises :class:`ConfigError` naming the first key out of range, its value and
the range. ``None`` (an optional field left unset) is always admitted. A dataclass may
also define ``check_fields(section, where)`` (a static method) for checks across its fields
(e.g. ``OptimizerConfig``: Nesterov needs momentum); it is called after its fields' ranges
pass and raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from ..errors import ConfigError


@dataclass(frozen=True)
class Bounds:
    """``low <= v <= high`` (either side may be absent or open)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, value) -> bool:
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        if self.high is not None and not (value < self.high if self.high_open else value <= self.high):
            return False
        return True

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        return f"{'<' if self.high_open else '<='} {self.high}"


def bounded(
    default=dataclasses.MISSING,
    *,
    default_factory=dataclasses.MISSING,
    low=None,
    high=None,
    low_open: bool = False,
    high_open: bool = False,
):
    """A dataclass field whose value (or, for a list, each element) must lie in the range."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={"bounds": Bounds(low, high, low_open, high_open)}
    )


def check_bounds(cfg: DictConfig, where: str) -> None:
    """Raise ``ConfigError("<where>.<key> must be <range>, got <value>")`` for the first
    value outside its declared range; ``where`` is the config's own prefix (e.g. ``rules.dtp``,
    or ``""`` for the top level)."""
    cls = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(cls):
        return
    for f in dataclasses.fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if OmegaConf.is_missing(cfg, f.name):  # a required value not given yet (e.g. rule)
            continue
        value = cfg[f.name]
        bounds = f.metadata.get("bounds")
        items = enumerate(value) if isinstance(value, ListConfig) else [(None, value)]
        for i, item in items:
            item_key = key if i is None else f"{key}[{i}]"
            if isinstance(item, DictConfig):
                check_bounds(item, item_key)
            elif isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{item_key} must be a finite number, got {item!r}")
            elif bounds is not None and item is not None and not bounds.admits(item):
                raise ConfigError(f"{item_key} must be {bounds.describe()}, got {item!r}")
    check_fields = getattr(cls, "check_fields", None)
    if check_fields is not None:
        check_fields(cfg, where)
