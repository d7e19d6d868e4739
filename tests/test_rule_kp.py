"""Kolen-Pollack: B_l takes W_l's updates and decay, so W_l - B_l shrinks and B_l aligns with W_l."""

import math

import torch
from bioscale.optim import scheduled_lr
from bioscale.testing import check_rule_contract, new_trainer, rule_plugin


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).clamp(-1, 1)
    return math.degrees(math.acos(float(cos.detach())))


def test_kp_keeps_the_contract_resumes_its_optimiser_and_ignores_probes(tmp_path):
    check_rule_contract("kp", tmp_path)


def test_each_step_shrinks_w_minus_b_by_exactly_the_decay(tmp_path):
    trainer = new_trainer("kp", tmp_path, ["rules.kp.optimizer.schedule=constant"])
    rule = rule_plugin(trainer)
    cfg = trainer.optimizer_cfg
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    for _ in range(3):
        gaps = {l: trainer.model.ops[l - 1].weight.detach() - b for l, b in rule.feedback.weights.items()}
        trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
        shrink = 1 - scheduled_lr(cfg, 0.0) * cfg.weight_decay
        for l, b in rule.feedback.weights.items():  # the same Adam step on both: only the decay differs
            torch.testing.assert_close(
                trainer.model.ops[l - 1].weight.detach() - b, shrink * gaps[l], rtol=1e-4, atol=1e-6
            )


def test_the_output_layers_lr_scale_applies_to_its_feedback_weight_too(tmp_path):
    trainer = new_trainer("kp", tmp_path, ["rules.kp.output_lr_scale=0.1"])
    rule = rule_plugin(trainer)
    lrs = sorted(g["lr"] for g in rule.optimizer.adam.param_groups)
    assert lrs == sorted(g["lr"] for g in trainer.optimizer.param_groups) and len(lrs) == 2


def test_feedback_aligns_with_the_forward_weights_on_a_small_linear_problem(tmp_path):
    trainer = new_trainer(
        "kp",
        tmp_path,
        [
            "model.activation=identity",
            "trainer.epochs=15",
            "rules.kp.optimizer.lr=0.01",
            "rules.kp.optimizer.weight_decay=1.0",
            "rules.kp.optimizer.schedule=constant",
        ],
    )
    rule = rule_plugin(trainer)
    start = {l: _angle(b, trainer.model.ops[l - 1].weight) for l, b in rule.feedback.weights.items()}
    trainer.fit()
    end = {l: _angle(b, trainer.model.ops[l - 1].weight) for l, b in rule.feedback.weights.items()}
    assert all(a > 60 for a in start.values()), start  # independent random draws: near orthogonal
    assert all(a < 10 for a in end.values()), end
