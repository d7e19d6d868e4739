"""Library size limits: no function over 60 lines, no file over 400 lines.

``python tests/code_size.py [folder ...]`` prints every offender (default folders: core,
architectures, datasets, plugins) and exits 1 if there is one; ``tests/test_code_size.py``
runs the same check. A function's length runs from its ``def`` (decorators excluded) to its
last line, docstring and comments included.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("core", "architectures", "datasets", "plugins")
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 400


def offenders(folders=FOLDERS, root: Path = ROOT) -> list[str]:
    """``path: what`` for each file over the file limit and each function over the function limit."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            if any(part.startswith(".") or part in ("build", "__pycache__") for part in path.relative_to(root).parts):
                continue
            text = path.read_text()
            rel = path.relative_to(root)
            lines = len(text.splitlines())
            if lines > MAX_FILE_LINES:
                found.append(f"{rel}: {lines} lines (file limit {MAX_FILE_LINES})")
            for node in ast.walk(ast.parse(text, str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"{rel}:{node.lineno}: {node.name} is {length} lines (limit {MAX_FUNCTION_LINES})")
    return found


if __name__ == "__main__":
    bad = offenders(sys.argv[1:] or FOLDERS)
    print(
        "\n".join(bad) if bad else f"no file over {MAX_FILE_LINES} lines, no function over {MAX_FUNCTION_LINES} lines"
    )
    sys.exit(1 if bad else 0)
