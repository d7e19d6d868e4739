"""Learning-curve plots (PNG) of one or more runs, drawn with matplotlib's Agg backend."""

from __future__ import annotations

import textwrap
from pathlib import Path


def _mean_angle(metrics: dict):
    angles = metrics.get("angle_to_bp")
    if not angles:
        return None
    values = [v for v in angles.values() if v is not None]
    return sum(values) / len(values) if values else None


def plot_curves(curves: dict[str, list[dict]], path: Path, title: str = "") -> Path:
    """``curves``: label → metrics lines. Test error (solid) and train error (dashed) per
    epoch; a second panel with the mean angle to BP when the diagnostics observer ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_angles = any(_mean_angle(m) is not None for lines in curves.values() for m in lines)
    has_inverse = any("inverse_error" in m for lines in curves.values() for m in lines)
    panels = 1 + has_angles + has_inverse
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2), squeeze=False)
    axes = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, lines) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        epochs = [m["epoch"] for m in lines]
        axes[0].plot(epochs, [m["test_error"] for m in lines], color=color, label=f"{label} test")
        train = [(m["epoch"], m["train_error"]) for m in lines if "train_error" in m]
        if train:
            axes[0].plot(*zip(*train), color=color, linestyle="--", alpha=0.6, label=f"{label} train")
        k = 1
        if has_angles:
            pts = [(m["epoch"], _mean_angle(m)) for m in lines if _mean_angle(m) is not None]
            if pts:
                axes[k].plot(*zip(*pts), color=color, label=label)
            k += 1
        if has_inverse:
            pts = [(m["epoch"], sum(m["inverse_error"].values()) / len(m["inverse_error"])) for m in lines if m.get("inverse_error")]
            if pts:
                axes[k].plot(*zip(*pts), color=color, label=label)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("error (%)")
    axes[0].set_yscale("log")
    axes[0].set_title(textwrap.fill(title, 70) if title else "learning curves", fontsize="small" if len(title) > 70 else None)
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].grid(True, which="both", alpha=0.3)
    k = 1
    if has_angles:
        axes[k].set_xlabel("epoch")
        axes[k].set_ylabel("mean angle to BP gradient (degrees)")
        axes[k].set_title("update alignment with BP")
        axes[k].legend(fontsize=7)
        axes[k].grid(True, alpha=0.3)
        k += 1
    if has_inverse:
        axes[k].set_xlabel("epoch")
        axes[k].set_ylabel("inverse reconstruction error (MSE)")
        axes[k].set_yscale("log")
        axes[k].set_title("inverse models")
        axes[k].legend(fontsize=7)
        axes[k].grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
