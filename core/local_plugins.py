"""Plugins of this Python process: objects registered from Python (a rule class written in a
notebook, a torch module, arrays), found by ``discovery.find_entries`` beside the installed entry
points, under the distribution ``python``.

Registering a name again replaces the earlier object (a notebook re-runs its cells); a name that
an installed distribution offers is refused, so a run's record never names two things alike. An
entry's version is a fingerprint of what it holds (a class's source, a module's structure and
weights, arrays' bytes), which run records keep as its source hash: a resume or a cached cell can
tell a changed object from the one that trained. Worker processes (``bioscale sweep`` with several
workers, torchrun) do not see them.
"""

from __future__ import annotations

import hashlib
import inspect
import re

from .errors import ConfigError

DISTRIBUTION = "python"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_registered: dict[str, dict] = {}  # group -> name -> PluginEntry (loaded)


def fingerprint(*parts) -> str:
    """``sha256:<16 hex>`` of ``parts`` (bytes, or anything with a stable ``str``)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
    return "sha256:" + digest.hexdigest()[:16]


def source_fingerprint(obj) -> str:
    """A class's (or an object's class's) source, else its qualified name, fingerprinted."""
    owner = obj if isinstance(obj, type) else type(obj)
    try:
        return fingerprint(inspect.getsource(owner))
    except (OSError, TypeError):  # defined where no source can be read
        return fingerprint(f"{owner.__module__}.{owner.__qualname__}")


def register(group: str, name: str, obj, version: str | None = None):
    """Make ``obj`` the plugin ``name`` of entry point group ``group`` for this process; returns its entry.
    ``version``: a fingerprint of its content (default: of its class's source)."""
    from .discovery import PluginEntry, installed_entries

    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{name!r} is not a plugin name: a letter, then letters, digits, '_' or '-'")
    installed = installed_entries(group)
    if name in installed:
        origin = installed[name][0].origin
        raise ConfigError(f"{group} {name!r} is installed ({origin}); register the Python object under another name")
    owner = obj if isinstance(obj, type) else type(obj)
    value = f"{owner.__module__}:{owner.__qualname__}"
    entry = PluginEntry(name, group, value, DISTRIBUTION, version or source_fingerprint(obj), None)
    entry._loaded = obj
    _registered.setdefault(group, {})[name] = entry
    return entry


def registered(group: str) -> dict:
    """``{name: PluginEntry}`` of the objects registered in ``group`` (a copy)."""
    return dict(_registered.get(group, {}))


def is_registered(group: str, name: str) -> bool:
    """Whether ``name`` in ``group`` is an object registered from Python in this process."""
    return name in _registered.get(group, {})


def unregister(group: str, name: str) -> None:
    """Forget ``name`` in ``group`` (nothing if it was never registered)."""
    _registered.get(group, {}).pop(name, None)
