"""The example architecture and data-set packages (examples/bioscale-example-arch,
examples/bioscale-example-data), proven as a user would meet them: built as wheels, installed into
one fresh environment beside the core, their own tests run there, listed by ``bioscale models
--json`` / ``bioscale datasets --json``, and a network of one trained on the other."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from child_env import run, venv_beside_this_interpreter

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = {name: REPO / "examples" / f"bioscale-example-{name}" for name in ("arch", "data")}


def wheel_of(name: str, tmp_path: Path) -> Path:
    """The example ``name`` built as a wheel from a copy of its folder (building writes beside the sources)."""
    source = tmp_path / f"source-{name}"
    shutil.copytree(EXAMPLES[name], source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    dist = tmp_path / "dist"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w"]
    run([*pip_wheel, str(dist), str(source)], tmp_path)
    return next(dist.glob(f"bioscale_example_{name}-0.1.0-*.whl"))


def listed(python: str, command: str, cwd: Path) -> dict:
    return {r["name"]: r for r in json.loads(run([python, "-m", "bioscale", command, "--json"], cwd).stdout)}


@pytest.mark.slow
def test_the_example_architectures_and_data_set_install_list_and_train(tmp_path):
    wheels = [wheel_of(name, tmp_path) for name in EXAMPLES]
    venv = tmp_path / "venv"
    python = venv_beside_this_interpreter(venv)
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", *map(str, wheels)], tmp_path)
    where = run(
        [python, "-c", "import bioscale_example_arch as a, bioscale_example_data as d; print(a.__file__, d.__file__)"],
        tmp_path,
    )
    assert where.stdout.count(str(venv)) == 2  # the installed wheels, not the source folders

    tests = [shutil.copytree(EXAMPLES[name] / "tests", tmp_path / f"tests-{name}") for name in EXAMPLES]
    pytest_cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    run([*pytest_cmd, *map(str, tests)], tmp_path, timeout=600)

    models, datasets = listed(python, "models", tmp_path), listed(python, "datasets", tmp_path)
    assert models["example_mlp"]["kind"] == "config" and models["example_convnet"]["kind"] == "build"
    assert models["example_torch_resnet"]["kind"] == "build"
    assert {models[n]["distribution"] for n in ("example_mlp", "example_convnet")} == {"bioscale-example-arch"}
    row = datasets["example_patterns"]
    assert (row["distribution"], row["version"], row["status"]) == ("bioscale-example-data", "0.1.0", "ok")

    train = [python, "-m", "bioscale", "train", "rule=bp", "data=example_patterns", "trainer.progress=false"]
    # the converted torch module (8 channels, global pooling) learns slower: a larger lr, more epochs
    settings = {"example_torch_resnet": ["trainer.epochs=4", "rules.bp.optimizer.lr=0.02"]}
    for model in ("example_convnet", "example_mlp", "example_torch_resnet"):
        extra = settings.get(model, ["trainer.epochs=2"])
        out = run([*train, f"model={model}", *extra, f"output_dir={tmp_path / 'runs'}"], tmp_path).stdout
        run_dir = Path(out.strip().splitlines()[-1])
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["epochs"] == int(extra[0].split("=")[1])
        code = yaml.safe_load((run_dir / "config.yaml").read_text())["run_info"]["code"]
        assert code["architecture"]["distribution"] == "bioscale-example-arch"
        assert code["data"]["distribution"] == "bioscale-example-data"
        assert summary["final_test_error"] < 50, summary  # percent; chance is 90

    # the other commands take a plugin's net and data set as they take the built-ins
    common = ["data=example_patterns", "trainer.progress=false", "trainer.epochs=1"]
    out = run([python, "-m", "bioscale", "compare", "bp", "fa", "model=example_convnet", *common,
               f"output_dir={tmp_path / 'compare'}"], tmp_path).stdout  # fmt: skip
    assert "bp" in out and "fa" in out
    run([python, "-m", "bioscale", "sweep", "rule=fa", "model=example_mlp", *common, "sweep.trials=2",
         f"output_dir={tmp_path / 'sweep'}"], tmp_path)  # fmt: skip
    trials = list((tmp_path / "sweep").rglob("summary.json"))
    assert len(trials) == 2 and all(json.loads(t.read_text())["status"] == "completed" for t in trials)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "title": "a plugin's net",
                "data": "example_patterns",
                "model": "example_torch_resnet",
                "settings": {"trainer.epochs": 1},
                "seeds": [0],
                "cells": [{"name": "bp", "rule": "bp"}],
            }
        )  # fmt: skip
    )
    run([python, "-m", "bioscale", "reproduce", str(spec), "trainer.progress=false",
         f"output_dir={tmp_path / 'reproduce'}"], tmp_path)  # fmt: skip
    table = next((tmp_path / "reproduce").rglob("table.json"))
    assert "bp" in table.read_text()
