"""What an entry point of the group ``bioscale.datasets`` names.

A data set is any object with ``description`` (one line for ``bioscale datasets``) and
``load(cfg, device) -> DataBundle``: ``cfg`` is the run's resolved ``data`` config section
(``cfg.name`` is the entry point's name; ``root``, ``validation``, ``limit_train``, ``normalize``,
``augment``, ... as documented in the schema), ``device`` the training device. Data held as arrays
can be handed to :func:`bioscale.datasets.from_arrays`, which applies those settings.
:class:`DataSet` is such an object; plugins may use it or any object of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .in_memory import DataBundle

Loader = Callable[..., DataBundle]


@dataclass(frozen=True)
class DataSet:
    """A named data set for ``data=NAME``: its description and its loader ``load(cfg, device)``."""

    description: str
    load: Loader


def contract_error(obj) -> str | None:
    """Why ``obj`` is not a data set (None: it is one)."""
    if not isinstance(getattr(obj, "description", None), str):
        return "it has no description (a str)"
    if not callable(getattr(obj, "load", None)):
        return "it has no load(cfg, device) function"
    return None
