"""Plugins of this Python process: objects registered from Python (a rule class written in a
notebook, a torch module, arrays), found by ``discovery.find_entries`` beside the installed entry
points, under the distribution ``python``.

Registering a name again replaces the earlier object (a notebook re-runs its cells); a name that
an installed distribution offers is refused, so a run's record never names two things alike.
Worker processes (``bioscale sweep`` with several workers, torchrun) do not see them.
"""

from __future__ import annotations

import re

from .errors import ConfigError

DISTRIBUTION = "python"
VERSION = "-"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_registered: dict[str, dict] = {}  # group -> name -> PluginEntry (loaded)


def register(group: str, name: str, obj):
    """Make ``obj`` the plugin ``name`` of entry point group ``group`` for this process; returns its entry."""
    from .discovery import PluginEntry, installed_entries

    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{name!r} is not a plugin name: a letter, then letters, digits, '_' or '-'")
    installed = installed_entries(group)
    if name in installed:
        origin = installed[name][0].origin
        raise ConfigError(f"{group} {name!r} is installed ({origin}); register the Python object under another name")
    owner = obj if isinstance(obj, type) else type(obj)
    entry = PluginEntry(name, group, f"{owner.__module__}:{owner.__qualname__}", DISTRIBUTION, VERSION, None)
    entry._loaded = obj
    _registered.setdefault(group, {})[name] = entry
    return entry


def registered(group: str) -> dict:
    """``{name: PluginEntry}`` of the objects registered in ``group`` (a copy)."""
    return dict(_registered.get(group, {}))


def any_registered() -> bool:
    """Whether this process registered any plugin from Python."""
    return any(_registered.values())


def unregister(group: str, name: str) -> None:
    """Forget ``name`` in ``group`` (nothing if it was never registered)."""
    _registered.get(group, {}).pop(name, None)
