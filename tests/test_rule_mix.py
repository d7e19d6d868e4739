"""rule=mix: one rule per layer; a mix of one rule is that rule; blocks of different rules meet."""

import pytest
import torch
from bioscale.errors import ConfigError
from bioscale.testing import check_rule_contract, model_weights, new_trainer, rule_plugin

NET = ["model.widths=[32,32,32]"]  # L = 4


@pytest.mark.parametrize("rule, tokens", [("fa", []), ("dtp", ["rules.dtp.schedule=alternating"]), ("kp", [])])
def test_a_mix_of_one_rule_trains_exactly_as_that_rule(tmp_path, rule, tokens):
    plain = new_trainer(rule, tmp_path / "plain", [*NET, *tokens])
    plain.fit()
    mixed = new_trainer(
        "mix",
        tmp_path / "mix",
        [
            *NET,
            *tokens,
            f"rules.mix.layers=[{rule},{rule},{rule},{rule}]",
            *(
                ["rules.mix.optimizer.weight_decay=0.1", "rules.mix.optimizer.decoupled_weight_decay=true"]
                if rule == "kp"
                else []
            ),
        ],
    )
    mixed.fit()
    for name, value in model_weights(plain).items():
        assert torch.equal(value, model_weights(mixed)[name]), name


def test_each_rule_builds_state_for_its_own_layers_only(tmp_path):
    trainer = new_trainer("mix", tmp_path, [*NET, "rules.mix.layers=[fa,dtp,dtp,dtp]"])
    mix = rule_plugin(trainer)
    inner = {n: mix.rules[n].plugin for n in ("fa", "dtp")}  # the inner rules' objects
    assert sorted(inner["fa"].feedback.weights) == [2]  # B_2: the signal of layer 1
    assert sorted(int(k) for k in inner["dtp"].inverses) == [3]  # g_3: the target of layer 2 (layer 3's is DTP's top)


@pytest.mark.parametrize(
    "layers", ["[fa,dtp,dtp,dtp]", "[dtp,fa,fa,fa]", "[dtp,sdtp,fa,sdtp]", "[fa,kp,ldrl,fa]", "[fa,fa,sdtp,bp]"]
)
def test_mixed_blocks_keep_the_contract_and_learn(tmp_path, layers):
    tokens = [*NET, f"rules.mix.layers={layers}", "rules.dtp.schedule=parallel", "rules.sdtp.schedule=parallel"]
    summary = check_rule_contract("mix", tmp_path, tokens)
    assert summary["status"] == "completed"


def test_a_target_under_a_signal_is_the_target_that_signal_stands_for(tmp_path):
    from bioscale.credit import assign_credit
    from bioscale.testing import make_step

    trainer = new_trainer("mix", tmp_path, [*NET, "rules.mix.layers=[dtp,bp,bp,bp]"])
    step = make_step(trainer)
    trace = {}
    assign_credit(trainer.rule_hooks, step, trace)
    mix = rule_plugin(trainer)
    dtp = mix.rules["dtp"].plugin
    signal_2 = trace["signals"][2]  # BP's δh_2
    t_2 = step.h[2] - signal_2 * (step.batch_size / 2)
    expected = dtp.difference_target(step, 2, t_2, step.h[2])
    torch.testing.assert_close(trace["targets"][1], expected)
    torch.testing.assert_close(2 * (step.h[2] - t_2) / step.batch_size, signal_2)  # the local loss gives it back


@pytest.mark.parametrize(
    "tokens, message",
    [
        (["rules.mix.layers=[fa,fa]"], "names 2 rule\\(s\\) for a net of 4 layers"),
        (["rules.mix.layers=[fa,nope,fa,fa]"], "no installed rule is called 'nope'"),
        (["rules.mix.layers=[fa,mix,fa,fa]"], "itself"),
        ([], "name one installed rule per layer"),
        (
            ["rules.mix.layers=[dtp,sdtp,sdtp,sdtp]", "rules.dtp.schedule=parallel", "rules.sdtp.schedule=alternating"],
            "ask for different passes",
        ),
    ],
)
def test_a_mix_that_cannot_work_is_refused_naming_it(tmp_path, tokens, message):
    with pytest.raises(ConfigError, match=message):
        new_trainer("mix", tmp_path, [*NET, *tokens])


def test_compare_runs_mix_only_when_named_since_it_needs_its_layers():
    from bioscale.commands.compare import default_rules

    rules = default_rules()
    assert "mix" not in rules and {"bp", "fa", "kp", "signsym", "wm"} <= set(rules)


def test_compare_takes_a_mix_with_its_layer_list():
    from bioscale.commands.compare import split_args

    entries, tokens = split_args(["mix:layers=[fa,dtp,dtp],optimizer.lr=0.01", "fa", "trainer.epochs=2"])
    assert entries[0] == (
        "mix:layers=[fa,dtp,dtp],optimizer.lr=0.01",
        "mix",
        ["rules.mix.layers=[fa,dtp,dtp]", "rules.mix.optimizer.lr=0.01"],
    )
    assert entries[1][1] == "fa" and tokens == ["trainer.epochs=2"]


def test_a_target_rule_under_an_output_without_target_gets_the_task_losss_own_signal(tmp_path):
    from bioscale.credit import assign_credit
    from bioscale.testing import make_step

    trainer = new_trainer("mix", tmp_path, [*NET, "rules.mix.layers=[fa,fa,ldrl,fa]"])
    step = make_step(trainer)
    trace = {}
    assign_credit(trainer.rule_hooks, step, trace)
    ldrl = rule_plugin(trainer).rules["ldrl"].plugin
    t_L = step.h[4] - step.output_grad * (step.batch_size / 2)
    g = ldrl.inverses[4]
    torch.testing.assert_close(trace["targets"][3], step.h[3] + g(t_L) - g(step.h[4]))
    assert trace["signals"][3].abs().max() > 0  # not the zero signal of t = h


def test_kp_owning_no_hidden_layer_in_a_mix_has_nothing_to_train(tmp_path):
    trainer = new_trainer("mix", tmp_path, [*NET, "rules.mix.layers=[fa,fa,fa,kp]"])
    assert trainer.fit()["status"] == "completed"
    assert rule_plugin(trainer).rules["kp"].plugin.optimizer is None


@pytest.mark.parametrize("layers, kept", [("[fa,fa,bp]", False), ("[kp,fa,bp]", False), ("[fa,fa,dtp]", False)])
def test_mix_keeps_the_step_only_when_an_inner_rule_reads_it(tmp_path, layers, kept):
    """mix takes ``grads`` to pass them on; the step is let go layer by layer unless an inner rule reads them."""
    from bioscale.testing import new_trainer

    trainer = new_trainer("mix", tmp_path, [f"rules.mix.layers={layers}", "rules.dtp.schedule=parallel"])
    assert trainer.rule_hooks.reads_step_after_credit == kept
    assert trainer.fit()["status"] == "completed"


READER = """
from bioscale import RuleConfig, hookimpl

class Reader:
    '''BP that reads every signal and hidden output after credit.'''
    Config = RuleConfig

    def __init__(self, config):
        self.seen = []

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)

    @hookimpl
    def bioscale_after_forward_grads(self, step, grads):
        self.seen.append(float(step.h[1].abs().sum()) >= 0 and grads[1] is not None)
"""


def test_mix_keeps_the_step_for_an_inner_rule_that_reads_it(fake_site, tmp_path):
    from bioscale.testing import new_trainer

    fake_site.add_distribution("bioscale-reader", "1.0", "bioscale_reader", READER, {"bioscale.rules": {"reader": "bioscale_reader:Reader"}})  # fmt: skip
    trainer = new_trainer(
        "mix", tmp_path, ["rules.mix.layers=[reader,fa,bp]", "trainer.epochs=1", "data.limit_train=128"]
    )
    assert trainer.rule_hooks.reads_step_after_credit
    assert trainer.fit()["status"] == "completed"
    assert rule_plugin(trainer).rules["reader"].plugin.seen == [True, True]
