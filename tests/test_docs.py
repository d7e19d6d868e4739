"""The documentation site: it builds with warnings as errors, every Python example in it runs (each page's
blocks in order, in a scratch folder), and every ``bioscale`` command it shows resolves its settings as the
command would (an unknown key, rule or value in a page fails here)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FILE_LISTING = re.compile(r"^# [\w.\-]+/\S+")  # a block that shows a file of a package (``# my-rule/...``)


def blocks(text: str) -> list[tuple[str, str]]:
    """A page's fenced code blocks as ``(language, body)``."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w+)\n(.*?)```", text, re.S)]


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")]
    result = subprocess.run(build, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "bioscale compare" in cli and "bioscale reproduce" in cli  # generated from the parser
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    assert "register_rule" in api and "load_run" in api  # generated from the docstrings


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_python_example_runs_and_every_command_resolves(page, tmp_path, monkeypatch):
    code = [body for lang, body in blocks(page.read_text()) if lang == "python" and not FILE_LISTING.match(body)]
    if not code and not _commands(page):
        pytest.skip("no example")
    from bioscale import local_plugins

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    try:
        for i, body in enumerate(code):
            exec(compile(body, f"{_page_id(page)} (Python block {i + 1})", "exec"), namespace)
        _check_commands(page)  # with the page's registrations in place (a rule named in Python)
    finally:
        local_plugins._registered.clear()


def _commands(page: Path) -> list[list[str]]:
    """Every ``bioscale train|compare|sweep|config`` command a page's bash blocks show, as tokens after the
    command name (a torchrun line's command after ``--no-python bioscale``)."""
    found = []
    for lang, body in blocks(page.read_text()):
        if lang != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip().rstrip("'")
            if "bioscale " not in line or "..." in line:
                continue
            words = shlex.split(line[line.index("bioscale ") :])
            if words[1] in ("train", "compare", "sweep", "config"):
                found.append(words[1:])
    return found


def _check_commands(page: Path) -> None:
    from bioscale.commands.compare import split_args
    from bioscale.config import build_run_config, resolve_observers, resolve_rule
    from bioscale.search.settings import split_sweep_tokens, sweep_config

    for command, *tokens in _commands(page):
        if command == "compare":
            entries, shared = split_args(tokens)
            runs = [shared + extra + [f"rule={name}"] for _, name, extra in entries]
        elif command == "sweep":
            run_tokens, pairs, _ = split_sweep_tokens(tokens)
            sweep_config(pairs)
            runs = [run_tokens]
        else:
            runs = [tokens]
        for run in runs:
            cfg = build_run_config(run)
            resolve_rule(cfg)
            resolve_observers(cfg)


def test_the_command_check_catches_a_bad_key(tmp_path):
    from bioscale.errors import ConfigError

    page = tmp_path / "bad.md"
    page.write_text("```bash\nbioscale train rule=fa trainer.epoch=3\n```\n")
    with pytest.raises(ConfigError, match="trainer.epoch"):
        _check_commands(page)


def test_the_nav_lists_every_page():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in PAGES:
        assert _page_id(page) in nav, f"{_page_id(page)} is not in mkdocs.yml's nav"
