"""The library's size limits hold (no function over 60 lines, no file over 400), and the check
itself catches both kinds of offender."""

from __future__ import annotations

from code_size import MAX_FILE_LINES, MAX_FUNCTION_LINES, offenders


def test_the_library_keeps_its_size_limits():
    assert offenders() == []


def test_the_check_names_a_long_function_and_a_long_file(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))  # def line + 60 = 61 lines
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "long_function.py").write_text(f"def f():\n{body}\n")
    (tmp_path / "lib" / "long_file.py").write_text("x = 1\n" * (MAX_FILE_LINES + 1))
    (tmp_path / "lib" / "fine.py").write_text("def g():\n" + "\n".join(f"    y{i} = {i}" for i in range(59)) + "\n")
    found = offenders(("lib",), tmp_path)
    assert found == [
        f"lib/long_file.py: {MAX_FILE_LINES + 1} lines (file limit {MAX_FILE_LINES})",
        f"lib/long_function.py:1: f is {MAX_FUNCTION_LINES + 1} lines (limit {MAX_FUNCTION_LINES})",
    ]
