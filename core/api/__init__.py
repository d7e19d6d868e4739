"""The Python API (re-exported by ``bioscale``): train, resume, compare and sweep from Python, read
any run folder, and register rules, architectures and data sets written in Python."""

from __future__ import annotations

from ..discovery import ARCHITECTURES_GROUP, DATASETS_GROUP, OBSERVERS_GROUP
from ..local_plugins import register
from . import objects
from .results import Comparison, Run, Sweep
from .training import compare, load_run, resume, sweep, train


def register_rule(cls: type, name: str | None = None) -> str:
    """Make the rule class ``cls`` a rule of this process (no packaging); returns its name (``name``,
    else its ``name`` attribute, else its class name in lower case): ``rule=<name>`` and its settings
    ``rules.<name>.<key>``. The class is checked as an installed rule's is when a run loads it."""
    if name is not None:
        from ..discovery import RULES_GROUP

        register(RULES_GROUP, name, cls)
        return name
    return objects.rule_name(cls)


def register_architecture(name: str, model: object) -> str:
    """Make ``model`` (a ``torch.nn.Module`` or an architecture object) the architecture ``name`` of
    this process (``model=<name>``); returns ``name``."""
    if hasattr(model, "description"):
        register(ARCHITECTURES_GROUP, name, model)
        return name
    return objects.model_name(model, name)


def register_observer(cls: type, name: str) -> str:
    """Make the observer class ``cls`` the observer ``name`` of this process; like an installed one it is
    on in every later run of the process unless ``observers.<name>.enabled=false``. Returns ``name``."""
    register(OBSERVERS_GROUP, name, cls)
    return name


def register_dataset(name: str, data: object) -> str:
    """Make ``data`` (arrays, a pair of torch Datasets or a data-set object; see :func:`train`) the
    data set ``name`` of this process (``data=<name>``); returns ``name``."""
    if hasattr(data, "description") and callable(getattr(data, "load", None)):
        register(DATASETS_GROUP, name, data)
        return name
    return objects.data_name(data, name)


__all__ = [
    "Comparison",
    "Run",
    "Sweep",
    "compare",
    "load_run",
    "register_architecture",
    "register_dataset",
    "register_observer",
    "register_rule",
    "resume",
    "sweep",
    "train",
]
