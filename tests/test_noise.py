"""The TP rules' inverse-training noise (rulekit.NoiseSource): shared draws per step and
shape (``rules.<tp>.shared_noise``, the default) and independent draws per call."""

import pytest
import torch
from bioscale.rulekit.noise import NoiseSource
from bioscale.step import forward_step
from bioscale.testing import new_trainer, rule_plugin

INVERSE = frozenset({"inverse"})
EQUAL_WIDTHS = ["model.widths=[24,24,24,24,24]"]


def _row_signs(a, b):
    """Per sample (row), the sign relating ``a`` to ``b`` when ``|a| == |b|``: (B,) of ±1."""
    ratio = (a / b).reshape(a.shape[0], -1)
    assert torch.allclose(ratio.abs(), torch.ones_like(ratio), atol=1e-5)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4)  # one sign per sample
    return ratio[:, 0].round()


def test_shared_noise_is_one_draw_per_step_and_shape_with_fresh_signs_per_sample():
    noise = NoiseSource(torch.Generator().manual_seed(0), "cpu", shared=True)
    clean = torch.randn(16, 5)
    noise.clear_shared()
    a = (noise.perturb(clean, 0.1) - clean) / 0.1
    b = (noise.perturb(clean, 0.3) - clean) / 0.3
    signs = [_row_signs(b, a)]  # the same ε up to a sign per sample, scaled by each std
    stacked = torch.randn(4, 16, 5)
    for layer in (noise.perturb(stacked, 0.1, stacked=True) - stacked) / 0.1:
        signs.append(_row_signs(layer, a))  # every layer of a group: the step's ε, its own signs
    assert len({tuple(s.tolist()) for s in signs}) == len(signs)  # fresh signs per use
    other = noise.perturb(torch.zeros(16, 7), 0.1)  # another shape: its own draw
    assert other.shape == (16, 7) and not torch.allclose(other[:, :5].abs(), 0.1 * a.abs())
    noise.clear_shared()
    assert not torch.allclose((noise.perturb(clean, 0.1) - clean).abs(), 0.1 * a.abs())  # a new step draws anew


def test_shared_noise_of_two_inputs_is_uncorrelated():
    noise = NoiseSource(torch.Generator().manual_seed(2), "cpu", shared=True)
    zeros = torch.zeros(64, 8)
    products, magnitudes = [], []
    for _ in range(200):
        noise.clear_shared()
        first, second = noise.perturb(zeros, 1.0), noise.perturb(zeros, 1.0)
        products.append((first * second).mean())
        magnitudes.append((first.abs() * second.abs()).mean())
    assert abs(torch.stack(products).mean().item()) < 0.02  # E[s s'] ε² = 0
    assert torch.stack(magnitudes).mean().item() > 0.9  # E|ε|² = 1: the magnitudes are shared


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
    assert torch.allclose(again.abs(), eps.abs(), atol=1e-6) == shared  # the kept draw is untouched by the write


def test_unshared_noise_is_a_fresh_draw_per_call_from_the_rule_generator():
    noise = NoiseSource(torch.Generator().manual_seed(7), "cpu", shared=False)
    reference = torch.Generator().manual_seed(7)
    clean = torch.randn(4, 6, 5)
    noise.clear_shared()
    first = noise.perturb(clean, 0.2, stacked=True)
    second = noise.perturb(clean, 0.2, stacked=True)
    # exactly what the per-layer draws were before shared noise: normal_(0, std) then + clean
    torch.testing.assert_close(
        first, torch.empty(4, 6, 5).normal_(0.0, 0.2, generator=reference).add_(clean), rtol=0, atol=0
    )
    torch.testing.assert_close(
        second, torch.empty(4, 6, 5).normal_(0.0, 0.2, generator=reference).add_(clean), rtol=0, atol=0
    )
    assert not torch.equal(first[0], first[1])  # the layers of a stack get different draws


@pytest.mark.parametrize("shared", [True, False])
def test_noise_has_the_requested_std(shared):
    noise = NoiseSource(torch.Generator().manual_seed(1), "cpu", shared=shared)
    noise.clear_shared()
    eps = noise.perturb(torch.zeros(400, 500), 0.25)
    assert abs(eps.mean().item()) < 0.002
    assert abs(eps.std().item() - 0.25) < 0.002


def test_dtp_and_sdtp_share_noise_by_default_aosdtp_draws_per_layer_and_the_setting_overrides(tmp_path):
    assert rule_plugin(new_trainer("sdtp", tmp_path / "a")).noise.shared
    assert not rule_plugin(new_trainer("sdtp", tmp_path / "b", ["rules.sdtp.shared_noise=false"])).noise.shared
    assert not rule_plugin(new_trainer("aosdtp", tmp_path / "c")).noise.shared  # AO-SDTP draws per layer
    assert rule_plugin(new_trainer("aosdtp", tmp_path / "d", ["rules.aosdtp.shared_noise=true"])).noise.shared


def test_shared_noise_is_drawn_once_per_inverse_update(tmp_path, monkeypatch):
    trainer = new_trainer("sdtp", tmp_path, EQUAL_WIDTHS)
    rule = rule_plugin(trainer)
    draws = []
    real = NoiseSource._draw
    monkeypatch.setattr(
        NoiseSource,
        "_draw",
        lambda self, shape, like, dim, fill: draws.append(tuple(shape)) or real(self, shape, like, dim, fill),
    )
    data = trainer.data.train
    for _ in range(2):
        step = forward_step(trainer.model, data.x[:32], data.y[:32], 0, 0, INVERSE)
        rule.bioscale_update_inverse(step)
        assert not rule.noise._drawn  # nothing kept allocated between steps
    normals = [shape for shape in draws if shape[-1] != 1]  # the rest are per-sample signs (32, 1) / (G, 32, 1)
    assert normals == [(32, 24), (32, 24)]  # every inverse (group and top) reads a (32, 24) input: one draw a step


@pytest.mark.parametrize("shared", [True, False])
def test_a_share_of_the_global_batch_gets_the_noise_one_process_draws_for_those_rows(shared):
    """Data parallelism: rows 3..7 of a 10-row batch, drawn for the whole batch and cut."""
    clean = torch.randn(10, 6)
    whole = NoiseSource(torch.Generator().manual_seed(5), "cpu", shared=shared)
    part = NoiseSource(torch.Generator().manual_seed(5), "cpu", shared=shared)

    class Share:  # what a StepContext says of its rows
        rows, global_batch_size = slice(3, 7), 10

    part.begin(Share)
    for stacked in (False, True):
        x = torch.stack([clean, clean + 1]) if stacked else clean
        expected = whole.perturb(x, 0.3, stacked=stacked)
        got = part.perturb(x[:, 3:7] if stacked else x[3:7], 0.3, stacked=stacked)
        assert torch.equal(got, expected[:, 3:7] if stacked else expected[3:7])
    assert torch.equal(whole.generator.get_state(), part.generator.get_state())  # the generators stay equal
