"""Backprop: its parameter updates equal autograd's, on fully connected and conv nets."""

import copy

import pytest
import torch
import torch.nn.functional as F
from bioscale.credit import assign_credit, write_weight_grads
from bioscale.errors import ConfigError
from bioscale.step import forward_step
from bioscale.testing import new_trainer


def test_bp_gradients_equal_autograd(tmp_path):
    trainer = new_trainer("bp", tmp_path, ["model.widths=[40,30,20]"])
    x, y = trainer.data.train.x[:50], trainer.data.train.y[:50]
    probe = trainer.probe_gradients(x, y)
    assert len(probe["rule"]) == len(probe["exact"]) == 8
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-7, msg=name)


def test_bp_with_label_smoothing_equals_autograd_of_the_smoothed_loss(tmp_path):
    """The trainer's task loss and the probe's BP reference both use trainer.label_smoothing."""
    smooth = new_trainer("bp", tmp_path / "a", ["model.widths=[40,30,20]", "trainer.label_smoothing=0.2"])
    plain = new_trainer("bp", tmp_path / "b", ["model.widths=[40,30,20]"])
    x, y = smooth.data.train.x[:50], smooth.data.train.y[:50]
    probe, probe_plain = smooth.probe_gradients(x, y), plain.probe_gradients(x, y)
    params = list(smooth.model.parameters())
    with torch.enable_grad():
        expected = torch.autograd.grad(F.cross_entropy(smooth.model(x), y, label_smoothing=0.2), params)
    for name, mine, ref, exp in zip(probe["names"], probe["rule"], probe["exact"], expected):
        torch.testing.assert_close(mine, exp, rtol=1e-5, atol=1e-7, msg=name)
        torch.testing.assert_close(ref, exp, rtol=1e-5, atol=1e-7, msg=name)
    assert not torch.allclose(probe["rule"][-1], probe_plain["rule"][-1])


def test_bp_gradients_equal_autograd_on_conv_net(tmp_path):
    blocks = "model.blocks=[{type: conv, channels: 4, kernel: 3, stride: 1}, {type: conv, channels: 6, kernel: 3, stride: 2}]"
    trainer = new_trainer("bp", tmp_path, [blocks, "model.widths=[16]"])
    x, y = trainer.data.train.x[:20], trainer.data.train.y[:20]
    probe = trainer.probe_gradients(x, y)
    for name, mine, ref in zip(probe["names"], probe["rule"], probe["exact"]):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-6, msg=name)


def test_bp_training_step_equals_autograd_adam_step(tmp_path):
    """One trainer step with bp moves every weight exactly as loss.backward() + Adam does."""
    trainer = new_trainer("bp", tmp_path, ["rules.bp.optimizer.schedule=constant", "rules.bp.optimizer.lr=0.01"])
    reference = copy.deepcopy(trainer.model)
    ref_opt = torch.optim.Adam(reference.parameters(), lr=0.01, fused=True)
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]

    step = forward_step(trainer.model, x, y, 0, 0, frozenset({"forward"}))
    grads = assign_credit(trainer.rule_hooks, step)
    write_weight_grads(step, grads)
    trainer.optimizer.step()

    ref_opt.zero_grad()
    F.cross_entropy(reference(x), y).backward()
    ref_opt.step()
    for (name, mine), ref in zip(trainer.model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(mine, ref, rtol=0, atol=1e-6, msg=name)
        assert not torch.equal(mine, copy.deepcopy(trainer.model).state_dict()[name] * 0)


def test_bp_lowers_the_loss(tmp_path):
    trainer = new_trainer("bp", tmp_path, ["trainer.epochs=3", "rules.bp.optimizer.lr=0.01"])
    trainer.fit()
    losses = [m["train_loss"] for m in trainer.history]
    assert losses[-1] < 0.5 * losses[0]
    assert trainer.history[-1]["test_error"] < 15


def test_every_step_overwrites_the_weight_gradients(tmp_path):
    """The trainer reuses .grad tensors from step to step: each step's .grad must be that
    step's gradient alone (no accumulation), for FC and LC layers."""
    for tokens in ([], ["model.blocks=[{type: lc, channels: 3, kernel: 3, stride: 2}]", "model.widths=[16]"]):
        trainer = new_trainer("bp", tmp_path / str(len(tokens)), tokens)
        x, y = trainer.data.train.x, trainer.data.train.y
        trainer.train_step(x[:32], y[:32], 0, frozenset({"forward"}), 0.0)
        first = [p.grad for p in trainer.model.parameters()]
        reference = copy.deepcopy(trainer.model)  # the weights the second step's gradient is taken at
        reference.zero_grad(set_to_none=True)
        trainer.train_step(x[32:64], y[32:64], 0, frozenset({"forward"}), 0.0)
        F.cross_entropy(reference(x[32:64]), y[32:64]).backward()
        for p, first_grad, ref in zip(trainer.model.parameters(), first, reference.parameters()):
            assert p.grad is first_grad  # the same tensor, written in place
            torch.testing.assert_close(p.grad, ref.grad, rtol=1e-4, atol=1e-6)


def test_gradient_writes_follow_replaced_grad_tensors(tmp_path):
    """The trainer keeps each op's name → .grad map between steps; a .grad replaced by the
    user (or set to None) must be written (or assigned) on the next step, not the old one."""
    trainer = new_trainer("bp", tmp_path)
    x, y = trainer.data.train.x, trainer.data.train.y
    forward = frozenset({"forward"})
    for _ in range(2):  # the first step assigns .grad tensors, the second keeps their map
        trainer.train_step(x[:32], y[:32], 0, forward, 0.0)
    weight = next(trainer.model.parameters())
    old, old_value = weight.grad, weight.grad.clone()
    weight.grad = torch.full_like(weight, 7.0)
    replaced = weight.grad
    reference = copy.deepcopy(trainer.model)  # the weights the next step's gradient is taken at
    reference.zero_grad(set_to_none=True)
    trainer.train_step(x[:32], y[:32], 0, forward, 0.0)
    F.cross_entropy(reference(x[:32]), y[:32]).backward()
    assert weight.grad is replaced
    torch.testing.assert_close(replaced, next(reference.parameters()).grad, rtol=1e-4, atol=1e-6)
    assert torch.equal(old, old_value)  # the stale tensor was not written
    for p in trainer.model.parameters():
        p.grad = None
    trainer.train_step(x[:32], y[:32], 0, forward, 0.0)
    assert all(p.grad is not None for p in trainer.model.parameters())


def test_output_lr_scale_scales_only_the_output_layers_step(tmp_path):
    """With ``output_lr_scale=0.25`` one cosine-scheduled trainer step equals autograd + an
    Adam whose output-layer group has a quarter of the scheduled lr; the hidden layers get the
    full lr. Scale 0 leaves the output layer untouched."""
    tokens = ["rules.bp.optimizer.lr=0.01", "rules.bp.output_lr_scale=0.25"]
    trainer = new_trainer("bp", tmp_path / "a", tokens)
    reference = copy.deepcopy(trainer.model)
    top = list(reference.layer(reference.num_layers).parameters())
    hidden = [p for p in reference.parameters() if all(p is not t for t in top)]
    progress = 0.3
    lr = 0.01 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * progress)).item())
    ref_opt = torch.optim.Adam([{"params": hidden, "lr": lr}, {"params": top, "lr": 0.25 * lr}], fused=True)
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    trainer.train_step(x, y, 0, frozenset({"forward"}), progress)
    F.cross_entropy(reference(x), y).backward()
    ref_opt.step()
    for (name, mine), ref in zip(trainer.model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(mine, ref, rtol=0, atol=1e-6, msg=name)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([lr, 0.25 * lr])

    frozen = new_trainer("bp", tmp_path / "b", ["rules.bp.output_lr_scale=0"])
    before = copy.deepcopy(frozen.model)
    frozen.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    L = before.num_layers
    for mine, old in zip(frozen.model.layer(L).parameters(), before.layer(L).parameters()):
        assert torch.equal(mine, old)
    assert not torch.equal(frozen.model.layer(1).op.weight, before.layer(1).op.weight)


def test_negative_output_lr_scale_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"rules\.bp\.output_lr_scale must be >= 0"):
        new_trainer("bp", tmp_path, ["rules.bp.output_lr_scale=-1"])
