"""A sweep's objective (best validation error) against each searched setting, a panel per
setting with the axis its distribution calls for: log for log-uniform, categories for choices,
whole numbers for ints. The best trial is starred in every panel."""

from __future__ import annotations

import ast
import math
import shlex
from pathlib import Path

from matplotlib import ticker
from matplotlib.figure import Figure

from .axes import error_axis

KIND_NAMES = {"loguniform": "log-uniform", "uniform": "uniform", "int": "int", "choice": "choice"}


def parse_declared(declared: str) -> tuple[str, tuple]:
    """``"loguniform:(1e-05, 0.0003)"`` (a study's recorded space entry) → ``("loguniform", (1e-05, 0.0003))``;
    an entry that does not parse → ``("", ())``."""
    kind, _, values = str(declared).partition(":")
    try:
        parsed = ast.literal_eval(values)
    except (ValueError, SyntaxError):
        return "", ()
    return (kind, tuple(parsed)) if kind in KIND_NAMES and isinstance(parsed, tuple) else ("", ())


def _categories(values: tuple, drawn: list) -> list:
    """The choices in ascending order when all are numbers, else as declared; drawn values
    outside them (a study from an older space) appended."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    order = sorted(values) if numbers else list(values)
    return order + [v for v in dict.fromkeys(drawn) if v not in order]


def _panel(ax, key: str, kind: str, values: tuple, xs: list, ys: list, best: int | None) -> None:
    """Scatter ``ys`` (error %) against ``xs`` on the axis ``kind`` calls for; star index ``best``."""
    if kind == "choice" or (not kind and any(isinstance(x, (str, bool)) for x in xs)):
        cats = _categories(values, xs)
        jitter = [((i * 0.618) % 1 - 0.5) * 0.3 for i in range(len(xs))]  # spread the points of a category
        xs = [cats.index(x) + j for x, j in zip(xs, jitter)]
        ax.set_xticks(range(len(cats)), [f"{c:g}" if isinstance(c, float) else str(c) for c in cats])
        ax.set_xlim(-0.5, len(cats) - 0.5)
    elif kind == "loguniform":
        ax.set_xscale("log")
        ax.set_xlim(values[0] / 1.2, values[1] * 1.2)
    elif kind in ("int", "uniform"):
        pad = max(0.5 if kind == "int" else 0.0, (values[1] - values[0]) * 0.05)
        ax.set_xlim(values[0] - pad, values[1] + pad)
        if kind == "int":
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.scatter(xs, ys, s=16, alpha=0.8)
    if best is not None:
        ax.scatter([xs[best]], [ys[best]], marker="*", s=120, color="tab:red", zorder=3, label="best trial")
    ax.set_xlabel(f"{key}  ({KIND_NAMES.get(kind, 'not declared')})", fontsize=8)
    ax.grid(True, alpha=0.3)


def rule_of(keys: list[str], command: str) -> str:
    """The rule a sweep trained: its command's ``rule=`` token, else the ``rules.<name>.`` keys'."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = []
    named = [t.split("=", 1)[1] for t in tokens if t.startswith("rule=")]
    from_keys = sorted({k.split(".")[1] for k in keys if k.startswith("rules.") and k.count(".") >= 2})
    return named[-1] if named else ", ".join(from_keys) or "?"


def draw_sweep(rows: list[dict], space: dict, study: str, command: str = "") -> Figure | None:
    """``rows`` (the report's trial rows: ``status``, ``settings``, ``best_val_error`` in %) against
    each setting in ``space`` (config key → recorded ``"kind:(values)"``) or drawn by a trial;
    ``None`` when no trial completed."""
    done = [r for r in rows if r["status"] == "complete" and r["best_val_error"] is not None]
    keys = sorted({*space, *(k for r in rows for k in r["settings"])})
    if not done or not keys:
        return None
    rule = rule_of(keys, command)
    prefix = f"rules.{rule}."
    cols = min(3, len(keys))
    n_rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * n_rows + 0.7), layout="constrained")
    axes = list(fig.subplots(n_rows, cols, squeeze=False, sharey=True).flat)
    ys = [r["best_val_error"] for r in done]
    best = ys.index(min(ys))
    for ax, key in zip(axes, keys):
        kind, values = parse_declared(space.get(key, ""))
        have = [i for i, r in enumerate(done) if key in r["settings"]]
        xs = [done[i]["settings"][key] for i in have]
        starred = have.index(best) if best in have else None
        _panel(ax, key.removeprefix(prefix), kind, values, xs, [ys[i] for i in have], starred)
        error_axis(ax, ys)
    for ax in axes[::cols]:
        ax.set_ylabel("best validation error")
    for ax in axes[len(keys) :]:
        ax.axis("off")
    counts = {s: sum(r["status"] == s for r in rows) for s in dict.fromkeys(r["status"] for r in rows)}
    fig.suptitle(
        f"Sweep study {study}: best validation error of each trial (rule {rule}; "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + "; best starred)"
    )
    return fig


def plot_sweep(path: Path, rows: list[dict], space: dict, study: str, command: str = "") -> Path | None:
    """Draw :func:`draw_sweep` into the PNG ``path``; nothing (``None``) when no trial completed."""
    fig = draw_sweep(rows, space, study, command)
    if fig is None:
        return None
    fig.savefig(path, dpi=90)
    return Path(path)
