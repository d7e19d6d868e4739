"""Recipes: a rule's tuned defaults per model preset, conditional on its own settings."""

from dataclasses import dataclass

import pytest

from bioscale.config.resolve import rule_config
from bioscale.errors import PluginError
from bioscale.rulekit import TPConfig
from bioscale.testing import fake_entry


@dataclass
class Cfg(TPConfig):
    alpha: float = 0.5


class Rule:
    Config = Cfg
    recipes = {"net": {"alpha": 0.1, "optimizer": {"lr": 1e-3}}, "net:schedule=parallel": {"alpha": 0.2}}


class BrokenRecipe:
    Config = Cfg
    recipes = {"net": {"alfa": 0.1}}


def resolved(rule, preset, user=None):
    return rule_config("r", rule, fake_entry(rule, "r", "acme", "1.0"), preset, user)


def test_recipe_applies_to_its_preset_only():
    assert resolved(Rule, "net").alpha == 0.1 and resolved(Rule, "net").optimizer.lr == 1e-3
    assert resolved(Rule, "other").alpha == 0.5


def test_conditional_recipe_applies_when_the_condition_holds_and_the_user_still_wins():
    assert resolved(Rule, "net", {"schedule": "parallel"}).alpha == 0.2
    assert resolved(Rule, "net", {"schedule": "alternating"}).alpha == 0.1
    assert resolved(Rule, "net", {"schedule": "parallel", "alpha": 0.3}).alpha == 0.3
    assert resolved(Rule, "net", {"schedule": "parallel"}).optimizer.lr == 1e-3


def test_an_invalid_recipe_is_the_plugins_fault():
    with pytest.raises(PluginError, match="acme 1.0.*recipe 'net'.*alfa"):
        resolved(BrokenRecipe, "net")


def test_installed_rules_ship_valid_recipes():
    from bioscale.discovery import RULES_GROUP, discover, load_rule_class

    for name in discover(RULES_GROUP):
        entry, cls = load_rule_class(name)
        for label in getattr(cls, "recipes", {}) or {}:
            preset, _, condition = label.partition(":")
            user = None
            if condition:
                key, value = condition.split("=", 1)
                user = {key: value}
            rule_config(name, cls, entry, preset, user)  # raises if invalid
