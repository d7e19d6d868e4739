"""The third-party example under examples/bioscale-example-rule, proven as a user would meet it:
built as a wheel, installed into a fresh environment beside the core, its own tests run there
through the plugin-author kit, listed by ``bioscale rules --json`` and trained for 2 epochs."""

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "bioscale-example-rule"


def _run(args, cwd, timeout=300):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def _venv_beside_this_interpreter(venv: Path) -> str:
    """A new venv that also sees this interpreter's packages (the core, torch), whether this interpreter is a venv
    or the base one: ``--system-site-packages`` would show the *base* interpreter's packages, not this venv's."""
    _run([sys.executable, "-m", "venv", str(venv)], venv.parent)
    child_site = Path(
        _run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            venv.parent,
        ).stdout.strip()
    )
    # addsitedir (not a bare path line) so the outer site-packages' own .pth files, the editable installs, run too
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (child_site / "_bioscale_outer.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in outer))
    return str(venv / "bin" / "python")


@pytest.mark.slow
def test_the_example_rule_builds_installs_passes_its_tests_lists_and_trains(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and egg-info next to the sources
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        tmp_path,
    )
    wheel = next((tmp_path / "dist").glob("bioscale_example_rule-0.1.0-*.whl"))
    venv = tmp_path / "venv"
    python = _venv_beside_this_interpreter(venv)
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], tmp_path)

    where = _run([python, "-c", "import bioscale_example_rule; print(bioscale_example_rule.__file__)"], tmp_path).stdout
    assert str(venv) in where  # the installed wheel, not the source folder

    tests = tmp_path / "example_tests"
    subprocess.run(["cp", "-r", str(EXAMPLE / "tests"), str(tests)], check=True)
    _run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tests)],
        tmp_path,
        timeout=600,
    )

    listed = json.loads(_run([python, "-m", "bioscale", "rules", "--json"], tmp_path).stdout)
    rows = listed if isinstance(listed, list) else listed.get("rules", listed)
    row = next(r for r in rows if r["name"] == "scaledfa")
    assert row["distribution"] == "bioscale-example-rule" and row["version"] == "0.1.0"

    out = _run(
        [
            python,
            "-m",
            "bioscale",
            "train",
            "rule=scaledfa",
            "rules.scaledfa.gain=2",
            "trainer.epochs=2",
            "model.widths=[32]",
            "trainer.progress=false",
            f"output_dir={tmp_path / 'runs'}",
        ],
        tmp_path,
    ).stdout
    run_dir = Path(out.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["rule_distribution"] == "bioscale-example-rule"
