"""The example rule's own tests, through bioscale's plugin-author kit (the ``bioscale_harness``
fixture comes with bioscale's pytest plugin: nothing to import or configure)."""

import torch
from bioscale.testing import make_step, rule_plugin


def test_the_installed_rule_keeps_the_contract(bioscale_harness):
    bioscale_harness.check_rule_contract("scaledfa", ["rules.scaledfa.gain=2"])


def test_the_signal_scales_with_the_gain_and_gain_one_is_fa(bioscale_harness):
    signals = {}
    for rule, tokens in (("fa", []), ("scaledfa", []), ("scaledfa", ["rules.scaledfa.gain=3"])):
        trainer = bioscale_harness.new_trainer(rule, tokens)
        step = make_step(trainer)
        grad = torch.ones_like(step.h[3])
        signals[(rule, len(tokens))] = rule_plugin(trainer).bioscale_feedback_signal(
            step=step, layer=3, grad_above=grad
        )
    torch.testing.assert_close(signals[("scaledfa", 0)], signals[("fa", 0)])  # same seed, same draws
    torch.testing.assert_close(signals[("scaledfa", 1)], 3 * signals[("fa", 0)])
