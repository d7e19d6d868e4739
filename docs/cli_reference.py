"""mkdocs hook: the command-line reference page is generated from the parser the ``bioscale`` command uses."""

from __future__ import annotations

import argparse

MARK = "<!-- cli-reference -->"


def cli_reference() -> str:
    """Every command's ``--help`` text, under a heading per command, in the parser's order."""
    from bioscale.cli import build_parser

    parser = build_parser()
    parser.formatter_class = lambda prog: argparse.RawDescriptionHelpFormatter(prog, width=100)
    parts = ["## bioscale\n", "```text\n" + parser.format_help() + "```\n"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        parts += [f"## bioscale {name}\n", "```text\n" + command.format_help() + "```\n"]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # the mkdocs hook
    return markdown.replace(MARK, cli_reference()) if MARK in markdown else markdown
