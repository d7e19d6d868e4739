"""Shared fixtures: the real data folder (tests skip without it), fake installed plugins,
and a helper to run the ``bioscale`` command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BIOSCALE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (MNIST / CIFAR-10 npz); the test is skipped when it is absent."""
    if not (SHARED_DATA / "mnist.npz").is_file():
        pytest.skip(f"no real data at {SHARED_DATA}")
    return SHARED_DATA


class FakeSite:
    """A folder on sys.path holding fake installed distributions (dist-info + module)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add_distribution(
        self, dist: str, version: str, module: str, source: str, entry_points: dict[str, dict[str, str]]
    ):
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {target}" for name, target in eps.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        record = [f"{module}.py,,", *(f"{info.name}/{f},," for f in ("METADATA", "entry_points.txt", "RECORD"))]
        (info / "RECORD").write_text("\n".join(record) + "\n")  # the files it installed, as pip writes them
        return self


@pytest.fixture
def fake_site(tmp_path, monkeypatch) -> FakeSite:
    """Fake distributions visible to importlib.metadata in this process and in subprocesses
    started with :func:`run_cli` (through PYTHONPATH)."""
    site = FakeSite(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site.root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site.root), os.environ.get("PYTHONPATH")])))
    yield site
    for name in list(sys.modules):
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(site.root)):
            del sys.modules[name]


def run_cli(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """``python -m bioscale ARGS`` in a subprocess (the console script's code path)."""
    return subprocess.run(
        [sys.executable, "-m", "bioscale", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


TINY = ["data=digits", "model.widths=[32,32]", "trainer.batch_size=64", "trainer.progress=false"]


def save_signed(state: dict, path) -> None:
    """Write a (tampered) checkpoint ``state`` with a valid checksum, as a bug in the writer or
    an edited file with a recomputed digest would: the checks past the checksum get to see it."""
    import torch
    from bioscale.checkpoint import state_digest

    torch.save({**state, "sha256": state_digest(state)}, path)
