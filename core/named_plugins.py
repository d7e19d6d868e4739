"""Architectures (``model=NAME``) and data sets (``data=NAME``) as installed plugins.

Both are entry points (groups ``bioscale.architectures`` and ``bioscale.datasets``, found by
``discovery.py`` as rules are) naming an object that ``architectures/architecture.py`` or
``datasets/dataset.py`` describes. Here they are looked up by name, checked against that
contract, and used: :func:`plugin_network` builds a run's network (``build`` architectures), :func:`load_dataset` loads its data.
An unknown name, a broken plugin, one that breaks the contract, or a name two distributions
offer is a :class:`PluginError` or :class:`ConfigError` (exit status 2) naming what is installed.
"""

from __future__ import annotations

import torch
from bioscale.architectures import Network
from bioscale.architectures import architecture as arch_contract
from bioscale.datasets import dataset as data_contract

from .discovery import ARCHITECTURES_GROUP, DATASETS_GROUP, PluginEntry, discover
from .errors import ConfigError, PluginError

KINDS = {ARCHITECTURES_GROUP: ("model preset", "bioscale models"), DATASETS_GROUP: ("data set", "bioscale datasets")}
CONTRACTS = {ARCHITECTURES_GROUP: arch_contract.contract_error, DATASETS_GROUP: data_contract.contract_error}


def load_named(group: str, name: str, entries: dict[str, PluginEntry] | None = None) -> tuple[PluginEntry, object]:
    """Entry and loaded object of plugin ``name`` of ``group``, checked against its contract."""
    entries = discover(group) if entries is None else entries
    what, command = KINDS[group]
    if name not in entries:
        valid = ", ".join(sorted(entries)) or "(none installed)"
        raise ConfigError(f"unknown {what} {name!r}; installed ({command}): {valid}")
    entry = entries[name]
    obj = entry.load()
    problem = CONTRACTS[group](obj)
    if problem:
        raise PluginError(f"{what} {name!r} from {entry.origin}: {entry.value} is not a {group} plugin: {problem}")
    return entry, obj


def load_architecture(name: str) -> tuple[PluginEntry, object]:
    """The installed architecture ``name`` (``model=NAME``)."""
    return load_named(ARCHITECTURES_GROUP, name)


def installed_architecture(name: str) -> tuple[PluginEntry, object] | None:
    """The installed architecture ``name``, or None when none has that name (e.g. ``custom``)."""
    entries = discover(ARCHITECTURES_GROUP)
    return load_named(ARCHITECTURES_GROUP, name, entries) if name in entries else None


def load_dataset(cfg, device="cpu"):
    """The data set ``cfg.name`` (a ``data`` config section) loaded onto ``device``."""
    _, obj = load_named(DATASETS_GROUP, cfg.name)
    return obj.load(cfg, device)  # type: ignore[attr-defined]  # checked by the contract


def plugin_network(preset: str, in_shape: tuple, num_classes: int, generator: torch.Generator) -> Network | None:
    """The network the installed architecture ``preset`` builds (``build``) for this data; None when
    ``preset`` names no installed architecture or one given as config values (the trainer builds
    those from the model section). A network that does not fit the data is a ``ValueError``."""
    found = installed_architecture(preset)
    if found is None or arch_contract.kind_of(found[1]) != "build":
        return None
    entry, obj = found
    try:
        return arch_contract.build_from_plugin(obj, in_shape, num_classes, generator)
    except ValueError:
        raise
    except Exception as exc:  # plugin code: any failure is the plugin's, named
        raise PluginError(f"model preset {preset!r} ({entry.origin}) failed to build: {exc}") from exc


def named_records(cfg) -> dict:
    """``run_info.code``'s ``architecture`` and ``data`` entries: the installed plugins named by
    ``model.preset`` and ``data.name`` (distribution, version, source hash; an architecture's
    kind); a name no installed plugin has (``model.preset=custom``) is left out."""
    from .provenance import entry_fingerprint

    found = {}
    for key, group, name in (
        ("architecture", ARCHITECTURES_GROUP, cfg.model.preset),
        ("data", DATASETS_GROUP, cfg.data.name),
    ):
        entries = discover(group)
        if name in entries:
            entry, obj = load_named(group, name, entries)
            found[key] = entry_fingerprint(entry)
            if key == "architecture":
                found[key]["kind"] = arch_contract.kind_of(obj)
    return found


def installed_fingerprints(recorded: dict) -> dict:
    """For the ``architecture`` and ``data`` a run's ``run_info.code`` records: the fingerprint of
    the plugin of that name installed now (``{}``: none is), to compare with ``code_changes``."""
    from .provenance import entry_fingerprint

    found = {}
    for key, group in (("architecture", ARCHITECTURES_GROUP), ("data", DATASETS_GROUP)):
        name = (recorded.get(key) or {}).get("name")
        if name is not None:
            entries = discover(group)
            found[key] = entry_fingerprint(entries[name]) if name in entries else {}
    return found
