"""The rule kit's objects do the contract's duties for the rules that use them: RuleOptimizer
(data-parallel reduction, float32 gradients, the lr schedule), NoiseSource.drawing (probes leave
the generators as they were), and the TP targets written once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from bioscale.config.schema import AdamConfig, LRSchedule
from bioscale.rulekit import NoiseSource, RuleOptimizer, targets


def _step(progress=0.0, is_probe=False, rows=8):
    reduced = []
    step = SimpleNamespace(
        progress=progress,
        is_probe=is_probe,
        rows=slice(0, rows),
        global_batch_size=rows,
        reduce_gradients=lambda tensors: reduced.append(list(tensors)),
    )
    return step, reduced


@pytest.mark.parametrize("reduce", [True, False])
def test_rule_optimizer_reduces_its_gradients_unless_told_not_to(reduce):
    params = [torch.zeros(3), torch.zeros(2, 2)]
    for p in params:
        p.grad = torch.ones_like(p)
    opt = RuleOptimizer(params, AdamConfig(lr=0.1, schedule=LRSchedule.constant), reduce=reduce)
    step, reduced = _step()
    opt.step(step)
    assert reduced == ([[p.grad for p in params]] if reduce else [])
    assert all(torch.allclose(p, torch.full_like(p, -0.1)) for p in params)  # Adam's first step: -lr sign(g)


def test_rule_optimizer_follows_the_schedule_and_scales_the_scaled_group():
    below, top = torch.zeros(2), torch.zeros(2)
    below.grad, top.grad = torch.ones(2), torch.ones(2)
    opt = RuleOptimizer([below], AdamConfig(lr=0.2, schedule=LRSchedule.cosine), scaled=[top], lr_scale=0.5)
    opt.step(_step(progress=0.5)[0])  # cosine at half the run: lr / 2
    assert [g["lr"] for g in opt.adam.param_groups] == pytest.approx([0.1, 0.05])


def test_set_grad_gives_a_float32_parameter_a_float32_gradient():
    p = torch.zeros(4)
    RuleOptimizer.set_grad(p, torch.ones(4, dtype=torch.bfloat16))
    assert p.grad.dtype == torch.float32 and torch.equal(p.grad, torch.ones(4))


@pytest.mark.parametrize("is_probe", [True, False])
def test_noise_drawn_in_a_probe_leaves_every_generator_as_it_was(is_probe):
    noise = NoiseSource(torch.Generator().manual_seed(0), "cpu")
    noise.device_generator = torch.Generator().manual_seed(1)  # stands in for an accelerator's generator
    before = noise.generator.get_state(), noise.device_generator.get_state()
    step, _ = _step(is_probe=is_probe)
    with noise.drawing(step):
        noise.perturb(torch.zeros(8, 3), 1.0)
        torch.rand(3, generator=noise.device_generator)
    after = noise.generator.get_state(), noise.device_generator.get_state()
    assert [torch.equal(a, b) for a, b in zip(before, after)] == [is_probe, is_probe]


def test_the_difference_target_is_h_plus_g_of_the_target_minus_g_of_the_read():
    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh())
    h_below, target_read, read = torch.randn(6, 4), torch.randn(6, 5), torch.randn(6, 5)
    with torch.no_grad():
        got = targets.difference_target(g, h_below, target_read, read)
        torch.testing.assert_close(got, h_below + g(target_read) - g(read))


def test_the_output_step_target_is_one_step_down_the_per_sample_loss():
    torch.manual_seed(0)
    logits, y = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    step = SimpleNamespace(
        logits=logits, label_distribution=lambda dtype=None: F.one_hot(y, 3).to(dtype or logits.dtype)
    )
    expected = logits - 0.3 * (torch.softmax(logits, 1) - F.one_hot(y, 3))
    torch.testing.assert_close(targets.output_step_target(step, 0.3), expected)


def test_under_bf16_autocast_the_targets_keep_a_displacement_below_bf16s_spacing():
    """bf16's spacing on [0.5, 1) is 2⁻⁸ ≈ 0.0039: a displacement of 1e-3 from h = 0.5 rounds away in bf16. The
    targets are float32 and their differences formed in float32, the inverse's product included (issue 33, F2)."""
    h = torch.full((4, 8), 0.5, dtype=torch.bfloat16)
    inverse = torch.nn.Linear(8, 8)
    with torch.no_grad():
        inverse.weight.copy_(torch.eye(8))
        inverse.bias.zero_()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        step = targets.step_target(
            h, 0.5, torch.full_like(h, 2e-3)
        )  # h - 1e-3 (the direction itself bf16: 2⁻⁹ relative)
        difference = targets.difference_target(inverse, h, h.float() + 1e-3, h)  # h + g(h + 1e-3) - g(h)
        logits = torch.tensor([[12.0, 0.0, 0.0]], dtype=torch.bfloat16)  # softmax 1 - 1.2e-5 for the label
        fake = SimpleNamespace(
            logits=logits, label_distribution=lambda dtype=None: F.one_hot(torch.tensor([0]), 3).to(dtype)
        )
        error = targets.output_error(fake)
    assert step.dtype == difference.dtype == error.dtype == torch.float32
    torch.testing.assert_close(h.float() - step, torch.full((4, 8), 1e-3), rtol=1e-2, atol=0)
    torch.testing.assert_close(difference - h.float(), torch.full((4, 8), 1e-3), rtol=1e-2, atol=0)
    assert -1.3e-5 < error[0, 0].item() < -1.1e-5  # softmax - 1 formed in bf16 is 0
