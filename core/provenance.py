"""Which code and which machine made a run: source hashes, git commit, plugin versions, CPU model.

``code_fingerprint(rule_names)`` is the one answer to "is this the code that trained that
run?": the core's source hash (and its git commit and dirty flag where the core is a git
checkout) and each rule's distribution, version and source hash. Source hashes are taken over
the installed files, so they work outside a git checkout too (then ``commit`` is None).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import torch
from bioscale.architectures.activations import cpuinfo_field

# the packages whose files make up "the core": bioscale and the two trees installed inside it
CORE_PACKAGES = ("bioscale", "bioscale.architectures", "bioscale.datasets")
SOURCE_SUFFIXES = (".py", ".json")


def hash_files(files: list[tuple[str, Path]]) -> str:
    """SHA-256 over ``(name, path)`` pairs in name order: each name and its file's bytes."""
    digest = hashlib.sha256()
    for name, path in sorted(files):
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def package_files(module_name: str) -> list[tuple[str, Path]] | None:
    """The source files of a module's top-level package, as ``(name, path)`` pairs (names
    relative to the package's parent folder); a single-file module gives itself; None for a
    module without files (``python -c``, a namespace package)."""
    top = importlib.import_module(module_name.split(".")[0])
    top_file = getattr(top, "__file__", None)
    if not top_file:
        return None
    origin = Path(top_file).resolve()
    if origin.name != "__init__.py":
        return [(origin.name, origin)]
    return _tree_files(origin.parent, origin.parent.name)


def _tree_files(root: Path, label: str) -> list[tuple[str, Path]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in filenames:
            if name.endswith(SOURCE_SUFFIXES):
                path = Path(dirpath, name)
                found.append((f"{label}/{path.relative_to(root).as_posix()}", path))
    return found


def _core_roots() -> list[tuple[str, Path]]:
    """``(package name, folder)`` of each core package."""
    roots = []
    for name in CORE_PACKAGES:
        module = importlib.import_module(name)
        assert module.__file__ is not None  # a core package is a regular package with files
        roots.append((name, Path(module.__file__).resolve().parent))
    return roots


def _core_files() -> list[tuple[str, Path]]:
    files: dict[str, Path] = {}
    for name, root in _core_roots():  # labelled by module path: the same in a wheel and an editable install
        for label, path in _tree_files(root, name.replace(".", "/")):
            files.setdefault(label, path)
    return list(files.items())


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(folders: list[Path]) -> dict:
    """``{"commit": sha | None, "dirty": bool | None}`` for source ``folders`` of one git
    checkout; None for both unless the first folder's ``__init__.py`` is tracked by git (an
    install inside some other repository's tree is not a checkout of bioscale)."""
    first = folders[0]
    if _git(["ls-files", "--error-unmatch", "__init__.py"], first) is None:
        return {"commit": None, "dirty": None}
    commit = _git(["rev-parse", "HEAD"], first)
    status = _git(["status", "--porcelain", "--", *(str(f) for f in folders)], first)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


@functools.cache
def core_fingerprint() -> dict:
    """The core's version, source hash, git commit and dirty flag (computed once per process)."""
    from bioscale import __version__

    folders = [root for _, root in _core_roots()]
    return {"version": __version__, "source_hash": hash_files(_core_files()), **git_state(folders)}


@functools.cache
def _module_hash(module_name: str) -> str | None:
    try:
        files = package_files(module_name)
        return None if files is None else hash_files(files)
    except (ImportError, OSError):  # e.g. a class made at run time under a module name that does not import
        return None


def _from_python(entry) -> bool:
    from .local_plugins import DISTRIBUTION

    return entry.distribution == DISTRIBUTION and entry.entry_point is None


def plugin_fingerprint(entry, cls) -> dict:
    """A loaded plugin's distribution, version and the hash of its package's sources (of a plugin
    registered from Python: its content fingerprint, ``local_plugins.py``)."""
    top = cls.__module__.split(".")[0]  # a plugin shipped inside bioscale (``console``) is the core's code
    if _from_python(entry):
        source_hash = entry.version
    else:
        source_hash = core_fingerprint()["source_hash"] if top == "bioscale" else _module_hash(cls.__module__)
    return {"distribution": entry.distribution, "version": entry.version, "source_hash": source_hash}


def entry_fingerprint(entry) -> dict:
    """An architecture's or data set's distribution, version and the hash of the sources of the
    package its entry point's module belongs to (the core's hash for a built-in)."""
    module = entry.value.split(":")[0]
    if _from_python(entry):
        source_hash = entry.version
    else:
        source_hash = core_fingerprint()["source_hash"] if module.split(".")[0] == "bioscale" else _module_hash(module)
    return {
        "name": entry.name,
        "distribution": entry.distribution,
        "version": entry.version,
        "source_hash": source_hash,
    }


def code_fingerprint(rule_names, rules: dict | None = None) -> dict:
    """The code that trains ``rule_names``: ``{"bioscale": core_fingerprint(), "rules": {name:
    plugin_fingerprint}}``. Compare two with :func:`code_changes`.

    :param rules: name → PluginEntry to look the rules up in (default: the installed ones).
    """
    from .discovery import RULES_GROUP, discover, load_rule_class

    rules = discover(RULES_GROUP) if rules is None else rules
    found = {}
    for name in sorted(set(rule_names)):
        entry, cls = load_rule_class(name, rules)
        found[name] = plugin_fingerprint(entry, cls)
    return {"bioscale": core_fingerprint(), "rules": found}


def code_changes(recorded: dict | None, current: dict) -> list[str]:
    """What differs between two fingerprints' sources (hashes only; commits and versions are
    labels): ``[]`` when the same code, else e.g. ``["bioscale sources", "rule kp sources"]``.
    A plugin architecture's or data set's are compared when ``current`` has the key (``{}``: not
    installed now)."""
    if not recorded or "bioscale" not in recorded:
        return ["no code fingerprint recorded"]
    changes = []
    if recorded["bioscale"].get("source_hash") != current["bioscale"]["source_hash"]:
        changes.append("bioscale sources")
    old_rules, new_rules = recorded.get("rules", {}), current.get("rules", {})
    for name in sorted(set(old_rules) | set(new_rules)):
        if (old_rules.get(name) or {}).get("source_hash") != (new_rules.get(name) or {}).get("source_hash"):
            changes.append(f"rule {name} sources")
    for key in ("architecture", "data"):  # a plugin's; the built-ins are the core's sources
        old, new = recorded.get(key) or {}, current.get(key)
        if old.get("distribution", "bioscale") == "bioscale" or new is None:
            continue
        if not new:
            changes.append(f"{key} {old.get('name')} not installed")
        elif old.get("source_hash") != new.get("source_hash"):
            changes.append(f"{key} {old.get('name')} sources")
    return changes


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor or machine string."""
    return cpuinfo_field("model name") or platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """A GPU's name, or the CPU model on the CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def machine(device: torch.device) -> dict:
    """Where this process runs: host, CPU model, device, torch and Python versions."""
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "device": str(device),
        "device_name": device_name(device),
        "torch_version": str(torch.__version__),
        "python": platform.python_version(),
        "platform": sys.platform,
    }
