"""Optimisers and learning-rate schedules: SGD (momentum, Nesterov, L2 decay) steps as torch's
and by hand, multistep / warm-up / cosine lrs at the epochs they name, refused combinations."""

from __future__ import annotations

import json
import math

import pytest
import torch
from bioscale.config import build_run_config, resolve_rule
from bioscale.config.schema import AdamConfig, LRSchedule, OptimizerConfig, OptimizerName
from bioscale.errors import ConfigError
from bioscale.optim import make_optimizer, scheduled_lr
from bioscale.rulekit import RuleOptimizer
from bioscale.testing import new_trainer, rule_plugin
from conftest import TINY, run_cli

SGD = ["rules.bp.optimizer.name=sgd", "rules.bp.optimizer.schedule=constant"]


def _sgd(**settings) -> OptimizerConfig:
    return OptimizerConfig(name=OptimizerName.sgd, schedule=LRSchedule.constant, **settings)


def _descend(cfg: OptimizerConfig, grads: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    """SGD by hand: d = g + λw; buf = μ buf + (1 - τ) d (buf = d at the first step);
    w -= lr · (d + μ buf if Nesterov else buf)."""
    buf = None
    for g in grads:
        d = g + cfg.weight_decay * w
        buf = d.clone() if buf is None else cfg.momentum * buf + (1 - cfg.dampening) * d
        w = w - cfg.lr * ((d + cfg.momentum * buf) if cfg.nesterov else buf)
    return w


@pytest.mark.parametrize(
    "settings",
    [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
        {"lr": 0.1, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01},
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    ],
    ids=["plain", "momentum", "nesterov", "dampening_l2", "nesterov_l2"],
)
def test_an_sgd_step_is_the_hand_computed_step(settings):
    cfg = _sgd(**settings)
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(4, 3, generator=gen)
    grads = [torch.randn(4, 3, generator=gen) for _ in range(4)]
    w = w0.clone()
    opt = make_optimizer([w], cfg)
    assert isinstance(opt, torch.optim.SGD)
    for g in grads:
        w.grad = g
        opt.step()
    torch.testing.assert_close(w, _descend(cfg, grads, w0), rtol=1e-6, atol=1e-7)


def test_the_default_is_adam_and_adam_config_is_the_same_class():
    assert AdamConfig is OptimizerConfig
    assert isinstance(make_optimizer([torch.zeros(2)], OptimizerConfig()), torch.optim.Adam)


def test_the_forward_sgd_moves_weights_by_lr_times_gradient_and_scales_the_output_layer(tmp_path):
    trainer = new_trainer("bp", tmp_path, [*SGD, "rules.bp.optimizer.lr=0.1", "rules.bp.output_lr_scale=0.5"])
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.optimizer.defaults["fused"]  # CPU: fused kernel
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
    top = {id(p) for p in trainer.model.layer(trainer.model.num_layers).parameters()}
    assert top
    for name, p in trainer.model.named_parameters():  # the first step: no momentum yet, no decay
        lr = 0.05 if id(p) in top else 0.1
        torch.testing.assert_close(p.detach(), before[name] - lr * p.grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "epoch, lr",
    [(0.0, 1.0), (0.99, 1.0), (1.0, 0.1), (2.49, 0.1), (2.5, 0.01), (3.99, 0.01)],
)
def test_multistep_multiplies_by_gamma_from_each_milestone_on(epoch, lr):
    cfg = OptimizerConfig(lr=1.0, schedule=LRSchedule.multistep, milestones=[1.0, 2.5], gamma=0.1)
    assert scheduled_lr(cfg, epoch / 4, 4) == pytest.approx(lr)


@pytest.mark.parametrize("planned", [3, 7, 49, 98, 100])
def test_a_milestone_takes_effect_at_its_first_step_despite_float_rounding(planned):
    cfg = OptimizerConfig(lr=1.0, schedule=LRSchedule.multistep, milestones=list(range(1, planned)), gamma=0.5)
    for epoch in range(planned):  # the trainer's progress at an epoch's first step: (epoch + 0 / nb) / planned
        assert scheduled_lr(cfg, (epoch + 0 / 13) / planned, planned) == 0.5**epoch


def test_warmup_ramps_linearly_from_zero_then_the_schedule_takes_over():
    cfg = OptimizerConfig(lr=2.0, schedule=LRSchedule.constant, warmup_epochs=2.0)
    assert [scheduled_lr(cfg, e / 10, 10) for e in (0, 0.5, 1, 2, 5, 10)] == pytest.approx([0, 0.5, 1, 2, 2, 2])
    multi = OptimizerConfig(lr=1.0, schedule=LRSchedule.multistep, milestones=[1.0], warmup_epochs=2.0)
    assert scheduled_lr(multi, 1.5 / 10, 10) == pytest.approx(0.1 * 0.75)  # both: milestones count from epoch 0


def test_cosine_after_warmup_starts_at_lr_and_reaches_zero_at_the_end():
    cfg = OptimizerConfig(lr=1.0, schedule=LRSchedule.cosine, warmup_epochs=2.0)
    assert scheduled_lr(cfg, 1 / 10, 10) == pytest.approx(0.5)
    assert scheduled_lr(cfg, 2 / 10, 10) == pytest.approx(1.0)
    assert scheduled_lr(cfg, 6 / 10, 10) == pytest.approx(0.5)  # half-way through the 8 epochs after warm-up
    assert scheduled_lr(cfg, 1.0, 10) == pytest.approx(0.0, abs=1e-12)


def test_cosine_without_warmup_is_the_formula_of_before():
    cfg = OptimizerConfig(lr=3e-4)
    for p in (0.0, 0.123, 0.5, 0.999, 1.0):  # bit for bit, with or without the planned epochs
        assert scheduled_lr(cfg, p) == scheduled_lr(cfg, p, 7) == 3e-4 * 0.5 * (1.0 + math.cos(math.pi * p))


def test_a_schedule_counting_epochs_needs_the_planned_epochs():
    with pytest.raises(ValueError, match="planned epochs"):
        scheduled_lr(OptimizerConfig(schedule=LRSchedule.multistep, milestones=[1.0]), 0.5)


@pytest.mark.parametrize(
    "tokens, key",
    [
        (["name=sgd", "nesterov=true", "momentum=0"], "rules.bp.optimizer.nesterov"),
        (["name=sgd", "nesterov=true", "momentum=0.9", "dampening=0.1"], "rules.bp.optimizer.dampening"),
        (["name=sgd", "decoupled_weight_decay=true"], "rules.bp.optimizer.decoupled_weight_decay"),
        (["schedule=multistep", "milestones=[2,1]"], "rules.bp.optimizer.milestones"),
        (["schedule=multistep", "milestones=[1,1]"], "rules.bp.optimizer.milestones"),
        (["schedule=multistep", "milestones=[-1]"], "rules.bp.optimizer.milestones[0]"),
        (["schedule=multistep"], "rules.bp.optimizer.milestones"),
        (["gamma=0"], "rules.bp.optimizer.gamma"),
        (["momentum=1"], "rules.bp.optimizer.momentum"),
        (["warmup_epochs=-1"], "rules.bp.optimizer.warmup_epochs"),
        (["lr=-0.1"], "rules.bp.optimizer.lr"),
        (
            ["name=rmsprop"],
            "optimizer.name",
        ),  # omegaconf's enum message: "rules.bp (...): bad value for 'optimizer.name'"
    ],
)
def test_bad_optimiser_settings_are_refused_naming_the_key(tokens, key):
    cfg = build_run_config(["rule=bp", *(f"rules.bp.optimizer.{t}" for t in tokens)])
    with pytest.raises(ConfigError) as info:
        resolve_rule(cfg)
    assert key in str(info.value)


def test_the_cli_refuses_nesterov_without_momentum_with_exit_2_before_any_work(tmp_path):
    tokens = ["rules.bp.optimizer.name=sgd", "rules.bp.optimizer.nesterov=true", "rules.bp.optimizer.momentum=0"]
    result = run_cli("train", "rule=bp", *TINY, *tokens, f"output_dir={tmp_path}")
    assert result.returncode == 2 and "rules.bp.optimizer.nesterov" in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())


def test_kp_with_sgd_needs_coupled_decay(tmp_path):
    with pytest.raises(ConfigError, match="rules.kp.optimizer.decoupled_weight_decay"):
        resolve_rule(build_run_config(["rule=kp", "rules.kp.optimizer.name=sgd"]))


def test_kp_with_sgd_shrinks_w_minus_b_by_the_l2_decay_in_both_groups(tmp_path):
    tokens = [f"rules.kp.optimizer.{t}" for t in ("name=sgd", "decoupled_weight_decay=false", "schedule=constant")]
    trainer = new_trainer("kp", tmp_path, [*tokens, "rules.kp.output_lr_scale=0.5"])
    rule = rule_plugin(trainer)
    assert isinstance(rule.optimizer.optimizer, torch.optim.SGD)
    cfg, L = trainer.optimizer_cfg, trainer.model.num_layers
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    for _ in range(2):
        gaps = {l: trainer.model.ops[l - 1].weight.detach() - b for l, b in rule.feedback.weights.items()}
        trainer.train_step(x, y, 0, frozenset({"forward"}), 0.0)
        for l, b in rule.feedback.weights.items():  # W - B ← (W - B)(1 - lr λ), lr halved at the output layer
            shrink = 1 - cfg.lr * (0.5 if l == L else 1.0) * cfg.weight_decay
            torch.testing.assert_close(trainer.model.ops[l - 1].weight.detach() - b, shrink * gaps[l])


def test_a_tp_inverse_optimizer_can_be_sgd_and_keeps_momentum_buffers(tmp_path):
    tokens = [f"rules.dtp.inverse_optimizer.{t}" for t in ("name=sgd", "momentum=0.9", "nesterov=true")]
    trainer = new_trainer("dtp", tmp_path, tokens)
    rule = rule_plugin(trainer)
    assert isinstance(rule.optimizer.optimizer, torch.optim.SGD)
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    trainer.train_step(x, y, 0, frozenset({"inverse"}), 0.0)
    state = rule.optimizer.state_dict()["state"]
    assert state and all("momentum_buffer" in s for s in state.values())


def test_rule_optimizer_builds_sgd_and_follows_warmup():
    p = torch.zeros(3)
    p.grad = torch.ones(3)
    opt = RuleOptimizer([p], _sgd(lr=1.0, warmup_epochs=2.0), reduce=False)
    step = type("Step", (), {"progress": 0.25, "planned_epochs": 4, "reduce_gradients": None})()
    opt.step(step)  # epoch 1 of a 2-epoch warm-up: lr / 2
    assert opt.lr == pytest.approx(0.5) and torch.allclose(p, torch.full((3,), -0.5))


def test_the_cli_trains_fa_with_momentum_sgd_and_a_multistep_schedule(tmp_path):
    opt = "rules.fa.optimizer."
    tokens = [f"{opt}name=sgd", f"{opt}momentum=0.9", f"{opt}schedule=multistep", f"{opt}milestones=[1]"]
    result = run_cli(
        "train", "rule=fa", *tokens, "trainer.epochs=2", "trainer.progress=false", f"output_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    lrs = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([1e-3, 1e-4])


def test_a_sweep_may_search_the_optimiser_and_its_momentum():
    from bioscale.commands.sweep import _check_space
    from bioscale.search.space import parse_spec

    keys = {"rules.bp.optimizer.name": "choice:adam,sgd", "rules.bp.optimizer.momentum": "uniform:0:0.99"}
    _check_space(["rule=bp"], {k: parse_spec(k, v) for k, v in keys.items()})  # every end passes
    with pytest.raises(ConfigError, match="sweep space rules.bp.optimizer.name"):
        _check_space(["rule=bp"], {"rules.bp.optimizer.name": parse_spec("rules.bp.optimizer.name", "choice:sgd,lion")})


def test_a_cached_cells_key_ignores_the_new_settings_at_their_defaults_only():
    from bioscale.commands.reproduce import cell_key

    def key(*tokens):
        cfg = build_run_config(["rule=dtp", "model=mnist_fc", *tokens])
        return cell_key(cfg, resolve_rule(cfg), 0)

    plain = key()
    assert key("rules.dtp.optimizer.momentum=0.0", "rules.dtp.inverse_optimizer.gamma=0.1") == plain
    assert key("rules.dtp.optimizer.name=sgd") != plain and key("rules.dtp.inverse_optimizer.warmup_epochs=1") != plain
