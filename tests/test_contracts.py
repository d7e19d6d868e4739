"""The trainer checks what rules return and which plugin implements what; violations name
the rule, its distribution and version, the hook and the layer."""

from dataclasses import dataclass

import pytest
import torch

from bioscale import RuleConfig, hookimpl
from bioscale.config.resolve import ObserverSpec
from bioscale.errors import PluginError, RuleContractError
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
    assert rule.seen == [(l, step.h[l - 1].shape[1]) for l in range(L, 1, -1)]
    # the facade gives pluggy's own answer
    direct = trainer.rule_hooks.layer_target(step, 2, None)
    via_pluggy = trainer.plugin_manager.hook.bioscale_layer_target(step=step, layer=2, target_above=None)
    assert torch.equal(direct, via_pluggy)


def test_wrapped_per_step_hook_goes_through_pluggy(tmp_path):
    trainer = new_trainer(entry(WrappedTargetRule, "wrapped"), tmp_path)
    rule = _rule_object(trainer, WrappedTargetRule)
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    step, _ = trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    assert rule.wrapped == step.num_layers - 1  # the wrapper ran for every hidden layer
