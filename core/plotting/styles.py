"""One (colour, line style) per curve label, distinct for any number of labels."""

from __future__ import annotations

import colorsys

# tab20's dark shades (tab10) first, then its light ones, so up to 10 labels get tab10
_TAB20 = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]
LINESTYLES = ("-", "--", ":", "-.")


def palette(n: int) -> list[str]:
    """``n`` distinct colours: tab10, then tab20's light shades, past 20 evenly spaced hues."""
    if n <= len(_TAB20):
        return _TAB20[:n]
    colours = []
    for i in range(n):  # neighbours alternate between a dark and a light shade of nearby hues
        r, g, b = colorsys.hls_to_rgb(i / n, 0.35 if i % 2 else 0.55, 0.8)
        colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colours


def label_styles(labels: list[str]) -> dict[str, dict]:
    """``label`` → ``{"color", "linestyle"}`` keyword arguments for ``Axes.plot``, in the labels'
    order: every colour differs, and consecutive labels also differ in line style."""
    colours = palette(len(labels))
    return {
        label: {"color": colours[i], "linestyle": LINESTYLES[i % len(LINESTYLES)]} for i, label in enumerate(labels)
    }
