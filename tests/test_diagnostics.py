"""The diagnostics observer: angles to BP and inverse errors per epoch, at no per-step cost."""

import json

import torch
from bioscale.config import build_run_config, resolve_observers
from bioscale.testing import model_weights, new_trainer
from bioscale_diagnostics import Diagnostics, angle_degrees


def diagnostics_spec():
    return [o for o in resolve_observers(build_run_config([])) if o.name == "diagnostics"]


def test_angle_degrees():
    a = torch.tensor([1.0, 0.0])
    assert angle_degrees(a, a) == 0.0
    assert abs(angle_degrees(a, torch.tensor([0.0, 2.0])) - 90) < 1e-9
    assert abs(angle_degrees(a, -a) - 180) < 1e-9
    assert angle_degrees(a, torch.zeros(2)) is None


def test_diagnostics_is_installed_enabled_and_cheap():
    assert diagnostics_spec(), "the diagnostics observer is installed and on by default"
    assert not hasattr(Diagnostics, "bioscale_step_end")  # nothing per step


def test_angles_and_inverse_errors_land_in_metrics(tmp_path):
    bp = new_trainer("bp", tmp_path / "bp", observers=diagnostics_spec())
    bp.fit()
    dtp = new_trainer("dtp", tmp_path / "dtp", observers=diagnostics_spec())
    dtp.fit()
    bp_line = json.loads((bp.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(bp_line["angle_to_bp"]) == {"1", "2", "3"}
    assert all(a < 1e-2 for a in bp_line["angle_to_bp"].values())  # BP is BP
    assert "inverse_error" not in bp_line
    dtp_line = json.loads((dtp.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert dtp_line["angle_to_bp"]["3"] < 1e-2  # the output layer is trained on the task loss
    assert 0 < dtp_line["angle_to_bp"]["1"] < 90
    assert set(dtp_line["inverse_error"]) == {"2"} and dtp_line["inverse_error"]["2"] > 0


def test_diagnostics_do_not_change_training(tmp_path):
    with_diag = new_trainer("dtp", tmp_path / "a", observers=diagnostics_spec())
    with_diag.fit()
    without = new_trainer("dtp", tmp_path / "b")
    without.fit()
    for name, value in model_weights(with_diag).items():
        assert torch.equal(value, model_weights(without)[name]), name
