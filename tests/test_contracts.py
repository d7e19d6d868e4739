"""The trainer checks what rules return and which plugin implements what; violations name
the rule, its distribution and version, the hook and the layer."""

from dataclasses import dataclass

import pytest

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
