"""Helpers for tests that install a package as a user would: a child virtual environment that sees
this interpreter's packages, and a subprocess runner whose failure shows the command's output."""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path


def run(args, cwd, timeout=300, env=None) -> subprocess.CompletedProcess:
    """Run ``args``; fail the test with the tail of its output unless it exits 0."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    command = " ".join(map(str, args))
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def venv_beside_this_interpreter(venv: Path) -> str:
    """A new venv at ``venv`` that also sees this interpreter's packages (the core, torch), whether this
    interpreter is a venv or the base one (``--system-site-packages`` would show the *base* interpreter's
    packages, not this venv's). Returns the venv's python."""
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv.parent)  # pip, setuptools: this one's
    python = str(venv / "bin" / "python")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    child_site = Path(run([python, "-c", purelib], venv.parent).stdout.strip())
    # addsitedir (not a bare path line) so the outer site-packages' own .pth files, the editable installs, run too
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (child_site / "_bioscale_outer.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in outer))
    return python
