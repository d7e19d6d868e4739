"""Which installed distribution a loaded module's file belongs to.

An entry point names a module (``bioscale_kp:KolenPollack``); Python imports whatever module of
that name comes first on ``sys.path``, which may belong to another distribution (or be a loose
file in the current folder). :func:`shadowing_owner` says when that happened, and whose file
was loaded instead.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from urllib.parse import unquote, urlparse


def _real(path) -> str:
    return os.path.realpath(os.fspath(path))


def _editable_root(dist: metadata.Distribution) -> str | None:
    """The source folder of an editable install (``pip install -e``), from ``direct_url.json``."""
    try:
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except (OSError, ValueError):
        return None
    if not (info.get("dir_info") or {}).get("editable") or not str(info.get("url", "")).startswith("file:"):
        return None
    return _real(unquote(urlparse(info["url"]).path))


def _holds(dist: metadata.Distribution, file: str) -> tuple[bool, int] | None:
    """``(holds, specificity)``: whether ``file`` is one of ``dist``'s installed files (or lies
    under its editable source folder); None when ``dist`` lists neither (nothing to check)."""
    root = _editable_root(dist)
    files = dist.files
    if files is not None and any(_real(dist.locate_file(f)) == file for f in files):
        return True, 1 << 30  # an exact file beats any folder
    if root is not None:
        inside = file == root or file.startswith(root.rstrip(os.sep) + os.sep)
        return inside, len(root)
    return (False, 0) if files is not None else None


def module_file(module_name: str) -> str | None:
    """The real path of the loaded module ``module_name``'s file (None: not loaded, or no file)."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    return _real(file) if file else None


def declaring_dist_holds(dist: metadata.Distribution | None, file: str) -> bool:
    """False only when ``dist`` lists its files (or its editable folder) and ``file`` is not among them."""
    if dist is None:
        return True
    held = _holds(dist, file)
    return held is None or held[0]


def owner_of(file: str) -> str | None:
    """``"name version"`` of the installed distribution ``file`` belongs to (the most specific
    match), or None when no distribution lists it (a loose module on ``sys.path``)."""
    best, best_rank = None, -1
    for dist in metadata.distributions():
        held = _holds(dist, file)
        if held is not None and held[0] and held[1] > best_rank:
            best, best_rank = f"{dist.metadata['Name']} {dist.version}", held[1]
    return best
