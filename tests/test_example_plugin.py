"""The third-party example under examples/bioscale-example-rule, proven as a user would meet it:
built as a wheel, installed into a fresh environment beside the core, its own tests run there
through the plugin-author kit, listed by ``bioscale rules --json`` and trained for 2 epochs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from child_env import run, venv_beside_this_interpreter

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "bioscale-example-rule"


@pytest.mark.slow
def test_the_example_rule_builds_installs_passes_its_tests_lists_and_trains(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and egg-info next to the sources
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    run(
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
    python = venv_beside_this_interpreter(venv)
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], tmp_path)

    where = run([python, "-c", "import bioscale_example_rule; print(bioscale_example_rule.__file__)"], tmp_path).stdout
    assert str(venv) in where  # the installed wheel, not the source folder

    tests = tmp_path / "example_tests"
    subprocess.run(["cp", "-r", str(EXAMPLE / "tests"), str(tests)], check=True)
    run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tests)],
        tmp_path,
        timeout=600,
    )

    listed = json.loads(run([python, "-m", "bioscale", "rules", "--json"], tmp_path).stdout)
    rows = listed if isinstance(listed, list) else listed.get("rules", listed)
    row = next(r for r in rows if r["name"] == "scaledfa")
    assert row["distribution"] == "bioscale-example-rule" and row["version"] == "0.1.0"

    out = run(
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
