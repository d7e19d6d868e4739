"""``bioscale sweep``: trials on a shared Optuna study, resumable, validated before it starts."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys

import pytest
from bioscale.commands.train import prepare
from bioscale.config import build_run_config
from bioscale.errors import ConfigError
from bioscale.search.space import parse_spec
from conftest import TINY, run_cli

BASE = ["rule=bp", *TINY, "trainer.epochs=2", "observers.diagnostics.enabled=false"]


def report(folder) -> dict:
    return json.loads((folder / "sweep.json").read_text())


@pytest.mark.slow
def test_two_workers_share_one_study_and_the_best_command_reproduces_the_best_trial(tmp_path):
    folder = tmp_path / "sweep"
    result = run_cli("sweep", *BASE, "sweep.trials=4", "sweep.workers=2", f"sweep.dir={folder}")
    assert result.returncode == 0, result.stderr
    doc = report(folder)
    assert [t["status"] for t in doc["trials"]] == ["complete"] * 4
    assert len(list((folder / "trials").iterdir())) == 4
    assert len({json.dumps(t["settings"], sort_keys=True) for t in doc["trials"]}) == 4  # four configurations
    assert (folder / "sweep.png").is_file() and "Reproduce it with" in (folder / "sweep.md").read_text()
    best = doc["best"]
    tokens = shlex.split(best["command"])[2:]  # after "bioscale train"
    assert not any(t.startswith("sweep.") for t in tokens)
    trainer = prepare([*tokens, f"output_dir={tmp_path / 'again'}"])
    summary = trainer.fit()
    assert summary["best_val_error"] == best["best_val_error"]


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_running_a_finished_trial_twice(tmp_path):
    folder = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "bioscale",
        "sweep",
        *BASE,
        "trainer.epochs=40",
        "sweep.trials=3",
        f"sweep.dir={folder}",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_first = False
    for line in proc.stderr:
        if "epoch 1/40" in line and seen_first:  # the second trial is training
            proc.send_signal(signal.SIGKILL)  # it dies with its worker
            break
        seen_first = seen_first or line.startswith("[bioscale] sweep: 1/3 done")
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    trials = report(folder)["trials"]
    complete = [t for t in trials if t["status"] == "complete"]
    assert len(complete) == 3
    assert [t["trial"] for t in complete][0] == 0 and sum(t["trial"] == 0 for t in trials) == 1
    died = [t for t in trials if t["status"] == "worker died"]
    assert len(died) == 1 and any(
        t["retry_of"] == died[0]["trial"] and t["settings"] == died[0]["settings"] for t in complete
    )
    assert len({json.dumps(t["settings"], sort_keys=True) for t in complete}) == 3
    doc = report(folder)  # the report keeps the first sitting's provenance and lists both sittings
    assert len(doc["sessions"]) == 2 and doc["started"] == doc["sessions"][0]["started"]
    assert "- sittings" in (folder / "sweep.md").read_text()


def test_a_space_outside_a_config_range_is_refused_before_any_trial(tmp_path):
    result = run_cli(
        "sweep", *BASE, "sweep.space.rules.bp.optimizer.beta2=uniform:0.9:1.5", f"sweep.dir={tmp_path / 's'}"
    )
    assert result.returncode == 2
    assert "sweep space rules.bp.optimizer.beta2" in result.stderr and "must be in [0, 1)" in result.stderr
    assert not (tmp_path / "s" / "trials").exists()


def test_a_rule_without_a_space_is_told_how_to_give_one(tmp_path, fake_site):
    from test_discovery import THIRD_PARTY_RULE

    fake_site.add_distribution(
        "bioscale-sign",
        "1.0",
        "bioscale_sign",
        THIRD_PARTY_RULE,
        {"bioscale.rules": {"sign": "bioscale_sign:SignSymmetry"}},
    )
    result = run_cli("sweep", "rule=sign", *TINY, f"sweep.dir={tmp_path / 's'}")
    assert result.returncode == 2 and "declares no search space" in result.stderr and "sweep.space=" in result.stderr


@pytest.mark.parametrize(
    "spec, message",
    [
        ("normal:0:1", "unknown kind"),
        ("loguniform:0:1", "LOW > 0"),
        ("uniform:2:1", "LOW < HIGH"),
        ("int:a:b", "LOW:HIGH numbers"),
        ("choice:", "at least one"),
    ],
)
def test_bad_space_specs_name_the_key(spec, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_spec("rules.bp.optimizer.lr", spec)
    assert "rules.bp.optimizer.lr" in str(info.value)


def test_choices_keep_their_types():
    assert parse_spec("k", "choice:1e-4,1e-6").values == (1e-4, 1e-6)
    assert parse_spec("k", "choice:64,128").values == (64, 128)
    assert parse_spec("k", "choice:tanh,relu").values == ("tanh", "relu")


NAN_RULE = '''
from dataclasses import dataclass
from bioscale import RuleConfig, hookimpl

@dataclass
class NanConfig(RuleConfig):
    scale: float = 1.0

class NanRule:
    """BP whose signals turn to NaN after a few steps (a test rule that diverges)."""
    Config = NanConfig
    search_space = {"scale": "uniform:0.5:1.0"}

    def __init__(self, config):
        self.config = config

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        signal = step.layer_vjp(layer, grad_above) * self.config.scale
        return signal * float("nan") if step.index > 3 else signal
'''


@pytest.mark.slow
def test_a_diverging_trial_counts_as_failed_and_the_sweep_goes_on(tmp_path, fake_site):
    fake_site.add_distribution(
        "bioscale-nan", "1.0", "bioscale_nan", NAN_RULE, {"bioscale.rules": {"nan": "bioscale_nan:NanRule"}}
    )
    folder = tmp_path / "sweep"
    result = run_cli("sweep", "rule=nan", *BASE[1:], "sweep.trials=2", "trainer.log_every=1", f"sweep.dir={folder}")
    assert result.returncode == 0, result.stderr
    trials = report(folder)["trials"]
    assert [t["status"] for t in trials] == ["failed", "failed"]
    assert all(t["failure"].startswith("diverged") for t in trials)


def test_sweep_settings_are_checked(tmp_path):
    result = run_cli("sweep", *BASE, "sweep.trials=0")
    assert result.returncode == 2 and "sweep.trials must be >= 1" in result.stderr
    result = run_cli("sweep", *BASE, "sweep.sampler=grid")
    assert result.returncode == 2 and "sampler" in result.stderr


def test_the_paper_space_is_every_paper_rules_default():
    from bioscale.discovery import RULES_GROUP, discover, load_rule_class
    from bioscale.search.space import rule_space

    rules = discover(RULES_GROUP)
    keys = {name: set(rule_space(name, load_rule_class(name, rules)[1])) for name in ("bp", "dtp", "sdtp")}
    assert keys["bp"] == {"rules.bp.optimizer.lr", "rules.bp.optimizer.beta2", "rules.bp.optimizer.eps"}
    assert {"rules.dtp.alpha", "rules.dtp.sigma", "rules.dtp.inverse_optimizer.lr"} <= keys["dtp"]
    assert "rules.sdtp.alpha" not in keys["sdtp"] and "rules.sdtp.sigma" in keys["sdtp"]
    assert build_run_config(["rule=bp"]).rule == "bp"


def test_an_error_in_the_sweeps_own_input_stops_it_instead_of_failing_every_trial(tmp_path, monkeypatch):
    """A broken environment (here: every trial's data is missing) is not a configuration's
    fault: the sweep stops with exit status 2 and the slot is drawn again on a rerun."""
    from bioscale.commands import sweep
    from bioscale.errors import DataError

    def missing(*args, **kwargs):
        raise DataError("the data vanished")

    monkeypatch.setattr("bioscale.search.study.SweepWork.data_for", missing)
    with pytest.raises(DataError):
        sweep.main([*BASE, "sweep.trials=3", f"sweep.dir={tmp_path / 's'}"])
    trials = report(tmp_path / "s")["trials"]
    assert [t["status"] for t in trials] == ["stopped"] and trials[0]["error"] == "the data vanished"


def test_a_study_searched_over_another_space_is_refused(tmp_path):
    from bioscale.commands import sweep

    folder = tmp_path / "s"
    assert sweep.main([*BASE, "trainer.epochs=1", "sweep.trials=1", f"sweep.dir={folder}"]) == 0
    with pytest.raises(ConfigError, match="searched over another space"):
        sweep.main(
            [
                *BASE,
                "trainer.epochs=1",
                "sweep.trials=2",
                "sweep.space.rules.bp.optimizer.lr=choice:1e-4",
                f"sweep.dir={folder}",
            ]
        )
    assert len(report(folder)["trials"]) == 1
