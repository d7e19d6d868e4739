"""Error axes with plain tick labels (``2%``, ``5%``, ``10%``; ``0.05`` for a loss), never ``4 × 10¹``."""

from __future__ import annotations

import math

from matplotlib import ticker

# a log axis pays off only when the values span this ratio; below it the axis is linear
LOG_SPAN = 5.0


def plain_label(value: float, unit: str = "") -> str:
    """A tick value as plain text with ``unit``: ``0.5%``, ``20%``, ``0.001``."""
    return f"{float(f'{value:.3g}'):g}{unit}"


def _steps(low: float, high: float) -> list[float]:
    """1-2-5 values (1-3 past 2 decades, powers of 10 past 3) from the decade below ``low`` to
    the decade above ``high``: about 4 to 8 ticks."""
    decades = math.log10(high / low)
    mantissas = (1, 2, 5) if decades <= 2 else (1, 3) if decades <= 3 else (1,)
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [m * 10.0**exponent for m in mantissas]
    return ticks


def error_axis(ax, values: list[float], axis: str = "y", unit: str = "%") -> str:
    """Scale one axis of ``ax`` for the errors ``values`` (in ``unit``) and label its ticks plainly.

    Log when the positive values span at least ``LOG_SPAN`` (symlog with a ``0%`` tick when some
    are zero), linear otherwise. Returns the scale set: ``"linear"``, ``"log"`` or ``"symlog"``."""
    positive = [v for v in values if v is not None and v > 0]
    has_zero = any(v is not None and v <= 0 for v in values)
    setter = ax.set_yscale if axis == "y" else ax.set_xscale
    target = ax.yaxis if axis == "y" else ax.xaxis
    if not positive or max(positive) / min(positive) < LOG_SPAN:
        setter("linear")
        target.set_major_locator(ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        scale = "linear"
    else:
        low, high = min(positive), max(positive)
        ticks = [t for t in _steps(low, high) if low / 1.5 <= t <= high * 1.5]
        if has_zero:
            linthresh = 10.0 ** math.floor(math.log10(low))
            setter("symlog", linthresh=linthresh, linscale=0.5)
            ticks = [0.0, *ticks]
            scale = "symlog"
        else:
            setter("log")
            scale = "log"
        target.set_major_locator(ticker.FixedLocator(ticks))
        target.set_minor_locator(ticker.NullLocator())
    target.set_major_formatter(ticker.FuncFormatter(lambda value, _pos: plain_label(value, unit)))
    target.set_minor_formatter(ticker.NullFormatter())
    return scale
