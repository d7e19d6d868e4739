"""The locally connected layer against a naive reference; the paper's presets; every rule on LC and conv nets."""

import math

import pytest
import torch
from bioscale.architectures import LocallyConnected2d, build_network
from bioscale.architectures.locally_connected import naive_locally_connected
from bioscale.architectures.presets import PRESETS
from bioscale.testing import check_rule_contract, new_trainer, rule_plugin


def make_lc(c, o, k, s, size, padding=None, seed=0):
    op = LocallyConnected2d(c, o, k, s, padding, size)
    op.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        op.bias.normal_(generator=torch.Generator().manual_seed(seed + 1))
    return op


CASES = [(3, 4, 3, 1, (6, 6), None), (2, 5, 5, 2, (9, 9), None), (3, 4, 3, 2, (8, 7), 0), (4, 6, 1, 1, (5, 5), None)]


@pytest.mark.parametrize("c, o, k, s, size, padding", CASES)
def test_values_and_gradients_match_the_naive_reference(c, o, k, s, size, padding):
    op = make_lc(c, o, k, s, size, padding)
    x = torch.randn(5, c, *size, requires_grad=True)
    ref = naive_locally_connected(x, op.kernel_view(), op.bias, s, op.padding)
    assert ref.shape[1:] == op.out_shape
    with torch.no_grad():
        out = op(x)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ref)
    gx, gw, gb = torch.autograd.grad(ref, [x, op.weight, op.bias], g)
    with torch.no_grad():
        torch.testing.assert_close(op.input_vjp(g), gx, rtol=1e-5, atol=1e-5)
        grads = op.param_grads(x.detach(), g)
    torch.testing.assert_close(grads["weight"], gw, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads["bias"], gb, rtol=1e-5, atol=1e-5)
    # the autograd path (used by BP references and user code) gives the same numbers
    ax, aw, ab = torch.autograd.grad(op(x), [x, op.weight, op.bias], g)
    torch.testing.assert_close(ax, gx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(aw, gw, rtol=1e-5, atol=1e-5)


def test_weights_are_not_shared_and_padding_keeps_the_size():
    op = make_lc(2, 3, 3, 1, (5, 5))
    assert op.out_shape == (3, 5, 5) and op.weight.shape == (25, 18, 3)
    x = torch.zeros(1, 2, 5, 5)
    x[0, :, 2, 2] = 1.0  # one pixel seen by 9 locations, each through its own filter
    with torch.no_grad():
        op.bias.zero_()
        out = op(x)
    responses = {tuple(out[0, :, i, j].tolist()) for i in range(1, 4) for j in range(1, 4)}
    assert len(responses) == 9


def test_glorot_init_matches_a_convolution_of_the_same_shape():
    op = make_lc(64, 128, 5, 2, (16, 16))
    bound = math.sqrt(6 / (64 * 25 + 128 * 25))
    assert op.weight.abs().max() <= bound and op.weight.abs().max() > 0.99 * bound


def test_cached_patches_are_only_used_for_the_same_input():
    op = make_lc(3, 4, 3, 1, (6, 6))
    a, b = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    g = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        op(a)
        op(b)
        from_cache = op.param_grads(a, g)["weight"]
        op.eval()
        op(b)
        fresh = op.param_grads(a, g)["weight"]
    torch.testing.assert_close(from_cache, fresh)


def shapes(preset, in_shape, classes):
    with torch.device("meta"):
        net = build_network(in_shape, classes, PRESETS[preset]["blocks"], PRESETS[preset]["widths"], init=False)
    return [layer.out_shape for layer in net.layers], net


def forward_macs(net) -> int:
    total = 0
    for layer in net.layers:
        op = layer.op
        per_output = op.weight.shape[1] if op.weight.dim() == 3 else math.prod(op.weight.shape[1:])
        total += math.prod(op.out_shape) * per_output
    return total


@pytest.mark.parametrize(
    "preset, in_shape, classes, expected, macs",
    [
        ("mnist_lc", (1, 28, 28), 10, [(32, 14, 14), (64, 7, 7), (1024,), (10,)], 4.2e6),
        ("cifar_lc", (3, 32, 32), 10, [(64, 16, 16), (128, 8, 8), (256, 8, 8), (1024,), (10,)], 50e6),
        (
            "imagenet_lc",
            (3, 224, 224),
            1000,
            [(48, 56, 56), (48, 28, 28), (96, 28, 28), (96, 14, 14), (192, 14, 14), (192, 7, 7), (384, 7, 7), (1000,)],
            None,
        ),
        ("mnist_conv", (1, 28, 28), 10, [(32, 14, 14), (64, 7, 7), (1024,), (10,)], 4.2e6),
        ("cifar_conv", (3, 32, 32), 10, [(64, 16, 16), (128, 8, 8), (256, 8, 8), (1024,), (10,)], 50e6),
    ],
)
def test_paper_presets_have_table_3_shapes(preset, in_shape, classes, expected, macs):
    out_shapes, net = shapes(preset, in_shape, classes)
    assert out_shapes == expected
    kinds = {type(layer.op).__name__ for layer in net.layers[: len(PRESETS[preset]["blocks"])]}
    assert kinds == ({"LocallyConnected2d"} if preset.endswith("_lc") else {"Conv2dOp"})
    if macs:
        assert abs(forward_macs(net) - macs) / macs < 0.05  # the paper's rough cost per example


def test_cifar_lc_has_about_50m_weights():
    _, net = shapes("cifar_lc", (3, 32, 32), 10)
    n = sum(p.numel() for p in net.parameters())
    assert 45e6 < n < 55e6


SMALL_LC = "model.blocks=[{type: lc, channels: 4, kernel: 3, stride: 2}, {type: lc, channels: 6, kernel: 3, stride: 1}]"
SMALL_CONV = SMALL_LC.replace("lc", "conv")


@pytest.mark.parametrize("blocks", [SMALL_LC, SMALL_CONV], ids=["lc", "conv"])
def test_bp_on_spatial_nets_equals_autograd(tmp_path, blocks):
    trainer = new_trainer("bp", tmp_path, [blocks, "model.widths=[16]"])
    probe = trainer.probe_gradients(trainer.data.train.x[:20], trainer.data.train.y[:20])
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("blocks", [SMALL_LC, SMALL_CONV], ids=["lc", "conv"])
def test_fa_on_spatial_nets_uses_feedback_shaped_like_the_layer(tmp_path, blocks):
    trainer = new_trainer("fa", tmp_path, [blocks, "model.widths=[16]"])
    fa = rule_plugin(trainer)
    for l in range(2, trainer.model.num_layers + 1):
        assert fa.feedback[l].shape == trainer.model.layer(l).op.weight.shape
        fa.feedback[l].copy_(trainer.model.layer(l).op.weight.detach())
    probe = trainer.probe_gradients(trainer.data.train.x[:20], trainer.data.train.y[:20])
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6, msg=name)  # FA with B = W is BP


def test_tp_inverse_of_an_lc_layer_is_its_transpose_shape(tmp_path):
    trainer = new_trainer("dtp", tmp_path, [SMALL_LC, "model.widths=[16]"])
    dtp = rule_plugin(trainer)
    g2 = dtp.inverses["2"]
    op2 = trainer.model.layer(2).op
    assert g2.weight.shape == op2.weight.shape and g2.bias.shape == op2.in_shape
    h2 = torch.randn(3, *op2.out_shape)
    assert g2(h2).shape == (3, *op2.in_shape)


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "dtp", "sdtp", "aosdtp"])
@pytest.mark.parametrize("blocks", [SMALL_LC, SMALL_CONV], ids=["lc", "conv"])
def test_every_rule_trains_and_resumes_on_lc_and_conv_nets(tmp_path, rule, blocks):
    # 2 processes against 1 on each layer kind for the core's reduction (bp) and a rule's own (dtp); every rule's
    # own data-parallel check runs on the fc net in its test file
    tokens = [blocks, "model.widths=[16]", f"rules.{rule}.optimizer.lr=0.01"]
    check_rule_contract(rule, tmp_path, tokens, data_parallel=rule in ("bp", "dtp"))
