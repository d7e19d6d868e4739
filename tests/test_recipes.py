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


class PerSchedule:
    Config = Cfg
    from bioscale.rulekit import per_schedule_recipes as _make

    recipes = _make(
        Cfg,
        ["net"],
        {"alpha": 0.1, "sigma": 0.3, "optimizer": {"lr": 1e-3, "beta2": 0.99}},
        {"alpha": 0.2, "optimizer": {"lr": 5e-4}},
    )


def test_per_schedule_recipes_keep_the_alternating_settings_out_of_parallel():
    """Recipes layer, so a setting only the alternating recipe makes must not leak into the
    parallel schedule: there it is the config default."""
    alt = resolved(PerSchedule, "net")
    assert (alt.alpha, alt.sigma, alt.optimizer.lr, alt.optimizer.beta2) == (0.1, 0.3, 1e-3, 0.99)
    par = resolved(PerSchedule, "net", {"schedule": "parallel"})
    defaults = Cfg()
    assert (par.alpha, par.optimizer.lr) == (0.2, 5e-4)
    assert par.sigma == defaults.sigma and par.optimizer.beta2 == defaults.optimizer.beta2


@pytest.mark.parametrize("rule", ["dtp", "sdtp", "aosdtp"])
def test_tp_rules_parallel_recipe_is_exactly_their_parallel_settings(rule):
    """What ``schedule=parallel`` resolves to for mnist_fc equals the plugin's PARALLEL recipe
    over the config defaults (the runs in results/ were made with those settings)."""
    import importlib

    from bioscale.discovery import load_rule_class
    from omegaconf import OmegaConf

    entry, cls = load_rule_class(rule)
    module = importlib.import_module(cls.__module__)
    par = rule_config(rule, cls, entry, "mnist_fc", {"schedule": "parallel"})
    expected = OmegaConf.merge(OmegaConf.structured(cls.Config), module.PARALLEL, {"schedule": "parallel"})
    assert OmegaConf.to_container(OmegaConf.structured(par), enum_to_str=True) == OmegaConf.to_container(
        expected, enum_to_str=True
    )
