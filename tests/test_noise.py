"""The TP rules' inverse-training noise (rulekit.NoiseSource): shared draws per step and
shape (``rules.<tp>.shared_noise``, the default) and independent draws per call."""

import pytest
import torch

from bioscale.rulekit.noise import NoiseSource
from bioscale.step import forward_step
from bioscale.testing import new_trainer, rule_plugin

INVERSE = frozenset({"inverse"})
EQUAL_WIDTHS = ["model.widths=[24,24,24,24,24]"]


def test_shared_noise_is_one_draw_per_step_and_shape_scaled_by_each_std():
    noise = NoiseSource(torch.Generator().manual_seed(0), "cpu", shared=True)
    clean = torch.randn(6, 5)
    noise.clear_shared()
    a = noise.perturb(clean, 0.1) - clean
    b = noise.perturb(clean, 0.3) - clean
    torch.testing.assert_close(b, 3 * a)  # the same ε, scaled by each caller's std
    stacked = torch.randn(4, 6, 5)
    s = noise.perturb(stacked, 0.1, stacked=True) - stacked
    for layer in s:  # every layer of a group gets the step's ε for its (B, n) shape
        torch.testing.assert_close(layer, a)
    other = noise.perturb(torch.zeros(6, 7), 0.1)  # another shape: its own draw
    assert other.shape == (6, 7) and not torch.equal(other[:, :5], a)
    noise.clear_shared()
    assert not torch.allclose(noise.perturb(clean, 0.1) - clean, a)  # a new step draws anew


@pytest.mark.parametrize("shared", [True, False])
def test_perturb_returns_a_fresh_tensor_and_leaves_input_and_draw_alone(shared):
    noise = NoiseSource(torch.Generator().manual_seed(0), "cpu", shared=shared)
    noise.clear_shared()
    clean = torch.randn(6, 5)
    kept = clean.clone()
    out = noise.perturb(clean, 0.5)
    eps = out - clean
    out.add_(1.0)  # callers write into it (the SDTP diff is computed in place)
    assert torch.equal(clean, kept)
    again = noise.perturb(clean, 0.5) - clean
    assert torch.allclose(again, eps, atol=1e-6) == shared  # the kept draw is untouched by the write


def test_unshared_noise_is_a_fresh_draw_per_call_from_the_rule_generator():
    noise = NoiseSource(torch.Generator().manual_seed(7), "cpu", shared=False)
    reference = torch.Generator().manual_seed(7)
    clean = torch.randn(4, 6, 5)
    noise.clear_shared()
    first = noise.perturb(clean, 0.2, stacked=True)
    second = noise.perturb(clean, 0.2, stacked=True)
    # exactly what the per-layer draws were before shared noise: normal_(0, std) then + clean
    torch.testing.assert_close(first, torch.empty(4, 6, 5).normal_(0.0, 0.2, generator=reference).add_(clean), rtol=0, atol=0)
    torch.testing.assert_close(second, torch.empty(4, 6, 5).normal_(0.0, 0.2, generator=reference).add_(clean), rtol=0, atol=0)
    assert not torch.equal(first[0], first[1])  # the layers of a stack get different draws


@pytest.mark.parametrize("shared", [True, False])
def test_noise_has_the_requested_std(shared):
    noise = NoiseSource(torch.Generator().manual_seed(1), "cpu", shared=shared)
    noise.clear_shared()
    eps = noise.perturb(torch.zeros(400, 500), 0.25)
    assert abs(eps.mean().item()) < 0.002
    assert abs(eps.std().item() - 0.25) < 0.002


def test_tp_rules_share_noise_by_default_and_the_setting_turns_it_off(tmp_path):
    assert rule_plugin(new_trainer("sdtp", tmp_path / "a")).noise.shared
    assert not rule_plugin(new_trainer("sdtp", tmp_path / "b", ["rules.sdtp.shared_noise=false"])).noise.shared


def test_shared_noise_is_drawn_once_per_inverse_update(tmp_path, monkeypatch):
    trainer = new_trainer("sdtp", tmp_path, EQUAL_WIDTHS)
    rule = rule_plugin(trainer)
    draws = []
    real = NoiseSource.normal_like
    monkeypatch.setattr(NoiseSource, "normal_like", lambda self, t, std: draws.append(tuple(t.shape)) or real(self, t, std))
    data = trainer.data.train
    for _ in range(2):
        step = forward_step(trainer.model, data.x[:32], data.y[:32], 0, 0, INVERSE)
        rule.bioscale_update_inverse(step)
        assert not rule.noise._drawn  # nothing kept allocated between steps
    assert draws == [(32, 24), (32, 24)]  # every inverse (group and top) reads a (32, 24) input: one draw a step
