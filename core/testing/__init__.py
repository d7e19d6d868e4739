"""Plugin-author kit: build runs around a rule class without installing it, and check that
a rule keeps the contract of the hooks. The contract itself (what a rule class offers, every
hook, what each may and may not do) is the docstring of :mod:`bioscale.hookspecs`.

    from bioscale.testing import check_rule_contract
    def test_my_rule(tmp_path):
        check_rule_contract(MyRule, tmp_path)

The ``bioscale_harness`` pytest fixture (auto-registered through the ``pytest11`` entry
point) gives the same functions bound to a temporary folder.

A rule class not installed runs under its own name (``rule_name_of``: its ``name`` attribute,
else its class name in lower case), so its settings are ``rules.<that>.<key>``. Until
2026-12-02 the kit named every class ``test_rule``; tokens ``rules.test_rule.<key>`` are still
accepted for a class, with a DeprecationWarning naming the new section.
"""

from .contract import KIT_TOKENS, check_rule_contract
from .data_parallel import check_data_parallel
from .harness import (
    TINY_TOKENS,
    Harness,
    fake_entry,
    make_step,
    model_weights,
    new_trainer,
    resume_trainer,
    rule_plugin,
    rule_registry,
)

__all__ = [
    "Harness",
    "KIT_TOKENS",
    "TINY_TOKENS",
    "check_data_parallel",
    "check_rule_contract",
    "make_step",
    "fake_entry",
    "model_weights",
    "new_trainer",
    "resume_trainer",
    "rule_plugin",
    "rule_registry",
]
