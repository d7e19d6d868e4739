"""Bad input fails before any work: exit status 2, a message naming the culprit and
listing what is valid, and no run folder written."""

import pytest
from bioscale.config import build_run_config, resolve_observers, resolve_rule
from bioscale.errors import ConfigError, DataError, PluginError
from conftest import run_cli


@pytest.mark.parametrize(
    "tokens, error, fragments",
    [
        (["trainer.epoch=3"], ConfigError, ["trainer.epoch", "epochs", "batch_size"]),
        (["trainer.epochs=many"], ConfigError, ["trainer.epochs", "many"]),
        (["data.normalize=zscore"], ConfigError, ["data.normalize", "standardize", "scale", "none"]),
        (["model=resnet50"], ConfigError, ["resnet50", "mnist_fc", "cifar_fc"]),
        (["data=imagenet21k"], ConfigError, ["imagenet21k", "mnist", "cifar10"]),
        (["learning_rate=1"], ConfigError, ["learning_rate", "trainer", "rules"]),
        (["epochs"], ConfigError, ["key=value"]),
    ],
)
def test_top_level_config_errors(tokens, error, fragments):
    with pytest.raises(error) as info:
        build_run_config(tokens)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_rule_lists_installed_rules():
    cfg = build_run_config(["rule=backprop"])
    with pytest.raises(PluginError) as info:
        resolve_rule(cfg)
    assert "backprop" in str(info.value) and "bp" in str(info.value) and "fa" in str(info.value)


def test_rule_settings_are_validated_against_the_rules_schema():
    with pytest.raises(ConfigError) as info:
        resolve_rule(build_run_config(["rule=bp", "rules.bp.optimizer.lrate=0.1"]))
    assert "rules.bp" in str(info.value) and "lrate" in str(info.value) and "lr" in str(info.value)
    with pytest.raises(ConfigError, match="beta1"):
        resolve_rule(build_run_config(["rule=bp", "rules.bp.optimizer.beta1=high"]))
    with pytest.raises(ConfigError, match="schedule"):
        resolve_rule(build_run_config(["rule=bp", "rules.bp.optimizer.schedule=linear"]))
    # settings for another (installed) rule are checked too
    with pytest.raises(ConfigError, match="rules.fa"):
        resolve_rule(build_run_config(["rule=bp", "rules.fa.nonsense=1"]))
    with pytest.raises(ConfigError, match="no installed rule is called 'dpt'"):
        resolve_rule(build_run_config(["rule=bp", "rules.dpt.alpha=0.1"]))


def test_observer_settings_are_validated():
    with pytest.raises(ConfigError, match="no installed observer"):
        resolve_observers(build_run_config(["observers.nonexistent.enabled=false"]))
    with pytest.raises(ConfigError, match="true or false"):
        resolve_observers(build_run_config(["observers.console.enabled=maybe"]))
    names = [o.name for o in resolve_observers(build_run_config(["observers.console.enabled=false"]))]
    assert "console" not in names


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["trainer.epoch=3"], ["unknown key 'trainer.epoch'", "epochs"]),
        (["rule=nope"], ["unknown rule 'nope'", "bp", "fa"]),
        (["trainer.batch_size=big"], ["trainer.batch_size"]),
        (["trainer.label_smoothing=1.0"], ["trainer.label_smoothing", "[0, 1)"]),
        (["trainer.label_smoothing=-0.1"], ["trainer.label_smoothing", "[0, 1)"]),
        (["model.weight_init=he"], ["model.weight_init", "glorot", "orthogonal"]),
        (["model.activation=swish"], ["model:", "'swish'", "tanh"]),
        (["data=mnist", "data.root=/nonexistent/place"], ["/nonexistent/place/mnist.npz", "data.download=true"]),
        (["data=digits"], ["no rule chosen", "rule=NAME", "bp", "dtp"]),
    ],
)
def test_cli_exits_2_before_any_work(tmp_path, args, fragments):
    chosen = [] if any(a.startswith("rule=") for a in args) or args == ["data=digits"] else ["rule=bp"]
    result = run_cli("train", *chosen, *args, f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_data_error_says_where_it_looked(tmp_path):
    from bioscale.datasets import load_data

    cfg = build_run_config(["data=cifar10", f"data.root={tmp_path}"])
    with pytest.raises(DataError) as info:
        load_data(cfg.data)
    message = str(info.value)
    assert str(tmp_path / "cifar10.npz") in message and "torchvision" in message and "data.download=true" in message


def test_settings_for_a_rule_not_in_the_run_are_checked_and_warned_about(tmp_path, capsys):
    from bioscale.commands.train import prepare

    prepare(["rule=kp", "rules.signsym.scale=2", "model.widths=[8]", f"output_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert "warning: rules.signsym: settings for rule 'signsym', which this run (rule=kp) does not use" in err
    prepare(["rule=kp", "rules.kp.optimizer.lr=0.01", "model.widths=[8]", f"output_dir={tmp_path}"])
    assert "warning" not in capsys.readouterr().err
    from bioscale.errors import ConfigError

    with pytest.raises(ConfigError, match="rules.signsym.scale"):  # unused, but still validated
        prepare(["rule=kp", "rules.signsym.scale=-1", "model.widths=[8]", f"output_dir={tmp_path}"])
