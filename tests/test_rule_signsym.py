"""Sign symmetry: feedback through sign(W) with uniform, batchwise random or fixed random magnitudes."""

import math

import pytest
import torch
from bioscale.testing import check_rule_contract, make_step, new_trainer, rule_plugin

VARIANTS = ("usf", "brsf", "frsf")


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_keeps_the_contract_resumes_and_ignores_probes(tmp_path, variant):
    check_rule_contract("signsym", tmp_path, [f"rules.signsym.variant={variant}"])


def test_with_the_forward_weights_own_magnitudes_sign_symmetry_is_backprop(tmp_path):
    trainer = new_trainer("signsym", tmp_path, ["rules.signsym.variant=frsf"])
    rule = rule_plugin(trainer)
    for l, m in rule.magnitudes.weights.items():
        m.copy_(trainer.model.ops[l - 1].weight.detach().abs())  # |W| ⊙ sign(W) = W
    step = make_step(trainer)
    grad = torch.randn_like(step.h[3])
    torch.testing.assert_close(
        rule.bioscale_feedback_signal(step=step, layer=3, grad_above=grad), step.layer_vjp(3, grad), rtol=0, atol=1e-6
    )


def test_usf_uses_one_scale_per_layer_times_the_current_signs(tmp_path):
    trainer = new_trainer("signsym", tmp_path)
    rule = rule_plugin(trainer)
    op = trainer.model.ops[1]
    expected_scale = math.sqrt(6.0 / (op.fan_in + op.fan_out)) / math.sqrt(3.0)  # the Glorot init's std
    assert rule.scales[2] == pytest.approx(expected_scale)
    torch.testing.assert_close(rule.feedback_weight(2), expected_scale * torch.sign(op.weight.detach()))
    fixed = rule_plugin(new_trainer("signsym", tmp_path / "s", ["rules.signsym.scale=0.5"]))
    assert fixed.scales[2] == 0.5


def test_brsf_draws_new_magnitudes_every_call_with_the_forward_signs(tmp_path):
    trainer = new_trainer("signsym", tmp_path, ["rules.signsym.variant=brsf"])
    rule = rule_plugin(trainer)
    a, b = rule.feedback_weight(2), rule.feedback_weight(2)
    signs = torch.sign(trainer.model.ops[1].weight.detach())
    assert not torch.equal(a, b)
    assert torch.equal(torch.sign(a), signs) and torch.equal(torch.sign(b), signs)


def test_an_unknown_variant_is_refused(tmp_path):
    from bioscale.errors import ConfigError

    with pytest.raises(ConfigError, match="variant"):
        new_trainer("signsym", tmp_path, ["rules.signsym.variant=xsf"])
