"""datasets/ is layered: no import cycle (at any level, function-level imports included), and
the normalisation choices are made in one place (datasets/normalize.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from bioscale.config.schema import Normalization
from bioscale.datasets.normalize import KINDS, channel_norm
from bioscale.errors import DataError

DATASETS = Path(__file__).resolve().parents[1] / "datasets"


def _imports(path: Path) -> set[str]:
    """The sibling modules ``path`` imports (``from .x import ...``, ``from . import x``), anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found


def test_datasets_modules_import_each_other_without_a_cycle():
    graph = {p.stem: _imports(p) for p in DATASETS.glob("*.py")}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(trail + [module])}"
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            visit(other, trail + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_only_normalize_py_decides_what_each_normalisation_means():
    for path in DATASETS.glob("*.py"):
        if path.name != "normalize.py":
            text = path.read_text()
            assert all(f'"{kind}"' not in text for kind in KINDS), f"{path.name} names a normalisation kind"


def test_the_three_kinds():
    def stats():
        return torch.tensor([0.5, 0.25], dtype=torch.float64), torch.tensor([0.2, 0.1], dtype=torch.float64)

    standard = channel_norm(Normalization.standardize, 2, 255, stats)
    assert standard.mean.tolist() == [0.5, 0.25] and standard.std.tolist() == [0.2, 0.1]
    scaled = channel_norm("scale", 2, 255, stats)
    assert scaled.mean.tolist() == [0, 0] and scaled.std.tolist() == [1, 1]
    raw = channel_norm("none", 2, 16, stats)
    assert raw.std.tolist() == [1 / 16, 1 / 16] and raw.record() == {
        "kind": "none",
        "max_value": 16.0,
        "mean": [0.0, 0.0],
        "std": [0.0625, 0.0625],
    }
    with pytest.raises(DataError, match="data.normalize='zscore'; valid: standardize, scale, none"):
        channel_norm("zscore", 2, 255, stats)
