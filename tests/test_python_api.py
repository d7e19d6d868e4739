"""The Python API: the same checks and run folders as the CLI, Python objects as plugins of the
process, what train / resume / compare / sweep return, and how a run ends."""

from __future__ import annotations

import json
from pathlib import Path

import bioscale
import numpy as np
import pytest
import torch
from bioscale.api.tokens import to_tokens
from bioscale.discovery import OBSERVERS_GROUP, RULES_GROUP, discover
from bioscale.local_plugins import register, unregister
from conftest import run_cli

SMALL = {"model": {"widths": [32, 32]}, "trainer": {"batch_size": 64, "epochs": 2, "progress": False}}


@pytest.fixture(autouse=True)
def _forget_registrations():
    """Plugins registered from Python live as long as the process: each test starts without them."""
    from bioscale import local_plugins

    yield
    local_plugins._registered.clear()


def _losses(run) -> list:
    return [m["train_loss"] for m in run.metrics]


def test_train_is_the_command_line_run_bit_for_bit(tmp_path):
    trainer = {**SMALL["trainer"], "threads": 1}  # one thread in both: sums in the same order
    settings = {**SMALL, "trainer": trainer}
    run = bioscale.train("fa", output_dir=tmp_path / "api", **settings, rules={"fa": {"optimizer": {"lr": 1e-3}}})
    cli = run_cli(
        "train",
        "rule=fa",
        "model.widths=[32,32]",
        "trainer.batch_size=64",
        "trainer.epochs=2",
        "trainer.progress=false",
        "trainer.threads=1",
        "rules.fa.optimizer.lr=0.001",
        f"output_dir={tmp_path / 'cli'}",
    )
    assert cli.returncode == 0, cli.stderr
    other = bioscale.load_run(cli.stdout.strip().splitlines()[-1])
    assert run.status == "completed" and len(run.metrics) == 2
    assert _losses(run) == _losses(other)
    mine, theirs = run.config, other.config
    for key in ("rule", "seed", "model", "trainer", "rules", "data", "observers"):
        assert mine[key] == theirs[key], key  # every setting but output_dir, and the same resolved recipe


def test_nested_dicts_dotted_keys_and_overrides_are_the_same_tokens_in_order():
    nested = to_tokens(sections={"trainer": {"epochs": 3, "progress": False}, "seed": 1})
    dotted = to_tokens(sections={"trainer.epochs": 3, "trainer.progress": False, "seed": 1})
    assert nested == dotted == ["trainer.epochs=3", "trainer.progress=false", "seed=1"]
    assert to_tokens({"trainer": {"epochs": 1}}, {"trainer": {"epochs": 2}}, ["trainer.epochs=4"]) == [
        "trainer.epochs=1",
        "trainer.epochs=2",
        "trainer.epochs=4",
    ]
    assert to_tokens(sections={"model": {"widths": [8, 8]}, "x": None}) == ["model.widths=[8, 8]", "x=null"]
    blocks = to_tokens(sections={"model.blocks": [{"type": "conv", "channels": 4}]})
    assert blocks == ['model.blocks=[{"type": "conv", "channels": 4}]']


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"trainer": {"epochs": 0}}, "trainer.epochs must be >= 1"),
        ({"trainer": {"epoch": 1}}, "unknown key 'trainer.epoch'"),
        ({"rules": {"fa": {"optimizer": {"lr": -1}}}}, "rules.fa.optimizer.lr must be >= 0"),
        ({"overrides": ["trainer.epochs"]}, "'trainer.epochs' is not a 'key=value' string"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_key_before_anything_is_written(tmp_path, settings, message):
    out = tmp_path / "runs"
    with pytest.raises(bioscale.ConfigError, match=message):
        bioscale.train("fa", output_dir=out, **settings)
    assert not out.exists()


def test_a_config_file_comes_first_and_keywords_override_it(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("trainer:\n  epochs: 5\n  batch_size: 64\n  progress: false\nmodel:\n  widths: [16]\n")
    run = bioscale.train("bp", config=path, trainer={"epochs": 1}, output_dir=tmp_path)
    assert run.config["trainer"]["epochs"] == 1 and run.config["model"]["widths"] == [16]
    with pytest.raises(bioscale.ConfigError, match="no such file"):
        bioscale.train("bp", config=tmp_path / "missing.yaml", output_dir=tmp_path)


def test_a_torch_module_is_trained_as_a_copy_and_the_run_model_gives_the_recorded_test_error(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    run = bioscale.train("bp", model=net, output_dir=tmp_path, trainer={"epochs": 2, "progress": False})
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the user's module untouched
    assert run.config["model"]["preset"] == "Sequential"
    assert run.config["run_info"]["code"]["architecture"]["distribution"] == "python"
    test = run.load_data().test
    model = run.model
    assert not model.training
    with torch.no_grad():
        error = 100.0 * (model(test.x).argmax(1) != test.y).float().mean().item()
    assert error == pytest.approx(run.summary["final_test_error"], abs=1e-4)


def _arrays(n=240, seed=0):
    g = np.random.default_rng(seed)
    x = g.integers(0, 256, size=(n, 6, 6, 3)).astype(np.uint8)
    y = (x[..., 0].mean((1, 2)) > x[..., 1].mean((1, 2))).astype(np.int64)
    return x, y


def test_arrays_pairs_and_torch_datasets_are_the_same_data(tmp_path):
    x, y = _arrays()
    four = bioscale.train("bp", data=(x[:200], y[:200], x[200:], y[200:]), output_dir=tmp_path, **SMALL)
    pairs = bioscale.train("bp", data=((x[:200], y[:200]), (x[200:], y[200:])), output_dir=tmp_path, **SMALL)
    chw = torch.from_numpy(x).permute(0, 3, 1, 2)  # ToTensor's (C, H, W) layout, as bytes
    sets = (
        torch.utils.data.TensorDataset(chw[:200], torch.from_numpy(y[:200])),
        torch.utils.data.TensorDataset(chw[200:], torch.from_numpy(y[200:])),
    )
    datasets = bioscale.train("bp", data=sets, data_name="pairs", output_dir=tmp_path, **SMALL)
    assert four.config["run_info"]["in_shape"] == [3, 6, 6] and four.config["run_info"]["num_classes"] == 2
    assert _losses(four) == _losses(pairs) == _losses(datasets)
    assert datasets.config["data"]["name"] == "pairs"
    with pytest.raises(bioscale.ConfigError, match="expected a name, \\(x_train"):
        bioscale.train("bp", data=x, output_dir=tmp_path)


class Halved:
    """BP with every hidden signal halved: a rule in ten lines, registered from Python."""

    Config = bioscale.RuleConfig

    def __init__(self, config):
        self.config = config

    @bioscale.hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return 0.5 * step.layer_vjp(layer, grad_above)


def test_a_rule_class_registered_from_python_trains_and_is_recorded(tmp_path):
    run = bioscale.train(Halved, output_dir=tmp_path, **SMALL, rules={"halved": {"optimizer": {"lr": 1e-3}}})
    assert run.status == "completed"
    from bioscale.local_plugins import source_fingerprint

    recorded = run.config["run_info"]["rule"]
    assert recorded == {"name": "halved", "distribution": "python", "version": source_fingerprint(Halved)}
    assert run.config["run_info"]["code"]["rules"]["halved"]["source_hash"] == source_fingerprint(Halved)
    assert bioscale.register_rule(Halved, name="half") == "half" and "half" in discover(RULES_GROUP)


class Exact(Halved):
    @bioscale.hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)


def test_a_registered_rule_that_answers_bp_trains_exactly_as_bp(tmp_path):
    mine = bioscale.train(Exact, output_dir=tmp_path, **SMALL)
    bp = bioscale.train("bp", output_dir=tmp_path, **SMALL)
    assert _losses(mine) == _losses(bp)


def test_registering_an_installed_name_is_refused_and_a_name_again_replaces():
    with pytest.raises(bioscale.ConfigError, match="'fa' is installed"):
        bioscale.register_rule(Halved, name="fa")
    with pytest.raises(bioscale.ConfigError, match="not a plugin name"):
        bioscale.register_rule(Halved, name="two words")
    bioscale.register_rule(Halved, name="mine")
    bioscale.register_rule(Exact, name="mine")
    assert discover(RULES_GROUP)["mine"].load() is Exact


def test_resume_from_python_continues_to_the_straight_run(tmp_path):
    constant = {"fa": {"optimizer": {"schedule": "constant"}}}  # a schedule that resume does not re-plan
    one = {**SMALL, "trainer": {**SMALL["trainer"], "epochs": 1}}
    short = bioscale.train("fa", output_dir=tmp_path, rules=constant, **one)
    straight = bioscale.train("fa", output_dir=tmp_path, rules=constant, **SMALL)
    resumed = bioscale.resume(short.dir, trainer={"epochs": 2})
    assert resumed.dir == short.dir and resumed.status == "completed"
    assert _losses(resumed) == _losses(straight)


def test_resume_of_a_run_on_python_data_needs_the_data_again(tmp_path):
    x, y = _arrays()
    data = (x[:200], y[:200], x[200:], y[200:])
    short = bioscale.train(
        "bp", data=data, output_dir=tmp_path, **{**SMALL, "trainer": {**SMALL["trainer"], "epochs": 1}}
    )
    unregister("bioscale.datasets", "arrays")  # a new process: the arrays are gone
    with pytest.raises(bioscale.BioscaleError, match="arrays"):
        bioscale.resume(short.dir, trainer={"epochs": 2})
    assert bioscale.resume(short.dir, data=data, trainer={"epochs": 2}).status == "completed"


class _Interrupter:
    """Presses Ctrl-C at the end of the second epoch (the first is committed)."""

    @bioscale.hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt


def test_keyboard_interrupt_leaves_an_interrupted_resumable_run_and_propagates(tmp_path):
    register(OBSERVERS_GROUP, "interrupter", _Interrupter)
    with pytest.raises(KeyboardInterrupt):
        bioscale.train("bp", output_dir=tmp_path, **SMALL)
    unregister(OBSERVERS_GROUP, "interrupter")
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = bioscale.load_run(folder)
    assert run.status == "interrupted" and len(run.metrics) == 1
    assert bioscale.resume(folder).status == "completed" and len(bioscale.load_run(folder).metrics) == 2


class Nan(Halved):
    @bioscale.hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above) * float("nan")


def test_a_diverged_run_is_returned_with_its_status(tmp_path):
    run = bioscale.train(Nan, output_dir=tmp_path, **SMALL)
    assert run.status == "diverged" and run.summary["status"] == "diverged"


def test_compare_returns_its_rows_runs_and_table(tmp_path):
    result = bioscale.compare(["bp", ("fa", {"optimizer": {"lr": 1e-3}})], output_dir=tmp_path, **SMALL)
    assert [r["label"] for r in result.rows] == ["bp", "fa:optimizer.lr=0.001"]
    assert [r.config["rule"] for r in result.runs] == ["bp", "fa"]
    assert result.runs[1].config["rules"]["fa"]["optimizer"]["lr"] == 1e-3
    assert "| bp |" in result.table and list(result.to_pandas().index) == ["bp", "fa:optimizer.lr=0.001"]
    assert json.loads((result.dir / "comparison.json").read_text())["rows"] == result.rows


def test_sweep_returns_its_trials_and_best(tmp_path):
    found = bioscale.sweep(
        "bp", trials=2, output_dir=tmp_path, **{**SMALL, "trainer": {**SMALL["trainer"], "epochs": 1}}
    )
    assert len(found.trials) == 2 and {t["status"] for t in found.trials} == {"complete"}
    assert found.best is not None and found.best["command"].startswith("bioscale train")


def test_a_sweep_over_python_plugins_refuses_worker_processes(tmp_path):
    with pytest.raises(bioscale.ConfigError, match="worker processes cannot see plugins registered from Python"):
        bioscale.sweep(Halved, trials=2, sweep={"workers": 2}, output_dir=tmp_path, **SMALL)
    assert not tmp_path.joinpath("sweeps").exists()
    space = {"rules.halved.optimizer.lr": "loguniform:1e-4:1e-3"}
    one = {**SMALL, "trainer": {**SMALL["trainer"], "epochs": 1}}
    found = bioscale.sweep(Halved, trials=1, sweep={"space": space}, output_dir=tmp_path, **one)
    assert "rules.halved.optimizer.lr" in found.trials[0]["settings"]


def test_load_run_comparison_and_sweep_refuse_a_folder_that_is_not_theirs_and_a_run_plots(tmp_path):
    with pytest.raises(bioscale.ConfigError, match="is not a run folder"):
        bioscale.load_run(tmp_path)
    with pytest.raises(bioscale.ConfigError, match="is not a comparison folder .*comparison.json"):
        bioscale.Comparison(tmp_path)
    with pytest.raises(bioscale.ConfigError, match="is not a sweep folder .*sweep.json"):
        bioscale.Sweep(tmp_path)
    run = bioscale.train("bp", output_dir=tmp_path, **SMALL)
    figure = run.plot()
    assert figure.axes and figure.axes[0].lines


def test_public_names_are_listed_typed_and_documented():
    import inspect

    from bioscale import api

    assert sorted(api.__all__) == sorted(bioscale._API)  # the lazy names and the API's own list agree
    for name in bioscale.__all__:
        obj = getattr(bioscale, name)
        if callable(obj) and not name.startswith("_"):
            assert inspect.getdoc(obj), f"bioscale.{name} has no docstring"
    for name in ("train", "resume", "compare", "sweep", "load_run"):
        assert inspect.signature(getattr(bioscale, name)).return_annotation not in (inspect.Signature.empty, None)


def test_in_a_jupyter_kernel_the_progress_bar_is_on_and_a_widget_when_ipywidgets_is_there(monkeypatch):
    import sys
    import types

    from bioscale.progress import Progress, bar_class
    from tqdm import tqdm as text_tqdm

    assert Progress(None).enabled is sys.stderr.isatty()  # a test runner: not a kernel
    ZMQInteractiveShell = type("ZMQInteractiveShell", (), {})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=ZMQInteractiveShell))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed: tqdm's text bar
    assert Progress(None).enabled and bar_class() is text_tqdm
    assert not Progress(False).enabled
    monkeypatch.setitem(sys.modules, "ipywidgets", types.ModuleType("ipywidgets"))
    from tqdm.notebook import tqdm as notebook_tqdm

    assert bar_class() is notebook_tqdm


def test_the_readme_python_example_runs_as_shown(tmp_path, shared_data, monkeypatch):
    from test_readme_rule import README, blocks, section

    ((lang, code),) = blocks(section(README.read_text(), "From Python"))
    assert lang == "python"
    monkeypatch.chdir(tmp_path)  # its run folders go to ./runs, as for a reader
    exec(compile(code.replace("../shared/data", str(shared_data)), "README.md", "exec"), {})
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and "-fa-mnist-mnist_fc-s0" in runs[0] and "-compare-digits-" in runs[1]


def test_the_example_script_uses_the_api_to_the_end(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "examples" / "compare_rules.py"
    args = [sys.executable, str(script), "--rules", "bp", "fa", "--epochs", "1", "--out", str(tmp_path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| bp |" in done.stdout and "| fa |" in done.stdout and "best: " in done.stdout
    (folder,) = tmp_path.iterdir()
    assert (folder / "curves.png").is_file()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("yes", '"yes"'),
        ("/tmp/run #1", '"/tmp/run #1"'),
        ("a: b", '"a: b"'),
        ("0x10", '"0x10"'),
        ("relu", "relu"),
        ("1e-3", "1e-3"),
        (np.float64(1e-3), "0.001"),
        (np.int64(3), "3"),
        (np.float32(0.5), "0.5"),
        (np.bool_(True), "true"),
        (torch.tensor(2), "2"),
        ([np.float64(0.5), "yes"], '[0.5, "yes"]'),
    ],
)
def test_values_are_read_back_as_given(value, expected):
    from bioscale.api.tokens import value_text

    assert value_text(value, "k") == expected


def test_strings_numpy_numbers_and_an_empty_config_reach_the_run_as_given(tmp_path):
    root = tmp_path / "data #1"
    run = bioscale.train(
        "fa",
        config={},
        output_dir=tmp_path / "out",
        rules={"fa": {"optimizer": {"lr": np.float64(1e-3), "beta2": np.float32(0.99)}}},
        data={"root": str(root)},
        **SMALL,
    )
    assert run.config["data"]["root"] == str(root)
    assert run.config["rules"]["fa"]["optimizer"]["lr"] == 1e-3
    assert run.config["rules"]["fa"]["optimizer"]["beta2"] == pytest.approx(0.99)


def test_keywords_override_the_config_and_overrides_come_last(tmp_path):
    config = {"model": "mnist_fc", "rule": "bp", "trainer": {"epochs": 5}}
    tokens = __import__("bioscale.api.training", fromlist=["_tokens"])._tokens(
        "fa", "digits_fc", None, config, ["rule=dfa"], {"trainer": {"epochs": 1}}
    )
    from bioscale.config import build_run_config

    cfg = build_run_config(tokens)
    assert (cfg.model.preset, cfg.rule, cfg.trainer.epochs) == ("digits_fc", "dfa", 1)


def test_sweep_trials_is_a_default_the_sweep_section_overrides(tmp_path):
    one = {**SMALL, "trainer": {**SMALL["trainer"], "epochs": 1}}
    found = bioscale.sweep("bp", sweep={"trials": 1}, output_dir=tmp_path, **one)
    assert len(found.trials) == 1
    assert len(found.to_pandas()) == 1


def test_resume_refuses_other_data_under_the_same_name(tmp_path):
    x, y = _arrays()
    data = (x[:200], y[:200], x[200:], y[200:])
    one = {**SMALL, "trainer": {**SMALL["trainer"], "epochs": 1}}
    first = bioscale.train("bp", data=data, output_dir=tmp_path, **one)
    x2, y2 = _arrays(seed=1)
    bioscale.train("bp", data=(x2[:200], y2[:200], x2[200:], y2[200:]), output_dir=tmp_path, **one)  # replaces it
    with pytest.raises(bioscale.ConfigError, match="data 'arrays' registered now .* is not the one the run trained"):
        bioscale.resume(first.dir, trainer={"epochs": 2})
    assert len(first.metrics) == 1  # refused before any work
    assert bioscale.resume(first.dir, data=data, trainer={"epochs": 2}).status == "completed"


def test_resume_needs_a_module_and_a_rule_class_from_python_again(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    one = {"trainer": {"epochs": 1, "progress": False}}
    run = bioscale.train(Halved, model=net, output_dir=tmp_path, **one)
    from bioscale import local_plugins

    local_plugins._registered.clear()  # a new process
    with pytest.raises(bioscale.ConfigError, match="rule 'halved' came from Python"):
        bioscale.resume(run.dir, trainer={"epochs": 2})
    bioscale.register_rule(Halved)
    with pytest.raises(bioscale.ConfigError, match="architecture 'Sequential' came from Python: give it again"):
        bioscale.resume(run.dir, trainer={"epochs": 2})
    torch.manual_seed(123)
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))  # other initial weights
    with pytest.raises(bioscale.ConfigError, match="architecture 'Sequential' registered now"):
        bioscale.resume(run.dir, model=other, trainer={"epochs": 2})
    assert bioscale.resume(run.dir, model=net, trainer={"epochs": 2}).status == "completed"


def test_the_run_model_needs_neither_its_rule_nor_its_data(tmp_path):
    x, y = _arrays()
    run = bioscale.train(Halved, data=(x[:200], y[:200], x[200:], y[200:]), output_dir=tmp_path, **SMALL)
    from bioscale import local_plugins

    local_plugins._registered.clear()  # a new process: neither the rule nor the arrays are there
    assert run.model(torch.zeros(2, 3, 6, 6)).shape == (2, 2)


def test_channels_first_arrays_are_moved_to_channels_last(tmp_path):
    x, y = _arrays()
    first = np.ascontiguousarray(np.moveaxis(x, -1, 1))  # (N, 3, 6, 6)
    a = bioscale.train("bp", data=(x[:200], y[:200], x[200:], y[200:]), output_dir=tmp_path, **SMALL)
    b = bioscale.train("bp", data=(first[:200], y[:200], first[200:], y[200:]), output_dir=tmp_path, **SMALL)
    assert b.config["run_info"]["in_shape"] == [3, 6, 6] and _losses(a) == _losses(b)


def test_a_sweep_of_installed_plugins_may_use_workers_after_a_registration(tmp_path):
    from bioscale.api.training import _uses_python_plugins

    bioscale.register_rule(Halved)
    assert not _uses_python_plugins(["rule=bp", "sweep.workers=2"])
    assert _uses_python_plugins(["rule=halved", "sweep.workers=2"])
    bioscale.register_observer(_Interrupter, "interrupter")
    assert _uses_python_plugins(["rule=bp"])
    assert not _uses_python_plugins(["rule=bp", "observers.interrupter.enabled=false"])


def test_a_diverging_rule_is_a_row_of_the_comparison(tmp_path):
    result = bioscale.compare(["bp", Nan], output_dir=tmp_path, **SMALL)
    assert [r["status"] for r in result.rows] == ["completed", "diverged"]
    assert "| nan (diverged) |" in result.table
    assert result.plot().axes


def test_register_architecture_and_dataset_by_hand(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 2))
    x, y = _arrays()
    assert bioscale.register_architecture("tiny", net) == "tiny"
    assert bioscale.register_dataset("halves", (x[:200], y[:200], x[200:], y[200:])) == "halves"
    run = bioscale.train(
        "bp", model="tiny", data="halves", output_dir=tmp_path, trainer={"epochs": 1, "progress": False}
    )
    assert (run.config["model"]["preset"], run.config["data"]["name"]) == ("tiny", "halves")
    code = run.config["run_info"]["code"]
    assert code["architecture"]["source_hash"].startswith("sha256:") and code["data"]["distribution"] == "python"


def test_a_call_leaves_the_callers_random_state_and_threads_as_they_were(tmp_path):
    torch.manual_seed(7)
    expected, threads = torch.rand(3), torch.get_num_threads()
    torch.manual_seed(7)
    settings = {**SMALL, "trainer": {**SMALL["trainer"], "threads": threads + 1}}
    bioscale.train("fa", output_dir=tmp_path, **settings)  # seeds its own run, then gives the state back
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_one_x_y_pair_holds_out_a_tenth_as_its_test_split(tmp_path):
    x, y = _arrays(n=250)
    run = bioscale.train("bp", data=(x, y), output_dir=tmp_path, **SMALL)
    info = run.config["run_info"]
    assert (info["train_examples"], info["test_examples"]) == (225, 25)
    again = bioscale.train("bp", data=(torch.from_numpy(x), torch.from_numpy(y)), output_dir=tmp_path, **SMALL)
    assert _losses(again) == _losses(run)  # the same rows held out, numpy or torch
    with pytest.raises(bioscale.ConfigError, match="as many labels as images"):
        bioscale.train("bp", data=(x, y[:10]), output_dir=tmp_path)
