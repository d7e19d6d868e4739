"""L-DRL: feedback trained by the L-DRL loss so that its Jacobian matches the forward layer's transpose."""

import math

import pytest
import torch
from bioscale.testing import check_rule_contract, make_step, new_trainer, rule_plugin


@pytest.mark.parametrize("schedule", ["parallel", "alternating"])
def test_ldrl_keeps_the_contract_resumes_and_ignores_probes(tmp_path, schedule):
    check_rule_contract("ldrl", tmp_path, [f"rules.ldrl.schedule={schedule}"])


def test_targets_are_the_difference_correction_of_the_output_step(tmp_path):
    trainer = new_trainer("ldrl", tmp_path, ["rules.ldrl.beta=0.2"])
    rule = rule_plugin(trainer)
    step = make_step(trainer)
    L = step.num_layers
    t_L = rule.bioscale_output_target(step=step)
    e = torch.softmax(step.logits, 1) - step.onehot_labels()
    torch.testing.assert_close(t_L, step.logits - 0.2 * e)
    g = rule.inverses[L]
    expected = step.h[L - 1] + g(t_L) - g(step.h[L])
    torch.testing.assert_close(rule.bioscale_layer_target(step=step, layer=L, target_above=t_L), expected)


def test_the_feedback_jacobian_becomes_the_forward_jacobians_transpose_on_a_linear_pair(tmp_path):
    trainer = new_trainer(
        "ldrl",
        tmp_path,
        [
            "model.activation=identity",
            "rules.ldrl.inverse_activation=identity",
            "rules.ldrl.sigma=0.5",
            "rules.ldrl.inverse_optimizer.lr=0.01",
        ],
    )
    rule = rule_plugin(trainer)
    x, y = trainer.data.train.x[:256], trainer.data.train.y[:256]
    for _ in range(600):  # feedback training only: the forward weights stay fixed
        trainer.train_step(x, y, 0, frozenset({"inverse"}), 0.0)
    for l, g in rule.inverses.items():
        w, v = trainer.model.ops[l - 1].weight.detach(), g.weight.detach()
        # G's Jacobian is Vᵀ (h ↦ h V + c), F's is W: the L-DRL minimum is V = W
        cos = torch.nn.functional.cosine_similarity(v.flatten(), w.flatten(), dim=0)
        assert math.degrees(math.acos(float(cos.clamp(-1, 1)))) < 10, l
        assert (v - w).norm() / w.norm() < 0.2, l
