"""Architectures are entry points of the group ``bioscale.architectures``: the built-in presets
are declared like a third party's, ``model=NAME`` takes any installed name, a ``build``
architecture's network is its plugin's (and resumes with it), and unknown, conflicting and
broken ones are refused or reported as rules are."""

import json
import shutil

import pytest
import yaml
from bioscale.architectures.catalog import ARCHITECTURES
from bioscale.architectures.presets import DESCRIPTIONS, PRESETS
from bioscale.config import build_run_config
from bioscale.discovery import ARCHITECTURES_GROUP, discover
from bioscale.errors import ConfigError, PluginError
from conftest import REPO, TINY, run_cli

ARCHS = """
import torch
from bioscale.architectures import Architecture, build_network

def _build(in_shape, num_classes, generator):
    return build_network(in_shape, num_classes, widths=[16], generator=generator, name="tiny")

tiny = Architecture("a 16-unit net its plugin builds", build=_build)
wide = Architecture("one hidden layer of 24", config={"widths": [24], "activation": "tanh"})

class Plain:
    description = "a plain torch module"

    @staticmethod
    def build(in_shape, num_classes, generator):
        n = in_shape[0] * in_shape[1] * in_shape[2]
        return torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(n, 16), torch.nn.ReLU(), torch.nn.Linear(16, num_classes)
        )

class Normed:
    description = "a plain torch module with batch norm"

    @staticmethod
    def build(in_shape, num_classes, generator):
        c, h, w = in_shape
        return torch.nn.Sequential(
            torch.nn.Conv2d(c, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(4 * h * w, num_classes),
        )

class Dropping:
    description = "a plain torch module with dropout"

    @staticmethod
    def build(in_shape, num_classes, generator):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(), torch.nn.LazyLinear(num_classes))

class NoDescription:
    config = {"widths": [8]}
"""
EPS = {
    "tiny": "bioscale_tiny:tiny",
    "wide": "bioscale_tiny:wide",
    "plain": "bioscale_tiny:Plain",
    "dropping": "bioscale_tiny:Dropping",
    "normed": "bioscale_tiny:Normed",
    "nodesc": "bioscale_tiny:NoDescription",
}
RUN = [t for t in TINY if not t.startswith("model.")] + ["trainer.epochs=1"]


@pytest.fixture
def tiny_site(fake_site):
    fake_site.add_distribution("bioscale-tiny", "0.3", "bioscale_tiny", ARCHS, {ARCHITECTURES_GROUP: EPS})
    return fake_site


def test_every_preset_has_its_entry_point_and_every_entry_point_its_preset():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"][ARCHITECTURES_GROUP]
    missing = sorted(set(PRESETS) - set(declared))
    assert not missing, f"add to pyproject.toml's bioscale.architectures: {missing} (NAME = catalog:NAME)"
    assert sorted(set(declared) - set(PRESETS)) == [], "entry points without a PRESETS entry"
    assert all(value == f"bioscale.architectures.catalog:{name}" for name, value in declared.items())
    assert set(DESCRIPTIONS) == set(PRESETS) and set(ARCHITECTURES) == set(PRESETS)


def test_the_built_in_presets_come_from_the_bioscale_distribution():
    found = discover(ARCHITECTURES_GROUP)
    assert found["mnist_fc"].distribution == "bioscale"
    assert found["mnist_fc"].load().config == PRESETS["mnist_fc"]
    cfg = build_run_config(["model=mnist_lc"])
    assert cfg.model.preset == "mnist_lc" and list(cfg.model.widths) == [1024] and len(cfg.model.blocks) == 2


def test_a_third_party_config_architecture_is_selected_like_a_preset(tiny_site):
    cfg = build_run_config(["model=wide"])
    assert cfg.model.preset == "wide" and list(cfg.model.widths) == [24]
    assert list(build_run_config(["model=wide", "model.widths=[7]"]).model.widths) == [7]


def test_a_build_architecture_trains_records_its_plugin_and_resumes_only_with_it(tiny_site, tmp_path):
    cfg = build_run_config(["model=tiny"])
    assert cfg.model.preset == "tiny" and list(cfg.model.blocks) == [] and list(cfg.model.widths) == []
    first = run_cli("train", "rule=bp", "model=tiny", *RUN, f"output_dir={tmp_path}")
    assert first.returncode == 0, first.stderr
    run_dir = first.stdout.strip().splitlines()[-1]
    saved = yaml.safe_load(open(f"{run_dir}/config.yaml"))
    arch = saved["run_info"]["code"]["architecture"]
    assert arch["name"] == "tiny" and arch["kind"] == "build"
    assert (arch["distribution"], arch["version"]) == ("bioscale-tiny", "0.3") and arch["source_hash"]
    assert saved["run_info"]["parameters"] == 64 * 16 + 16 + 16 * 10 + 10  # the plugin's net, 8x8 digits
    resumed = run_cli("resume", run_dir, "trainer.epochs=2")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(open(f"{run_dir}/summary.json").read())["epochs"] == 2
    shutil.rmtree(next(tiny_site.root.glob("bioscale_tiny-*.dist-info")))  # the plugin uninstalled
    refused = run_cli("resume", run_dir, "trainer.epochs=3")
    assert refused.returncode == 2 and "'tiny'" in refused.stderr and "bioscale-tiny 0.3" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_build_architecture_refuses_model_settings_it_would_ignore(tiny_site):
    for key in ("model.widths=[5]", "model.blocks=[]", "model.activation=relu"):
        with pytest.raises(ConfigError, match=rf"{key.split('=')[0]}: model=tiny is built by its plugin"):
            build_run_config(["model=tiny", key])
    with pytest.raises(ConfigError, match="model.preset=tiny: .* select it with model=tiny"):
        build_run_config(["model.preset=tiny"])
    assert build_run_config(["model.preset=wide"]).model.preset == "wide"  # a label, as before
    result = run_cli("config", "rule=bp", "model=tiny", "model.widths=[5]")
    assert result.returncode == 2 and "model.widths" in result.stderr


def test_an_unknown_model_exits_2_listing_the_installed_ones(tiny_site):
    with pytest.raises(ConfigError, match=r"unknown model preset 'nope'.*mnist_fc.*tiny"):
        build_run_config(["model=nope"])
    result = run_cli("train", "rule=bp", "model=nope")
    assert result.returncode == 2 and "tiny" in result.stderr and "digits_fc" in result.stderr


def test_a_plain_torch_module_is_converted_and_trains_and_a_form_it_cannot_take_is_refused(tiny_site, tmp_path):
    result = run_cli("train", "rule=fa", "model=plain", *RUN, f"output_dir={tmp_path / 'ok'}")
    assert result.returncode == 0, result.stderr
    assert json.loads(next((tmp_path / "ok").glob("*/summary.json")).read_text())["status"] == "completed"
    result = run_cli("train", "rule=bp", "model=dropping", *RUN, f"output_dir={tmp_path / 'bad'}")
    assert result.returncode == 2 and "module '1' (Dropout): Dropout is not a layer" in result.stderr
    result = run_cli("train", "rule=dtp", "model=normed", *RUN, f"output_dir={tmp_path / 'refused'}")
    assert result.returncode == 2 and "dtp: normed has batch norm in layer 1; dtp supports" in result.stderr
    assert not (tmp_path / "refused").exists()


def test_two_distributions_with_one_model_name_block_only_that_name(fake_site, tmp_path):
    for dist in ("arch-a", "arch-b"):
        module = dist.replace("-", "_")
        fake_site.add_distribution(dist, "1.0", module, ARCHS, {ARCHITECTURES_GROUP: {"tiny": f"{module}:tiny"}})
    with pytest.raises(PluginError, match="arch-a 1.0.*arch-b 1.0"):
        build_run_config(["model=tiny"])
    listing = run_cli("models")
    assert listing.returncode == 0 and "warning" in listing.stderr and "arch-b 1.0" in listing.stderr
    rows = [r for r in json.loads(run_cli("models", "--json").stdout) if r["name"] == "tiny"]
    assert len(rows) == 2 and all(r["status"].startswith("conflict") for r in rows)
    other = run_cli("train", "rule=bp", *RUN, f"output_dir={tmp_path}")
    assert other.returncode == 0, other.stderr


def test_broken_architectures_are_listed_as_broken_and_refused(tiny_site):
    tiny_site.add_distribution(
        "bioscale-gone",
        "0.1",
        "bioscale_gone",
        "import no_such_module\n",
        {ARCHITECTURES_GROUP: {"gone": "bioscale_gone:x"}},
    )
    text = run_cli("models")
    assert text.returncode == 0, text.stderr
    line = next(l for l in text.stdout.splitlines() if l.startswith("gone "))
    assert "bioscale-gone" in line and "broken" in line and "no_such_module" in line
    rows = {r["name"]: r for r in json.loads(run_cli("models", "--json").stdout)}
    assert rows["gone"]["status"] == "broken" and "ModuleNotFoundError" in rows["gone"]["error"]
    assert rows["nodesc"]["status"] == "broken" and "description" in rows["nodesc"]["error"]
    assert rows["tiny"]["kind"] == "build" and rows["tiny"]["distribution"] == "bioscale-tiny"
    assert rows["wide"]["kind"] == "config" and rows["wide"]["config"]["widths"] == [24]
    assert rows["mnist_fc"]["description"] == DESCRIPTIONS["mnist_fc"]
    with pytest.raises(PluginError, match="bioscale-gone 0.1.*no_such_module"):
        build_run_config(["model=gone"])
    with pytest.raises(PluginError, match="nodesc.*bioscale-tiny 0.3.*description"):
        build_run_config(["model=nodesc"])


def test_reproduce_notices_a_plugin_architecture_whose_sources_changed(tiny_site):
    from bioscale.named_plugins import installed_fingerprints
    from bioscale.provenance import code_changes

    core = {"bioscale": {"source_hash": "c"}, "rules": {}}
    recorded = {**core, "architecture": {"name": "tiny", "distribution": "bioscale-tiny", "source_hash": "a"}}
    assert code_changes(recorded, {**core, "architecture": {"source_hash": "a"}}) == []
    assert code_changes(recorded, {**core, "architecture": {"source_hash": "b"}}) == ["architecture tiny sources"]
    assert code_changes(recorded, {**core, "architecture": {}}) == ["architecture tiny not installed"]
    builtin = {**core, "architecture": {"name": "mnist_fc", "distribution": "bioscale", "source_hash": "c"}}
    assert code_changes(builtin, {**core, "architecture": {"source_hash": "d"}}) == []  # the core's own sources
    now = installed_fingerprints({"architecture": {"name": "tiny"}, "data": {"name": "gone"}})
    assert now["architecture"]["distribution"] == "bioscale-tiny" and now["data"] == {}
