"""Find rule, observer, architecture and data-set plugins through entry points.

Built-in and third-party plugins are found the same way: the core never imports a rule by
module name. Rules live in the group ``bioscale.rules`` (one is active per run), observers
in ``bioscale.observers`` (all enabled ones are active), architectures in
``bioscale.architectures`` and data sets in ``bioscale.datasets`` (``named_plugins.py``). A name that two distributions offer
is blocked (only that name), and an entry point whose module was imported from another
distribution's files (a shadowing module of the same name) is refused, both naming the two.
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass, field
from importlib import metadata

from .errors import PluginError
from .plugin_origin import declaring_dist_holds, module_file, owner_of

RULES_GROUP = "bioscale.rules"
OBSERVERS_GROUP = "bioscale.observers"
ARCHITECTURES_GROUP = "bioscale.architectures"
DATASETS_GROUP = "bioscale.datasets"


@dataclass
class PluginEntry:
    """One entry point: where it comes from and, once loaded, what it is or why it broke."""

    name: str
    group: str
    value: str
    distribution: str
    version: str
    entry_point: metadata.EntryPoint | None = field(repr=False)  # None: an in-process entry (tests, the sweep)
    error: str | None = None
    conflicts: list[PluginEntry] = field(default_factory=list, repr=False)  # other distributions offering the name
    _loaded: object = field(default=None, repr=False)

    @property
    def origin(self) -> str:
        return f"{self.distribution} {self.version}"

    def load(self):
        """Import the entry point's object; a failure raises :class:`PluginError` naming the
        plugin and its distribution (and is remembered in ``self.error``). A name that several
        distributions offer, or a module another distribution shadows, is refused the same way."""
        if self._loaded is not None:
            return self._loaded
        if self.conflicts:
            self.error = conflict_message(self.group, self.name, [self, *self.conflicts])
            raise PluginError(self.error)
        try:
            assert self.entry_point is not None  # in-process entries are made loaded (or never loaded)
            loaded = self.entry_point.load()
        except Exception as exc:  # any import-time failure of a third-party plugin
            self.error = f"{type(exc).__name__}: {exc}"
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            raise PluginError(
                f"plugin {self.name!r} ({self.group}) from {self.origin} failed to load ({self.value}): {detail}"
            ) from exc
        self._check_origin()
        self._loaded = loaded
        return loaded

    def _check_origin(self) -> None:
        """The entry point's module was imported from the declaring distribution's own files."""
        assert self.entry_point is not None  # load() just loaded it
        module = self.entry_point.module
        file = module_file(module)
        if file is None or declaring_dist_holds(getattr(self.entry_point, "dist", None), file):
            return
        owner = owner_of(file)
        where = f"the distribution {owner}" if owner else "no installed distribution (a loose module on sys.path)"
        self.error = (
            f"plugin {self.name!r} ({self.group}) from {self.origin} declares {self.value}, but the module "
            f"{module!r} imported is {file}, which belongs to {where}: two modules share the name "
            f"{module.split('.')[0]!r}; uninstall or rename one of them"
        )
        raise PluginError(self.error)


def conflict_message(group: str, name: str, entries: list[PluginEntry]) -> str:
    """Why plugin ``name`` cannot be used: every distribution that offers it, and what to do."""
    origins = " and ".join(sorted(f"{e.origin} ({e.value})" for e in entries))
    fix = "uninstall one of them"
    if group == OBSERVERS_GROUP:
        fix += f", or switch the observer off with observers.{name}.enabled=false"
    return f"{len(entries)} installed distributions provide the {group} plugin {name!r}: {origins}; {fix}"


def _distribution_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown-distribution", "?"
    return dist.metadata["Name"] or "unknown-distribution", dist.version or "?"


def find_entries(group: str) -> dict[str, list[PluginEntry]]:
    """All plugins of ``group`` by name (a name may map to several distributions): the installed
    entry points, then the objects this process registered from Python (``local_plugins.py``)."""
    from .local_plugins import registered

    found = installed_entries(group)
    for name, entry in registered(group).items():
        found.setdefault(name, []).append(entry)
    return found


def installed_entries(group: str) -> dict[str, list[PluginEntry]]:
    """The entry points of ``group`` by name (a name may map to several distributions)."""
    found: dict[str, list[PluginEntry]] = {}
    seen = set()
    for ep in metadata.entry_points(group=group):
        dist, version = _distribution_of(ep)
        key = (ep.name, ep.value, dist)
        if key in seen:  # the same distribution reachable twice on sys.path
            continue
        seen.add(key)
        found.setdefault(ep.name, []).append(PluginEntry(ep.name, group, ep.value, dist, version, ep))
    return found


def discover(group: str) -> dict[str, PluginEntry]:
    """Name → entry. A name that two distributions offer maps to an entry whose :meth:`load`
    raises a :class:`PluginError` naming both: only that name is blocked, every other one works."""
    result = {}
    for name, entries in sorted(find_entries(group).items()):
        first = entries[0]
        if len(entries) > 1:
            first = dataclasses.replace(first, conflicts=entries[1:])
        result[name] = first
    return result


def describe(obj) -> str:
    """One-line description of a plugin class: its ``description`` or its docstring's first line."""
    text = getattr(obj, "description", None) or (obj.__doc__ or "").strip()
    return text.splitlines()[0].strip() if text else ""


def load_rule_class(name: str, rules: dict[str, PluginEntry] | None = None):
    """Entry and loaded class of rule ``name``; checks the class's plugin contract."""
    from .config.schema import RuleConfig

    rules = discover(RULES_GROUP) if rules is None else rules
    if name not in rules:
        valid = ", ".join(sorted(rules)) or "(none installed)"
        raise PluginError(f"unknown rule {name!r}; installed rules: {valid}")
    entry = rules[name]
    cls = entry.load()
    config_cls = getattr(cls, "Config", None)
    if not (
        isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls) and issubclass(config_cls, RuleConfig)
    ):
        raise PluginError(
            f"rule {name!r} from {entry.origin}: {entry.value} must define Config, a dataclass subclassing "
            f"bioscale.RuleConfig"
        )
    if not callable(cls):
        raise PluginError(f"rule {name!r} from {entry.origin}: {entry.value} is not a class")
    return entry, cls
