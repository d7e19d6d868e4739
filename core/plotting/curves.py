"""Learning curves of one or more runs as small multiples: a panel per quantity (test error,
train error, and the diagnostics observer's angle to BP and inverse error when they were
recorded), a curve per label with its own colour and line style, one legend beside the panels."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .axes import error_axis
from .styles import label_styles


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


# (panel title, y label, value of one metrics line or None, y axis: "error" (%), "loss" or "linear")
PANELS = (
    ("test error", "test error", lambda m: m.get("test_error"), "error"),
    ("train error", "train error", lambda m: m.get("train_error"), "error"),
    (
        "update alignment with BP",
        "mean angle to BP gradient (degrees)",
        lambda m: _mean((m.get("angle_to_bp") or {}).values()),
        "linear",
    ),
    (
        "inverse models",
        "mean inverse reconstruction error (MSE)",
        lambda m: _mean((m.get("inverse_error") or {}).values()),
        "loss",
    ),
)


def _points(lines: list[dict], value) -> list[tuple]:
    return [(m["epoch"], v) for m in lines if (v := value(m)) is not None]


def draw_curves(curves: dict[str, list[dict]], title: str) -> Figure:
    """A figure of ``curves`` (label → metrics lines, each with ``epoch``): the error panels and
    the other ``PANELS`` that any label has values for, 2 per row, titled ``title``, legend on the right."""
    if not curves:
        raise ValueError("draw_curves: no curves given (a label → metrics lines mapping is needed)")
    # the error panels always (empty when every run diverged in its first epoch), others when recorded
    panels = [p for p in PANELS if p[3] == "error" or any(_points(lines, p[2]) for lines in curves.values())]
    styles = label_styles(list(curves))
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    legend_width = 1.2 + 0.07 * max(len(label) for label in curves)
    fig = Figure(figsize=(5.2 * cols + legend_width, 3.6 * rows + 0.5), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False, sharex=True).flat)
    for ax, (panel_title, ylabel, value, kind) in zip(axes, panels):
        drawn = []
        for label, lines in curves.items():
            points = _points(lines, value)
            if points:
                ax.plot(*zip(*points), label=label, linewidth=1.6, **styles[label])
                drawn += [y for _, y in points]
        if kind != "linear":  # errors in percent, losses unitless: log only where they span decades
            error_axis(ax, drawn, unit="%" if kind == "error" else "")
        ax.set_title(panel_title)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("epoch")
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.axis("off")
    handles = [Line2D([], [], linewidth=1.6, **styles[label]) for label in curves]
    labels = [label if lines else f"{label} (no epoch finished)" for label, lines in curves.items()]
    fig.legend(handles, labels, loc="outside right upper", fontsize="small")
    fig.suptitle(title)
    return fig


def plot_curves(curves: dict[str, list[dict]], path: Path, title: str) -> Path:
    """Draw ``curves`` (see :func:`draw_curves`) into the PNG ``path``; return it."""
    fig = draw_curves(curves, title)
    fig.savefig(path, dpi=110)
    return Path(path)
