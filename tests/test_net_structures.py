"""Nets beyond chains: pooling, batch norm, residual blocks. BP through every layer kind equals
autograd; FA with B = W is BP on resnet20; presets match their sources; batch norm's running
statistics are trained, checkpointed and left alone by probes; a rule without support is refused
before any data is read; resume is exact and 2 processes train like 1 with batch norm."""

import json

import pytest
import torch
from bioscale.architectures import PRESETS, build_network
from bioscale.testing import check_data_parallel, model_weights, new_trainer, resume_trainer, rule_plugin
from conftest import run_cli

# every new layer kind on the shipped 8x8 digits
VGG_LIKE = (
    "model.blocks=[{type: conv, channels: 6, kernel: 3, norm: true, bias: false, pool: max},"
    " {type: conv, channels: 8, kernel: 3, pool: avg, pool_kernel: 2}, {type: conv, channels: 8, kernel: 3, pool: global}]"
)
RESNET_LIKE = (
    "model.blocks=[{type: conv, channels: 4, kernel: 3, norm: true, bias: false},"
    " {type: residual, channels: 4, kernel: 3, norm: true, bias: false},"
    " {type: residual, channels: 8, kernel: 3, stride: 2, norm: true, bias: false, shortcut: pad},"
    " {type: residual, channels: 12, kernel: 3, stride: 2, norm: true, bias: false, shortcut: projection, pool: global}]"
)
NETS = {
    "vgg_like": [VGG_LIKE, "model.widths=[16]", "model.activation=relu"],
    "resnet_like": [RESNET_LIKE, "model.widths=[]"],
}


@pytest.mark.parametrize("net", sorted(NETS))
def test_bp_gradients_through_every_layer_kind_equal_autograd(tmp_path, net):
    trainer = new_trainer("bp", tmp_path, NETS[net])
    assert not trainer.model.plain
    x, y = trainer.data.train.x[:40], trainer.data.train.y[:40]
    probe = trainer.probe_gradients(x, y)
    assert all(g is not None for g in probe["rule"])  # every parameter, batch norm's included, got one
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6, msg=name)


def test_the_resnet_like_net_has_every_skip_kind():
    net = build_network((1, 8, 8), 10, [b for b in _blocks(RESNET_LIKE)], (), "relu")
    layers = [net.layer(l) for l in range(1, net.num_layers + 1)]
    kinds = [layer.shortcut.kind if layer.shortcut else "identity" for layer in layers if layer.skip_from is not None]
    assert all(layer.shortcut is None for layer in layers if layer.skip_from is None)  # no map where no skip arrives
    assert all(layer.shortcut is None or layer.shortcut.kind != "identity" for layer in layers)  # None is identity
    projections = [
        l for l in range(1, net.num_layers + 1) if net.source(l) not in (l - 1,) and net.skips[l - 1] is None
    ]
    assert kinds == ["identity", "pad", "identity"] and len(projections) == 1  # the last adds the projection layer
    assert net.consumers(projections[0] - 2) == [projections[0] - 1, projections[0]]
    assert net.structures()["skip"] and net.structures()["batchnorm"]


def _blocks(token: str) -> list[dict]:
    from bioscale.config import resolve

    cfg = resolve.build_run_config(["rule=bp", token])
    return [resolve.config_dict(b, resolve=True, enum_to_str=True) for b in cfg.model.blocks]


def test_fa_with_feedback_equal_to_forward_weights_is_bp_on_resnet20(tmp_path):
    trainer = new_trainer("fa", tmp_path, ["model=resnet20"])
    fa = rule_plugin(trainer)
    assert set(fa.feedback.weights) == {l for l in range(1, trainer.model.num_layers + 1) if trainer.model.source(l)}
    for l, b in fa.feedback.weights.items():
        b.copy_(trainer.model.layer(l).op.weight.detach())
    x, y = trainer.data.train.x[:32], trainer.data.train.y[:32]
    probe = trainer.probe_gradients(x, y)
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6, msg=name)


# (preset, input, classes) -> parameters in the source: BioTorch's LeNetCIFAR, scalingDTP's SimpleVGG,
# the DLL code's cifar10 CNN (counted from its layer shapes), akamaster's / BioTorch's resnet20 / resnet56, torchvision's resnet18, kuangliu's ResNet18
SOURCES = {
    ("lenet", (3, 32, 32), 10): 128_842,
    ("simple_vgg", (3, 32, 32), 10): 2_221_706,
    ("dll_cnn", (3, 32, 32), 10): 414_410,
    ("resnet20", (3, 32, 32), 10): 269_722,
    ("resnet56", (3, 32, 32), 10): 853_018,
    ("resnet18", (3, 224, 224), 1000): 11_689_512,
    ("resnet18_small", (3, 32, 32), 10): 11_173_962,
}


@pytest.mark.parametrize("preset,shape,classes", sorted(SOURCES), ids=[k[0] for k in sorted(SOURCES)])
def test_presets_have_their_sources_parameter_counts_and_output_shape(preset, shape, classes):
    spec = PRESETS[preset]
    net = build_network(shape, classes, spec["blocks"], spec["widths"], spec["activation"], init=False)
    assert sum(p.numel() for p in net.parameters()) == SOURCES[(preset, shape, classes)]
    if preset != "resnet18":  # 224x224 costs seconds on the CPU
        net = build_network(shape, classes, spec["blocks"], spec["widths"], spec["activation"])
        assert net(torch.zeros(2, *shape)).shape == (2, classes)


def test_batch_norm_statistics_move_in_training_steps_only_and_are_checkpointed(tmp_path):
    trainer = new_trainer("bp", tmp_path, [*NETS["resnet_like"], "trainer.epochs=1"])
    norm = trainer.model.layer(1).norm
    before = norm.running_mean.clone()
    trainer.probe_gradients(trainer.data.train.x[:16], trainer.data.train.y[:16])
    assert torch.equal(norm.running_mean, before)  # probes change no state
    trainer.fit()
    assert not torch.equal(norm.running_mean, before)
    state = torch.load(trainer.run_dir / "checkpoint.pt", weights_only=True)
    saved = [v for k, v in _flatten(state).items() if k.endswith("layers.0.norm.running_var")]
    assert saved and torch.equal(saved[0], norm.running_var)
    trainer.model.eval()  # evaluation uses the running statistics: one example's logits alone equal in a batch
    x = trainer.data.test.x[:8]
    with torch.no_grad():
        torch.testing.assert_close(trainer.model(x)[:1], trainer.model(x[:1]))


def _flatten(tree, prefix="") -> dict:
    if isinstance(tree, dict):
        return {k2: v2 for k, v in tree.items() for k2, v2 in _flatten(v, f"{prefix}{k}.").items()}
    return {prefix[:-1]: tree}


def test_resume_with_batch_norm_is_exact(tmp_path):
    tokens = [*NETS["resnet_like"], "rules.bp.optimizer.schedule=constant", "data.augment=true"]
    straight = new_trainer("bp", tmp_path / "a", [*tokens, "trainer.epochs=2"])
    straight.fit()
    half = new_trainer("bp", tmp_path / "b", [*tokens, "trainer.epochs=1"])
    half.fit()
    resumed = resume_trainer(half.run_dir, ["trainer.epochs=2"])
    resumed.fit()
    for name, value in model_weights(resumed).items():  # weights and running statistics
        assert torch.equal(value, model_weights(straight)[name]), name


def test_two_processes_train_like_one_with_batch_norm(tmp_path):
    """Synchronised batch norm: the global batch's statistics on every rank (unequal shares too)."""
    rules = [("bp", NETS["resnet_like"]), ("fa", [*NETS["vgg_like"], "trainer.batch_size=63"])]
    assert len(check_data_parallel(rules, tmp_path)) == 2


@pytest.mark.parametrize("rule", ["dtp", "sdtp", "ddtp", "ldrl"])
def test_a_rule_without_support_is_refused_before_any_data_is_read(tmp_path, rule):
    """mnist from a folder that does not exist: the refusal comes first, exit 2, nothing written."""
    result = run_cli(
        *[
            "train",
            f"rule={rule}",
            "model=resnet20",
            "data=mnist",
            f"data.root={tmp_path / 'none'}",
            f"output_dir={tmp_path / 'runs'}",
        ]
    )
    assert result.returncode == 2
    assert (
        f"{rule}: resnet20 has batch norm in blocks 1-10; skip connections in blocks 2-10; "
        f"{rule} supports plain chains with pooling (targets need a chain" in result.stderr
    )
    assert "mnist" not in result.stderr and not (tmp_path / "runs").exists()


def test_mix_needs_every_inner_rule_to_support_the_net(tmp_path):
    result = run_cli(
        *[
            "train",
            "rule=mix",
            "model.blocks=[{type: conv, channels: 4, kernel: 3, norm: true, pool: max}]",
            "model.widths=[16]",
            "rules.mix.layers=[fa,dtp,dtp]",
            f"output_dir={tmp_path}",
        ]
    )
    assert result.returncode == 2 and "dtp: digits_fc has batch norm in block 1; dtp supports" in result.stderr


def test_a_bad_pool_is_a_config_error_naming_the_block(tmp_path):
    result = run_cli(*["train", "rule=bp", "model.blocks=[{type: conv, channels: 4, kernel: 3, pool: maximum}]"])
    assert result.returncode == 2 and "blocks[0] (conv): unknown pool 'maximum'" in result.stderr


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "signsym", "kp", "wm"])
def test_signal_rules_train_a_pooled_and_a_residual_net(tmp_path, rule):
    for i, tokens in enumerate((NETS["vgg_like"], NETS["resnet_like"])):
        result = run_cli(
            *[
                "train",
                f"rule={rule}",
                *tokens,
                "trainer.epochs=1",
                "data.limit_train=256",
                f"output_dir={tmp_path / str(i)}",
                "trainer.progress=false",
            ]
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(next((tmp_path / str(i)).glob("*/summary.json")).read_text())
        assert summary["status"] == "completed"
