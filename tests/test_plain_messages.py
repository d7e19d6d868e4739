"""Mistakes met from outside get a plain sentence and exit status 2: no argparse riddle, no
PyTorch or NumPy advice, no terminal colour codes."""

from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize("args", [[], ["trainer.epochs=3"]], ids=["nothing", "only_overrides"])
def test_resume_without_a_run_folder_says_so(args):
    result = run_cli("resume", *args)
    assert result.returncode == 2
    assert "resume needs a run folder" in result.stderr and "bioscale resume RUN_FOLDER [trainer.key=value ...]" in result.stderr
    assert "required" not in result.stderr and "Traceback" not in result.stderr
