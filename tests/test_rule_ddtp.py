"""DDTP-linear: direct feedback Q_l from the output, trained to invert the output's differences."""

import pytest
import torch
from bioscale.testing import check_rule_contract, make_step, new_trainer, rule_plugin


@pytest.mark.parametrize("schedule", ["parallel", "alternating"])
def test_ddtp_keeps_the_contract_resumes_and_ignores_probes(tmp_path, schedule):
    check_rule_contract("ddtp", tmp_path, [f"rules.ddtp.schedule={schedule}"])


def test_targets_are_the_output_step_sent_down_by_q(tmp_path):
    trainer = new_trainer("ddtp", tmp_path, ["rules.ddtp.beta=0.3"])
    rule = rule_plugin(trainer)
    step = make_step(trainer)
    e = torch.softmax(step.logits, 1) - step.onehot_labels()
    torch.testing.assert_close(rule.bioscale_output_target(step=step), step.logits - 0.3 * e)
    t1 = rule.bioscale_layer_target(step=step, layer=2, target_above=None)
    torch.testing.assert_close(t1, step.h[1] - 0.3 * e @ rule.feedback[1])


def test_trained_feedback_is_the_pseudo_inverse_of_the_output_jacobian_on_a_linear_net(tmp_path):
    trainer = new_trainer(
        "ddtp",
        tmp_path,
        [
            "model.activation=identity",
            "model.widths=[12,12]",
            "rules.ddtp.sigma=0.05",
            "rules.ddtp.inverse_optimizer.lr=0.03",
        ],
    )
    rule = rule_plugin(trainer)
    x, y = trainer.data.train.x[:256], trainer.data.train.y[:256]
    for _ in range(1300):  # feedback training only: the forward weights stay fixed
        trainer.train_step(x, y, 0, frozenset({"inverse"}), 0.0)
    ops = trainer.model.ops
    for l in (1, 2):
        jac = torch.eye(12)
        for op in ops[l:]:
            jac = op.weight.detach() @ jac  # ∂h_L/∂h_l of the linear net: (classes, 12)
        pinv = torch.linalg.pinv(jac).t()  # Q_l is (classes, n_l): h_l ≈ Δ_L Q_l
        q = rule.feedback[l]
        assert (q - pinv).norm() / pinv.norm() < 0.1, l
