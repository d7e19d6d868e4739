"""Weight mirrors: B_l learns W_l from the layer's response to noise, without reading W_l."""

import math

import pytest
import torch
from bioscale.testing import check_rule_contract, new_trainer, rule_plugin


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    cos = torch.nn.functional.cosine_similarity(a.detach().flatten(), b.detach().flatten(), dim=0).clamp(-1, 1)
    return math.degrees(math.acos(float(cos)))


def test_wm_keeps_the_contract_resumes_and_ignores_probes(tmp_path):
    check_rule_contract("wm", tmp_path)


@pytest.mark.parametrize(
    "net",
    [
        ["model.widths=[32,32]"],
        ["model.blocks=[{type: lc, channels: 4, kernel: 3, stride: 2, padding: 0}]", "model.widths=[16]"],
    ],
    ids=["fc", "lc"],
)
def test_feedback_aligns_with_the_forward_weights(tmp_path, net):
    trainer = new_trainer("wm", tmp_path, [*net, "model.activation=identity"])
    rule = rule_plugin(trainer)
    start = {l: _angle(b, trainer.model.ops[l - 1].weight) for l, b in rule.feedback.weights.items()}
    trainer.fit()
    end = {l: _angle(b, trainer.model.ops[l - 1].weight) for l, b in rule.feedback.weights.items()}
    assert all(a > 60 for a in start.values()), start
    assert all(a < 10 for a in end.values()), end


@pytest.mark.parametrize(
    "net",
    [
        ["model.widths=[32,32]"],
        [
            "model.blocks=[{type: conv, channels: 4, kernel: 3, stride: 1}, {type: conv, channels: 4, kernel: 3, stride: 1}]",
            "model.widths=[16]",
        ],
    ],
    ids=["fc", "conv"],
)
def test_the_default_decay_makes_w_itself_the_fixed_point(tmp_path, net):
    # a shared conv weight meets every output position: its mirror update is divided by that count
    trainer = new_trainer("wm", tmp_path, [*net, "rules.wm.mirror_batch=4096"])
    rule = rule_plugin(trainer)
    for l, b in rule.feedback.weights.items():
        b.copy_(trainer.model.ops[l - 1].weight.detach())
    rule.mirror_step()
    for l, b in rule.feedback.weights.items():
        w = trainer.model.ops[l - 1].weight.detach()
        # E[ΔB] = η σ² W - λ W = 0 at B = W: B keeps W's scale (only sampling noise moves it)
        assert abs(float(b.flatten() @ w.flatten() / w.norm() ** 2) - 1) < 0.01, l
        assert (b - w).norm() / w.norm() < 0.03, l


def test_a_mirror_decay_of_one_or_more_is_refused(tmp_path):
    from bioscale.errors import ConfigError

    with pytest.raises(ConfigError, match="mirror_decay"):
        new_trainer("wm", tmp_path, ["rules.wm.mirror_lr=0.5", "rules.wm.mirror_sigma=2"])
