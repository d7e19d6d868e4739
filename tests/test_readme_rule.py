"""README's "Writing a rule", followed as a reader would: its files written as shown, the package installed
into a fresh environment with its own command, its training command and its test run there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from child_env import run, venv_beside_this_interpreter

README = Path(__file__).resolve().parents[1] / "README.md"


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def blocks(text: str) -> list[tuple[str, str]]:
    """The section's fenced code blocks as ``(language, body)``."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w+)\n(.*?)```", text, re.S)]


def test_the_section_names_every_file_it_shows():
    files = [
        body.splitlines()[0] for lang, body in blocks(section(README.read_text(), "Writing a rule")) if lang != "bash"
    ]
    assert files == ["# my-rule/pyproject.toml", "# my-rule/my_rule/__init__.py", "# my-rule/tests/test_sign.py"]


@pytest.mark.slow
def test_writing_a_rule_as_the_readme_says(tmp_path):
    shown = blocks(section(README.read_text(), "Writing a rule"))
    for _, body in [b for b in shown if b[0] != "bash"]:
        path = tmp_path / body.splitlines()[0].removeprefix("# ")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    commands = [line.split("  #")[0].strip() for line in shown[-1][1].splitlines()]
    assert commands[0] == "pip install -e my-rule" and commands[1].startswith("bioscale train rule=sign")
    assert commands[2] == "pytest my-rule/tests"
    python = venv_beside_this_interpreter(tmp_path / "venv")
    # offline here: the build backend and the core come from this environment (a user's pip fetches them)
    run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", "my-rule"], tmp_path)

    out = run(
        [python, "-m", "bioscale", *commands[1].split()[1:], "trainer.progress=false", "output_dir=runs"], tmp_path
    )
    run_dir = tmp_path / out.stdout.strip().splitlines()[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["rule_distribution"] == "my-rule"
    assert "lr: 0.0001" in (run_dir / "config.yaml").read_text()

    result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "my-rule/tests"], tmp_path, timeout=600)
    assert "1 passed" in result.stdout
