"""The trainer checks what rules return and which plugin implements what; violations name
the rule, its distribution and version, the hook and the layer."""

from dataclasses import dataclass

import pytest
import torch
from bioscale import RuleConfig, hookimpl
from bioscale.config.resolve import ObserverSpec
from bioscale.errors import PluginError, RuleContractError
from bioscale.step import forward_step
from bioscale.testing import fake_entry, new_trainer


@dataclass
class EmptyConfig(RuleConfig):
    pass


class WrongShapeRule:
    """Returns a signal one unit too short for layer 1."""

    Config = EmptyConfig

    def __init__(self, config):
        pass

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        signal = step.layer_vjp(layer, grad_above)
        return signal[:, :-1] if layer == 2 else signal


class SilentRule:
    """Answers no credit hook."""

    Config = EmptyConfig

    def __init__(self, config):
        pass


class WrongDtypeTargetRule:
    Config = EmptyConfig

    def __init__(self, config):
        pass

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        return step.h[layer - 1].double()


class BadPassesRule:
    Config = EmptyConfig

    def __init__(self, config):
        pass

    @hookimpl
    def bioscale_epoch_passes(self, epoch):
        return [{"forwards"}]


class MisspelledHookRule:
    Config = EmptyConfig

    def __init__(self, config):
        pass

    @hookimpl
    def bioscale_feedback_signals(self, step, layer, grad_above):
        return None


class RuleHookObserver:
    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        return None


def entry(cls, name):
    return fake_entry(cls, name=name, distribution="acme-rules", version="9.1")


def test_wrong_shape_names_rule_distribution_hook_and_layer(tmp_path):
    trainer = new_trainer(entry(WrongShapeRule, "wrongshape"), tmp_path)
    with pytest.raises(RuleContractError) as info:
        trainer.fit()
    message = str(info.value)
    for fragment in ("'wrongshape'", "acme-rules 9.1", "bioscale_feedback_signal", "layer 1", "(64, 31)", "(64, 32)"):
        assert fragment in message


def test_no_credit_for_a_layer_is_a_contract_error(tmp_path):
    with pytest.raises(RuleContractError, match="returned None from both credit hooks"):
        new_trainer(entry(SilentRule, "silent"), tmp_path).fit()


def test_wrong_dtype_target_is_a_contract_error(tmp_path):
    with pytest.raises(RuleContractError, match="bioscale_layer_target for layer .*float64"):
        new_trainer(entry(WrongDtypeTargetRule, "dtype"), tmp_path).fit()


def test_bad_epoch_passes_is_a_contract_error(tmp_path):
    with pytest.raises(RuleContractError, match="bioscale_epoch_passes"):
        new_trainer(entry(BadPassesRule, "passes"), tmp_path).fit()


def test_misspelled_hook_is_rejected_at_start(tmp_path):
    with pytest.raises(PluginError, match="acme-rules 9.1.*bioscale_feedback_signals"):
        new_trainer(entry(MisspelledHookRule, "typo"), tmp_path)


def test_observer_may_not_implement_rule_hooks(tmp_path):
    spec = ObserverSpec("sneaky", entry(RuleHookObserver, "sneaky"), RuleHookObserver, None)
    with pytest.raises(PluginError, match="observer 'sneaky' .*bioscale_layer_target"):
        new_trainer("bp", tmp_path, observers=[spec])


class PartialArgsRule:
    """Its layer-target hook declares only some of the spec's arguments (pluggy allows it)."""

    Config = EmptyConfig

    def __init__(self, config):
        self.seen = []

    @hookimpl
    def bioscale_layer_target(self, layer, step):
        self.seen.append((layer, step.h[layer - 1].shape[1]))
        return step.h[layer - 1] * 0.5


class WrappedTargetRule:
    """A wrapper around its own layer-target hook: per-step calls must go through pluggy."""

    Config = EmptyConfig

    def __init__(self, config):
        self.wrapped = 0

    @hookimpl(wrapper=True)
    def bioscale_layer_target(self, step, layer, target_above):
        self.wrapped += 1
        return (yield)

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)


def _rule_object(trainer, cls):
    return next(p for p in trainer.plugin_manager.get_plugins() if isinstance(p, cls))


def test_per_step_hook_gets_the_arguments_it_declares(tmp_path):
    trainer = new_trainer(entry(PartialArgsRule, "partial"), tmp_path)
    rule = _rule_object(trainer, PartialArgsRule)
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    step, _ = trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    L = step.num_layers
    assert rule.seen == [(l, trainer.model.layer(l - 1).out_shape[0]) for l in range(L, 1, -1)]
    # the facade gives pluggy's own answer (on a fresh step: training let the step's tensors go)
    step = forward_step(trainer.model, x, y, 0, 0, frozenset({"forward"}))
    direct = trainer.rule_hooks.layer_target(step, 2, None)
    via_pluggy = trainer.plugin_manager.hook.bioscale_layer_target(step=step, layer=2, target_above=None)
    assert torch.equal(direct, via_pluggy)


def test_wrapped_per_step_hook_goes_through_pluggy(tmp_path):
    trainer = new_trainer(entry(WrappedTargetRule, "wrapped"), tmp_path)
    rule = _rule_object(trainer, WrappedTargetRule)
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    step, _ = trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    assert rule.wrapped == step.num_layers - 1  # the wrapper ran for every hidden layer


# -- rules that learn from the forward step; probes change nothing ---------------------------------


class DriftingFeedbackRule:
    """FA whose feedback weights move on every feedback call: probes change its training."""

    Config = EmptyConfig

    def __init__(self, config):
        self.feedback = {}

    @hookimpl
    def bioscale_setup(self, model, generator):
        self.feedback = {l: model.ops[l - 1].new_weight(generator) for l in range(2, model.num_layers + 1)}

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        self.feedback[layer].mul_(0.999)  # a state change in a credit hook (also during probes)
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])

    @hookimpl
    def bioscale_state_dict(self):
        return {str(k): v for k, v in self.feedback.items()}

    @hookimpl
    def bioscale_load_state_dict(self, state):
        for k, v in state.items():
            self.feedback[int(k)].copy_(v)


class ProbeAwareRule(DriftingFeedbackRule):
    """The same drift, skipped in probes as the contract asks (``step.is_probe``)."""

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        if not step.is_probe:
            self.feedback[layer].mul_(0.999)
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])


def test_the_kit_fails_a_rule_whose_training_changes_with_the_diagnostics_probes(tmp_path):
    from bioscale.testing import check_rule_contract

    with pytest.raises(AssertionError, match="changes with gradient probes on"):
        check_rule_contract(DriftingFeedbackRule, tmp_path / "drift")
    check_rule_contract(ProbeAwareRule, tmp_path / "aware")


class RecordingRule:
    """BP that records what ``bioscale_after_forward_grads`` sees."""

    Config = EmptyConfig
    calls: list = []

    def __init__(self, config):
        RecordingRule.calls = []
        self.model = None

    @hookimpl
    def bioscale_setup(self, model, generator):
        self.model = model

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)

    @hookimpl
    def bioscale_after_forward_grads(self, step, grads):
        op = self.model.ops[0]
        expected = op.param_grads(step.h[0], grads[1])["weight"]
        RecordingRule.calls.append(
            {
                "index": step.index,
                "probe": step.is_probe,
                "grad_mode": torch.is_grad_enabled(),
                "grad_matches": torch.allclose(op.weight.grad, expected),
                "weight": op.weight.detach().clone(),
                "n_signals": len(grads),
            }
        )


def test_after_forward_grads_sees_this_steps_gradients_before_the_optimiser_step(tmp_path):
    from bioscale.testing import fake_entry

    entry = fake_entry(RecordingRule, name="recording")
    trainer = new_trainer(entry, tmp_path)
    x, y = trainer.data.train.x[:32], trainer.data.train.y[:32]
    before = trainer.model.ops[0].weight.detach().clone()
    trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    trainer.train_step(x, y, 0, frozenset({"inverse"}), 0.0)  # no forward phase: no call
    trainer.run.probe_gradients(x, y)  # probes never call it
    calls = RecordingRule.calls
    assert len(calls) == 1
    call = calls[0]
    assert call["grad_matches"] and not call["grad_mode"] and not call["probe"]
    assert torch.equal(call["weight"], before)  # the forward optimiser had not stepped yet
    assert call["n_signals"] == trainer.model.num_layers + 1
    assert not torch.equal(trainer.model.ops[0].weight, before)


def test_probes_are_flagged_and_training_steps_are_not(tmp_path):
    trainer = new_trainer("bp", tmp_path)
    x, y = trainer.data.train.x[:16], trainer.data.train.y[:16]
    step, _ = trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    assert step.is_probe is False
    assert trainer.run.probe_gradients(x, y)["step"].is_probe is True


def test_the_kit_names_a_rule_class_after_itself_and_builds_steps(tmp_path):
    from bioscale.testing import make_step
    from bioscale.testing.harness import fake_entry as entry_for

    assert entry_for(RecordingRule).name == "recordingrule"
    trainer = new_trainer(RecordingRule, tmp_path, ["rules.recordingrule.optimizer.lr=0.01"])
    assert trainer.rule_spec.name == "recordingrule"
    step = make_step(trainer)
    assert step.h[0].shape[0] == 32 and step.output_grad.shape == step.logits.shape and not step.is_probe
