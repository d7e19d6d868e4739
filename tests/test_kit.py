"""The plugin-author kit (bioscale.testing): its contract checks catch what they promise to catch,
and its public behaviour stays stable."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from dataclasses import dataclass

import pytest
import torch
from bioscale import RuleConfig, hookimpl
from bioscale.config import bounded
from bioscale.errors import RuleContractError
from bioscale.testing import check_rule_contract, new_trainer, rule_plugin
from bioscale.testing.contract import check_bf16_signals
from bioscale.testing.harness import rule_name_of
from bioscale_dtp import DifferenceTargetPropagation


@dataclass
class GainConfig(RuleConfig):
    gain: float = bounded(1.0, low=0, low_open=True)


class GainFA:
    """Feedback alignment with fixed random feedback times ``gain``."""

    Config = GainConfig

    def __init__(self, config):
        self.config = config
        self.feedback = {}

    @hookimpl
    def bioscale_setup(self, model, generator):
        self.feedback = {
            l: model.ops[l - 1].new_weight(generator) * self.config.gain for l in range(2, model.num_layers + 1)
        }

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])

    @hookimpl
    def bioscale_state_dict(self):
        return {str(l): b for l, b in self.feedback.items()}

    @hookimpl
    def bioscale_load_state_dict(self, state):
        for l, b in self.feedback.items():
            b.copy_(state[str(l)])


class BF16StateFA(GainFA):
    """Its feedback becomes a product formed under autocast in the inverse phase: bf16 under bf16."""

    @hookimpl
    def bioscale_epoch_passes(self, epoch):
        return [{"inverse", "forward"}]

    @hookimpl
    def bioscale_update_inverse(self, step):
        for l, b in self.feedback.items():
            self.feedback[l] = b @ torch.eye(b.shape[1], device=b.device)  # bf16 under autocast
        return None


def test_the_old_section_name_test_rule_is_accepted_with_a_warning(tmp_path):
    with pytest.warns(DeprecationWarning, match=r"rules\.gainfa\.<key> instead of rules\.test_rule\.<key>"):
        trainer = new_trainer(GainFA, tmp_path / "old", ["rules.test_rule.gain=3"])
    assert rule_plugin(trainer).config.gain == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rule_plugin(new_trainer(GainFA, tmp_path / "new", ["rules.gainfa.gain=2"])).config.gain == 2


def test_the_kit_imports_no_command_module():
    code = "import sys, bioscale.testing; print(sorted(m for m in sys.modules if m.startswith('bioscale.commands')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_kit_fails_a_rule_whose_state_turns_bf16(tmp_path):
    with pytest.raises(AssertionError, match="bf16: rule state tensors changed dtype"):
        check_rule_contract(BF16StateFA, tmp_path / "bad", data_parallel=False)
    check_rule_contract(GainFA, tmp_path / "good", data_parallel=False)


class RoundedTargetDTP(DifferenceTargetPropagation):
    """DTP with its targets rounded to the activations' dtype: bf16 under bf16, the displacement ``t - h``
    lost to bf16's spacing (what every target rule did before issue 33's F2)."""

    def top_target(self, step, target_above):
        return super().top_target(step, target_above).to(step.h[step.num_layers - 1].dtype)

    def difference_target(self, step, layer, target_read, read):
        return super().difference_target(step, layer, target_read, read).to(step.h[layer - 1].dtype)


@pytest.mark.parametrize("rule,fails", [(RoundedTargetDTP, True), ("dtp", False)], ids=["rounded", "dtp"])
def test_the_kit_fails_a_rule_whose_bf16_signal_points_elsewhere(tmp_path, rule, fails):
    """The kit's bf16 signal check on the straight run's weights (the kit's 512 digits, 2 epochs): a target
    rounded to bf16 loses about 1e-2 of its signal's direction (1 - cos), DTP 1e-5."""
    name = rule if isinstance(rule, str) else rule_name_of(rule)
    tokens = ["data.limit_train=512", "trainer.checkpoint=false", f"rules.{name}.schedule=parallel"]
    trainer = new_trainer(rule, tmp_path, tokens)
    trainer.fit()
    if fails:
        with pytest.raises(AssertionError, match="bf16: the signal of these hidden layers points elsewhere"):
            check_bf16_signals(trainer)
    else:
        check_bf16_signals(trainer)


class SilentFA(GainFA):
    """Sends every hidden layer a zero signal (a rule may leave a layer alone)."""

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return torch.zeros_like(step.h[layer - 1])


def test_the_kits_bf16_signal_check_passes_a_layer_left_alone(tmp_path):
    trainer = new_trainer(SilentFA, tmp_path, ["data.limit_train=128", "trainer.epochs=1", "trainer.checkpoint=false"])
    trainer.fit()
    check_bf16_signals(trainer)  # zero in both precisions: no angle to lose


def test_the_kit_refuses_a_class_it_cannot_import_in_other_processes(tmp_path):
    class Local(GainFA):
        pass

    with pytest.raises(ValueError, match="defined inside a function"):
        check_rule_contract(Local, tmp_path, bf16=False)
    check_rule_contract(Local, tmp_path / "alone", bf16=False, data_parallel=False)


@pytest.mark.slow
def test_the_kit_fails_a_rule_that_does_not_reduce_its_gradients(tmp_path):
    """``NoReduceDTP`` (tests/dp_rules.py, imported by the kit's processes from its own folder)
    trains its inverses on each rank's rows alone."""
    from dp_rules import NoReduceDTP

    with pytest.raises(AssertionError, match="differs between 2 data-parallel processes and one"):
        check_rule_contract(NoReduceDTP, tmp_path, ["rules.noreducedtp.schedule=parallel"], bf16=False)


def test_the_kit_puts_a_rule_class_module_root_on_the_processes_path(monkeypatch):
    """A class in a package that is not installed (the example rule's sources) or in a test file."""
    from pathlib import Path

    from bioscale.testing.data_parallel import _module_root

    example = Path(__file__).resolve().parents[1] / "examples" / "bioscale-example-rule"
    monkeypatch.syspath_prepend(str(example))
    from bioscale_example_rule import ScaledFeedback

    assert _module_root(ScaledFeedback) == str(example)
    assert _module_root(GainFA) == str(Path(__file__).resolve().parent)
    assert _module_root("fa") is None


class ChainDFA(GainFA):
    """Claims skips but sends each layer's signal to ``h_{l-1}`` (a chain's reading of the hook)."""

    supports = frozenset({"batchnorm", "skip"})

    @hookimpl
    def bioscale_setup(self, model, generator):
        self.shapes = {l: model.layer(l - 1).out_shape for l in range(2, model.num_layers + 1)}
        self.feedback = {
            l: torch.randn(model.num_classes, math.prod(s), generator=generator) for l, s in self.shapes.items()
        }

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return (step.output_grad @ self.feedback[layer]).reshape(step.batch_size, *self.shapes[layer])


class SkippingGainFA(GainFA):
    supports = frozenset({"pooling", "batchnorm", "skip"})


def test_the_kit_trains_a_rule_on_the_structures_it_declares(tmp_path):
    with pytest.raises(RuleContractError, match="bioscale_feedback_signal"):
        check_rule_contract(ChainDFA, tmp_path / "bad", data_parallel=False, bf16=False)
    check_rule_contract(SkippingGainFA, tmp_path / "good", data_parallel=False, bf16=False)
    assert (tmp_path / "good" / "structures").is_dir()


class LookingUpFA(GainFA):
    """FA that reads the activation above the layer it answers for: gone by then in training."""

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        if layer < step.num_layers - 1:
            step.h[layer + 1].sum()
        return step.layer_vjp(layer, grad_above, weight=self.feedback[layer])


def test_the_kit_fails_a_rule_that_reads_a_layer_the_credit_assignment_let_go(tmp_path):
    from bioscale.errors import PluginFailure

    with pytest.raises(PluginFailure, match=r"bioscale_feedback_signal: RuntimeError: step\.h\[\d\] was let go"):
        check_rule_contract(LookingUpFA, tmp_path, ["model.widths=[16,16,16]"], data_parallel=False, bf16=False)
