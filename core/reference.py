"""The paper's reported errors (Bartunov et al. 2018, Table 1), read from ``paper_results.json``.

The file is data keyed by data set, net (``fc``, ``lc``, ``conv``: the suffix of a model
preset such as ``mnist_fc``) and row label; a rule declares its row label (``paper_row``,
see ``hookspecs.py``), so nothing here knows a rule by name.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def paper_results() -> dict:
    """The parsed ``paper_results.json``: ``{"source", "rows", "results": {data: {net: {row: {...}}}}}``."""
    return json.loads(Path(__file__).with_name("paper_results.json").read_text())


def net_of(model_preset: str | None) -> str | None:
    """``"fc"`` for ``mnist_fc`` and the like; None for a preset without a net suffix."""
    return model_preset.rsplit("_", 1)[-1] if model_preset and "_" in model_preset else None


def paper_result(data: str, model_preset: str | None, row: str | None) -> dict | None:
    """The paper's errors for ``row`` on this data and net (``test_error``, and ``train_error``
    or ``test_top5_error`` where printed), or None when the paper has no such cell."""
    if row is None:
        return None
    return paper_results()["results"].get(data, {}).get(net_of(model_preset), {}).get(row)


def paper_test_error(data: str, model_preset: str | None, row: str | None) -> float | None:
    found = paper_result(data, model_preset, row)
    return None if found is None else found["test_error"]


def row_rank(row: str | None) -> int:
    """Position of ``row`` in the paper's row order; rows the paper lacks come after all of them."""
    rows = paper_results()["rows"]
    return rows.index(row) if row in rows else len(rows)
