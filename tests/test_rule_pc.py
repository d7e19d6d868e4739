"""Predictive coding: its limiting cases against autograd, the LayerTarget contract, and the kit."""

import pytest
import torch
from bioscale import LayerTarget
from bioscale.errors import RuleContractError
from bioscale.testing import check_rule_contract, make_step, new_trainer, rule_plugin

DEEP = ["model.widths=[24,20,16]"]  # L = 4: three hidden states to settle
POOLED = [
    "model.blocks=[{type: conv, channels: 6, kernel: 3, pool: max}, {type: conv, channels: 8, kernel: 3, pool: avg}]",
    "model.widths=[16]",
]


def _probe(tmp_path, tokens):
    trainer = new_trainer("pc", tmp_path, [*DEEP, *tokens])
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    probe = trainer.probe_gradients(x, y)
    return probe["names"], probe["rule"], probe["exact"]


@pytest.mark.parametrize("steps", [3, 10])
def test_fixed_prediction_with_unit_steps_gives_bp_gradients_once_t_reaches_the_depth(tmp_path, steps):
    """η = 1, T ≥ L - 1: each step moves the exact error one layer down (Millidge et al. 2020)."""
    tokens = ["rules.pc.variant=fixed_prediction", "rules.pc.state_lr=1", f"rules.pc.steps={steps}"]
    for name, mine, ref in zip(*_probe(tmp_path, tokens)):
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-7, msg=name)


def test_fixed_prediction_short_of_the_depth_leaves_the_lowest_layer_without_signal(tmp_path):
    """T = 2 < L - 1 = 3: the error has not reached layer 1 (the check above can fail)."""
    tokens = ["rules.pc.variant=fixed_prediction", "rules.pc.state_lr=1", "rules.pc.steps=2"]
    grads = dict((n, (mine, ref)) for n, mine, ref in zip(*_probe(tmp_path, tokens)))
    mine, ref = grads["layers.0.op.weight"]
    assert ref.abs().max() > 0 and mine.abs().max() == 0
    torch.testing.assert_close(*grads["layers.2.op.weight"], rtol=1e-5, atol=1e-7)


def test_fixed_prediction_converged_with_small_steps_gives_bp_gradients(tmp_path):
    tokens = ["rules.pc.variant=fixed_prediction", "rules.pc.state_lr=0.2", "rules.pc.steps=200"]
    for name, mine, ref in zip(*_probe(tmp_path, tokens)):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6, msg=name)


def test_strict_pc_tends_to_bp_as_the_nudging_vanishes(tmp_path):
    """Settled (300 small steps) strict PC at output weight β: its update (the errors rescaled by 1/β)
    differs from BP's by O(β): 4-12 % at β = 0.1, ten times less at β = 0.01 (below β ≈ 3e-3 float32's
    spacing of the states, about 1e-3 of the update, is the floor)."""
    errors = {}
    for beta in (1e-1, 1e-2):
        tokens = ["rules.pc.state_lr=0.2", "rules.pc.steps=300", f"rules.pc.beta={beta}"]
        found = _probe(tmp_path / str(beta), tokens)
        errors[beta] = {n: ((m - r).norm() / r.norm()).item() for n, m, r in zip(*found) if n.endswith("weight")}
    for name, err in errors[1e-2].items():
        assert err < 0.02 and err < errors[1e-1][name] / 5, (name, err, errors[1e-1][name])


def test_strict_pc_at_full_clamping_is_not_bp(tmp_path):
    tokens = ["rules.pc.state_lr=0.2", "rules.pc.steps=200", "rules.pc.beta=1"]
    errs = [((m - r).norm() / r.norm()).item() for _, m, r in zip(*_probe(tmp_path, tokens))]
    assert max(errs) > 1e-2


def test_strict_pc_hands_the_core_each_layers_settled_input(tmp_path):
    trainer = new_trainer("pc", tmp_path, [*DEEP, "rules.pc.steps=5"])
    rule, step = rule_plugin(trainer), make_step(trainer)
    top = rule.bioscale_output_target(step=step)
    assert isinstance(top, LayerTarget) and top.target is None and top.input.shape == step.h[3].shape
    assert not torch.equal(top.input, step.h[3].float())  # the states moved
    for layer in (4, 3):
        found = rule.bioscale_layer_target(step=step, layer=layer, target_above=None)
        assert isinstance(found, LayerTarget) and found.input.shape == step.h[layer - 2].shape
    assert torch.is_tensor(rule.bioscale_layer_target(step=step, layer=2, target_above=None))  # layer 1 reads x


@pytest.mark.parametrize("variant", ["strict", "fixed_prediction"])
def test_pc_keeps_the_rule_contract(tmp_path, variant):
    check_rule_contract("pc", tmp_path, [f"rules.pc.variant={variant}", "rules.pc.steps=8"])


def test_pc_keeps_the_rule_contract_on_a_pooled_net(tmp_path):
    check_rule_contract("pc", tmp_path, [*POOLED, "rules.pc.steps=8"], data_parallel=False)


class _Broken:
    """A LayerTarget whose input does not fit the layer it is for."""

    def __init__(self, config):
        pass

    def bioscale_layer_target(self, step, layer, target_above):
        return LayerTarget(step.h[layer - 1].float(), torch.zeros(step.batch_size, 3))


def test_a_layer_target_with_a_misshapen_input_is_a_contract_error(tmp_path):
    from bioscale import RuleConfig, hookimpl
    from bioscale.testing import fake_entry

    class Broken(_Broken):
        Config = RuleConfig
        bioscale_layer_target = hookimpl(_Broken.bioscale_layer_target)

    trainer = new_trainer(fake_entry(Broken, "broken"), tmp_path, DEEP)
    with pytest.raises(RuleContractError, match="bioscale_layer_target for layer 3"):
        trainer.train_step(trainer.data.train.x[:16], trainer.data.train.y[:16], 0, frozenset({"forward"}), 0.0)


def test_under_mix_pc_settles_its_layers_when_another_rule_owns_the_output(tmp_path):
    """pc on every hidden layer, bp at the output: pc settles on its first call of the step, and keeps
    nothing of a step after it (layer 1's target is its last)."""
    trainer = new_trainer("mix", tmp_path, [*DEEP, "rules.mix.layers=[pc,pc,pc,bp]", "trainer.epochs=1"])
    assert trainer.fit()["status"] == "completed"
    pc = trainer.rule_hooks.plugin.rules["pc"].plugin
    assert pc._targets == {} and pc._inputs == {}


def test_under_mix_pc_must_own_every_hidden_layer(tmp_path):
    from bioscale.errors import ConfigError

    with pytest.raises(ConfigError, match="pc settles every hidden state"):
        new_trainer("mix", tmp_path, [*DEEP, "rules.mix.layers=[fa,pc,pc,pc]"])
