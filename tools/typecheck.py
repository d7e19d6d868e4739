"""Run mypy on bioscale's packages as they are installed (``bioscale`` = core/ + datasets/ + architectures/,
and each plugin's package), with the settings in pyproject.toml's ``[tool.mypy]``.

mypy cannot follow setuptools' editable finders nor the ``package-dir`` mapping (``bioscale`` lives in ``core/``),
so this lays the import tree out as symlinks in a temporary folder, checks that, and prints the errors with the
repository's own paths. Usage: ``python tools/typecheck.py`` (exit status: mypy's)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBPACKAGES = {"datasets": REPO / "datasets", "architectures": REPO / "architectures"}


def _lay_out(tree: Path) -> tuple[list[str], dict[str, str]]:
    """Symlink every package into ``tree``; return the package names and {tree path: repo path}."""
    root = tree / "bioscale"
    root.mkdir()
    for entry in (REPO / "core").iterdir():
        (root / entry.name).symlink_to(entry)
    for name, folder in SUBPACKAGES.items():
        (root / name).symlink_to(folder)
    packages, paths = ["bioscale"], {f"bioscale/{n}": str(f.relative_to(REPO)) for n, f in SUBPACKAGES.items()}
    paths["bioscale"] = "core"
    for init in sorted((REPO / "plugins").glob("*/bioscale_*/__init__.py")):
        plugin = init.parent
        (tree / plugin.name).symlink_to(plugin)
        packages.append(plugin.name)
        paths[plugin.name] = str(plugin.relative_to(REPO))
    return packages, paths


def _repo_paths(output: str, paths: dict[str, str]) -> str:
    """mypy names files by their place in the tree (``bioscale/cli.py``); name them by the repository's."""
    lines = []
    for line in output.splitlines(keepends=True):
        for tree_path, repo_path in sorted(paths.items(), key=lambda item: -len(item[0])):
            if line.startswith(tree_path + "/"):
                line = repo_path + line[len(tree_path) :]
                break
        lines.append(line)
    return "".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder)
        packages, paths = _lay_out(tree)
        command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")]
        for package in packages:
            command += ["-p", package]
        env = dict(os.environ, MYPYPATH=str(tree))
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        output = result.stdout + result.stderr
        print(_repo_paths(output, paths), end="")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
