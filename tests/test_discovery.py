"""Rules and observers are found through entry points of installed distributions, the same
way for built-in and third-party plugins; conflicts and broken plugins are reported."""

import json
import os
import sys

import pytest
from bioscale.config import build_run_config, resolve_rule
from bioscale.discovery import RULES_GROUP, discover
from bioscale.errors import PluginError
from conftest import TINY, FakeSite, run_cli

THIRD_PARTY_RULE = """
from dataclasses import dataclass
from bioscale import RuleConfig, hookimpl

@dataclass
class SignConfig(RuleConfig):
    scale: float = 1.0

class SignSymmetry:
    '''Sign symmetry: feedback through sign(W) (a third-party test rule).'''
    Config = SignConfig

    def __init__(self, config):
        self.config = config

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        w = step.layer(layer).op.weight
        return step.layer_vjp(layer, grad_above, weight=self.config.scale * w.sign())
"""

BROKEN_RULE = """
import this_module_does_not_exist
"""


def test_builtin_rules_come_from_their_own_distributions():
    rules = discover(RULES_GROUP)
    assert rules["bp"].distribution == "bioscale-bp" and rules["fa"].distribution == "bioscale-fa"


def test_a_third_party_rule_is_discovered_and_trains(fake_site, tmp_path):
    fake_site.add_distribution(
        "bioscale-sign",
        "2.5",
        "bioscale_sign",
        THIRD_PARTY_RULE,
        {"bioscale.rules": {"sign": "bioscale_sign:SignSymmetry"}},
    )
    rules = discover(RULES_GROUP)
    assert rules["sign"].distribution == "bioscale-sign" and rules["sign"].version == "2.5"
    spec = resolve_rule(build_run_config(["rule=sign", "rules.sign.scale=0.5"]))
    assert spec.config.scale == 0.5 and spec.info["distribution"] == "bioscale-sign"
    result = run_cli("train", "rule=sign", *TINY, "trainer.epochs=1", f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    run_dir = result.stdout.strip().splitlines()[-1]
    config = (tmp_path / run_dir.rsplit("/", 1)[-1] / "config.yaml").read_text()
    assert "distribution: bioscale-sign" in config and "version: '2.5'" in config


def test_two_distributions_with_one_rule_name_block_only_that_name(fake_site, tmp_path):
    for dist, version, module in (("sign-a", "1.0", "sign_a"), ("sign-b", "3.0", "sign_b")):
        fake_site.add_distribution(
            dist, version, module, THIRD_PARTY_RULE, {"bioscale.rules": {"sign": f"{module}:SignSymmetry"}}
        )
    rules = discover(RULES_GROUP)
    assert "bp" in rules and "sign" in rules
    with pytest.raises(PluginError) as info:
        rules["sign"].load()
    assert "sign-a 1.0" in str(info.value) and "sign-b 3.0" in str(info.value)
    used = run_cli("train", "rule=sign", *TINY, "trainer.epochs=1", f"output_dir={tmp_path / 'a'}")
    assert used.returncode == 2 and "sign-a 1.0" in used.stderr and "sign-b 3.0" in used.stderr
    assert "Traceback" not in used.stderr and not (tmp_path / "a").exists()
    configured = run_cli("train", "rule=bp", "rules.sign.scale=2", *TINY, f"output_dir={tmp_path / 'b'}")
    assert configured.returncode == 2 and "sign-b 3.0" in configured.stderr
    other = run_cli("train", "rule=bp", *TINY, "trainer.epochs=1", f"output_dir={tmp_path / 'c'}")
    assert other.returncode == 0, other.stderr
    listing = run_cli("rules", "--json")
    assert listing.returncode == 0
    assert "warning" in listing.stderr and "sign-a 1.0" in listing.stderr and "sign-b 3.0" in listing.stderr
    rows = json.loads(listing.stdout)
    statuses = {r["distribution"]: r["status"] for r in rows if r["name"] == "sign"}
    assert statuses["sign-a"].startswith("conflict") and "sign-b" in statuses["sign-a"]
    assert {r["name"]: r["status"] for r in rows}["bp"] == "ok"


def test_two_distributions_with_one_observer_name_block_only_that_observer(fake_site, tmp_path):
    observer = "class Quiet:\n    'An observer that does nothing.'\n"
    for dist in ("quiet-a", "quiet-b"):
        module = dist.replace("-", "_")
        fake_site.add_distribution(dist, "1.0", module, observer, {"bioscale.observers": {"quiet": f"{module}:Quiet"}})
    blocked = run_cli("train", "rule=bp", *TINY, "trainer.epochs=1", f"output_dir={tmp_path / 'a'}")
    assert blocked.returncode == 2 and "quiet-a 1.0" in blocked.stderr
    assert "observers.quiet.enabled=false" in blocked.stderr  # the way out
    off = run_cli(
        "train", "rule=bp", *TINY, "trainer.epochs=1", "observers.quiet.enabled=false", f"output_dir={tmp_path / 'b'}"
    )
    assert off.returncode == 0, off.stderr


SHADOW = """
class SignSymmetry:
    'Not the rule: a module of the same name from elsewhere.'
"""


@pytest.mark.parametrize("owner", ["other-dist", None], ids=["another_distribution", "a_loose_module"])
def test_an_entry_point_whose_module_is_shadowed_is_refused_naming_both(
    fake_site, tmp_path, monkeypatch, request, owner
):
    fake_site.add_distribution(
        "bioscale-sign",
        "2.5",
        "bioscale_sign",
        THIRD_PARTY_RULE,
        {"bioscale.rules": {"sign": "bioscale_sign:SignSymmetry"}},
    )
    sys.modules.pop("bioscale_sign", None)  # both sites hold a module of this name: start and end without it
    request.addfinalizer(lambda: sys.modules.pop("bioscale_sign", None))
    shadow = FakeSite(tmp_path / "shadow")  # earlier on sys.path than the declaring distribution
    if owner:
        shadow.add_distribution(owner, "9.1", "bioscale_sign", SHADOW, {})
    else:
        (shadow.root / "bioscale_sign.py").write_text(SHADOW)
    monkeypatch.syspath_prepend(str(shadow.root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(shadow.root), os.environ["PYTHONPATH"]]))
    with pytest.raises(PluginError) as info:
        discover(RULES_GROUP)["sign"].load()
    message = str(info.value)
    assert "bioscale-sign 2.5" in message and str(shadow.root / "bioscale_sign.py") in message
    assert ("other-dist 9.1" in message) if owner else ("no installed distribution" in message)
    result = run_cli("train", "rule=sign", *TINY, "trainer.epochs=1", f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2 and "bioscale-sign 2.5" in result.stderr and "Traceback" not in result.stderr
    assert run_cli("train", "rule=bp", *TINY, "trainer.epochs=1", f"output_dir={tmp_path / 'runs'}").returncode == 0


def test_installed_plugins_pass_the_origin_check():
    from bioscale.discovery import OBSERVERS_GROUP

    for group in (RULES_GROUP, OBSERVERS_GROUP):
        for name, entry in discover(group).items():
            assert entry.load() is not None, name


def test_a_broken_plugin_is_listed_as_broken_and_does_not_break_the_listing(fake_site):
    fake_site.add_distribution(
        "bioscale-broken", "0.1", "bioscale_broken", BROKEN_RULE, {"bioscale.rules": {"broken": "bioscale_broken:Rule"}}
    )
    result = run_cli("rules")
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("broken"))
    assert "bioscale-broken" in line and "broken" in line and "this_module_does_not_exist" in line
    assert any(l.startswith("bp ") for l in result.stdout.splitlines())
    rows = json.loads(run_cli("rules", "--json").stdout)
    broken = next(r for r in rows if r["name"] == "broken")
    assert broken["status"] == "broken" and "ModuleNotFoundError" in broken["error"]
    train = run_cli("train", "rule=broken", *TINY)
    assert train.returncode == 2
    assert "bioscale-broken 0.1" in train.stderr and "this_module_does_not_exist" in train.stderr
    # an unrelated run is not affected by the broken plugin
    assert resolve_rule(build_run_config(["rule=bp"])).name == "bp"


def test_a_rule_without_a_config_dataclass_is_rejected(fake_site):
    fake_site.add_distribution(
        "bioscale-noconf",
        "0.1",
        "bioscale_noconf",
        "class Rule:\n    pass\n",
        {"bioscale.rules": {"noconf": "bioscale_noconf:Rule"}},
    )
    with pytest.raises(PluginError, match="bioscale-noconf 0.1.*Config"):
        resolve_rule(build_run_config(["rule=noconf"]))


def test_rules_listing_shows_descriptions_hooks_and_defaults():
    rows = {r["name"]: r for r in json.loads(run_cli("rules", "--json").stdout)}
    assert rows["fa"]["status"] == "ok" and "Feedback alignment" in rows["fa"]["description"]
    assert "bioscale_feedback_signal" in rows["fa"]["hooks"] and "bioscale_setup" in rows["fa"]["hooks"]
    assert rows["bp"]["config"]["optimizer"]["lr"] > 0
    assert "mnist_fc" in rows["bp"]["recipes"]


def test_observers_are_found_in_the_bioscale_observers_group():
    from importlib import metadata

    from bioscale.discovery import OBSERVERS_GROUP

    assert OBSERVERS_GROUP == "bioscale.observers"
    declared = {ep.name for ep in metadata.entry_points(group="bioscale.observers")}
    assert {"console", "diagnostics"} <= declared
    assert not [ep for ep in metadata.entry_points(group="bioscale.plugins") if ep.name in declared]
