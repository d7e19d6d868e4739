"""Declared value ranges (``bounded``) on the core's, rules' and observers' configs: refused at
resolution with the key, the value and the range, before any run folder or data."""

from dataclasses import dataclass, field

import pytest
from bioscale.config import bounded, build_run_config, check_bounds, resolve_observers, resolve_rule
from bioscale.errors import ConfigError
from conftest import run_cli
from omegaconf import OmegaConf


@dataclass
class Inner:
    rate: float = bounded(0.5, low=0, high=1, high_open=True)


@dataclass
class Outer:
    count: int = bounded(1, low=1)
    scale: float = bounded(1.0, low=0, low_open=True)
    cap: float = bounded(1.0, high=2)
    maybe: float | None = bounded(None, low=0)
    sizes: list[int] = bounded(default_factory=lambda: [3, 4], low=1)
    inner: Inner = field(default_factory=Inner)
    inners: list[Inner] = field(default_factory=lambda: [Inner(), Inner()])
    free: float = -5.0  # no declared range


def check(**overrides):
    check_bounds(OmegaConf.merge(OmegaConf.structured(Outer), overrides), "x")


def test_values_inside_their_ranges_pass():
    check()
    check(count=7, scale=1e-9, cap=2, maybe=0.0, sizes=[1], inner={"rate": 0.0}, free=-1e9)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"count": 0}, "x.count must be >= 1, got 0"),
        ({"scale": 0.0}, "x.scale must be > 0, got 0.0"),
        ({"cap": 2.5}, "x.cap must be <= 2, got 2.5"),
        ({"maybe": -0.1}, "x.maybe must be >= 0, got -0.1"),
        ({"sizes": [2, 0, 3]}, "x.sizes[1] must be >= 1, got 0"),
        ({"inner": {"rate": 1.0}}, "x.inner.rate must be in [0, 1), got 1.0"),
        ({"inners": [{"rate": 0.1}, {"rate": -0.1}]}, "x.inners[1].rate must be in [0, 1), got -0.1"),
    ],
)
def test_the_first_value_out_of_range_is_named(overrides, message):
    with pytest.raises(ConfigError) as info:
        check(**overrides)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "tokens, message",
    [
        (["trainer.batch_size=0"], "trainer.batch_size must be >= 1, got 0"),
        (["model.widths=[64,-3]"], "model.widths[1] must be >= 1, got -3"),
        (
            ["model.blocks=[{type: lc, channels: 4, kernel: 3, stride: 0}]"],
            "model.blocks[0].stride must be >= 1, got 0",
        ),
        (["data.validation=-1"], "data.validation must be >= 0, got -1"),
    ],
)
def test_core_config_ranges(tokens, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_run_config(tokens)


@pytest.mark.parametrize(
    "tokens, message",
    [
        (["rule=sdtp", "rules.sdtp.sigma=-1"], r"rules\.sdtp\.sigma must be >= 0, got -1\.0"),
        (["rule=dtp", "rules.dtp.alpha=-0.1"], r"rules\.dtp\.alpha must be >= 0"),
        (["rule=bp", "rules.bp.optimizer.beta1=1.0"], r"rules\.bp\.optimizer\.beta1 must be in \[0, 1\)"),
        (
            ["rule=bp", "rules.dtp.inverse_optimizer.lr=-1"],
            r"rules\.dtp\.inverse_optimizer\.lr must be >= 0",
        ),  # an inactive rule too
        (["rule=aosdtp", "rules.aosdtp.aux_units=-1"], r"rules\.aosdtp\.aux_units must be >= 0"),
    ],
)
def test_rule_config_ranges(tokens, message):
    with pytest.raises(ConfigError, match=message):
        resolve_rule(build_run_config(tokens))


def test_observer_config_ranges():
    with pytest.raises(ConfigError, match=r"observers\.diagnostics\.batch_size must be >= 1, got 0"):
        resolve_observers(build_run_config(["observers.diagnostics.batch_size=0"]))


def test_recipes_and_defaults_are_inside_their_ranges():
    for rule in ("bp", "fa", "dfa", "dtp", "sdtp", "aosdtp"):
        for schedule in ("", " parallel", " alternating"):
            if schedule and rule in ("bp", "fa", "dfa"):
                continue
            tokens = ["model=mnist_fc", f"rule={rule}"] + (
                [f"rules.{rule}.schedule={schedule.strip()}"] if schedule else []
            )
            resolve_rule(build_run_config(tokens))


@pytest.mark.parametrize("args", [["rule=sdtp", "rules.sdtp.sigma=-1"], ["rule=bp", "trainer.epochs=0"]])
def test_cli_refuses_before_any_folder(tmp_path, args):
    result = run_cli("train", *args, f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2, result.stderr
    assert "must be >=" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
