"""``trainer.precision=bf16`` and ``trainer.compile=true`` on the CPU: every rule's step runs its
products in bf16 while weights, gradients and optimiser state stay float32, and the compiled
step trains the same weights as the eager one."""

import pytest
import torch
from bioscale import step_modes
from bioscale.testing import new_trainer

LC_NET = [
    "model.blocks=[{type: lc, channels: 4, kernel: 3, stride: 2}, {type: conv, channels: 4, kernel: 3, stride: 1}]",
    "model.widths=[32]",
]
RULES = [
    ("bp", ()),
    ("fa", ()),
    ("dfa", ()),
    ("signsym", ("rules.signsym.variant=brsf",)),
    ("kp", ()),
    ("wm", ()),
    ("ddtp", ()),
    ("ldrl", ()),
    ("mix", ("rules.mix.layers=[fa,ldrl,ddtp,ddtp]",)),
    ("pc", ()),
] + [
    (rule, (f"rules.{rule}.schedule={schedule}",))
    for rule in ("dtp", "sdtp", "aosdtp")
    for schedule in ("parallel", "alternating")
]


def _steps(trainer, n=2):
    x, y = trainer.data.train.x[:32], trainer.data.train.y[:32]
    step = None
    for i in range(n):
        for phases in trainer.rule_hooks.epoch_passes(0):
            step, _ = trainer.train_step(x, y, 0, frozenset(phases), 0.1 * i)
    return step


@pytest.mark.parametrize("rule,tokens", RULES, ids=[f"{r}-{'-'.join(t) or 'default'}" for r, t in RULES])
def test_bf16_runs_the_step_in_bf16_and_keeps_float32_master_state(tmp_path, rule, tokens):
    trainer = new_trainer(rule, tmp_path, [*tokens, *LC_NET, "trainer.precision=bf16"])
    before = [p.detach().clone() for p in trainer.model.parameters()]
    step = _steps(trainer)
    assert step.logits.dtype == torch.bfloat16  # the forward products ran under autocast (h_1.. are let go)
    params = list(trainer.model.parameters())
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in params)
    assert all(v.dtype == torch.float32 for s in trainer.optimizer.state.values() for v in s.values() if v.dim())
    assert all(torch.isfinite(p).all() for p in params)
    assert any(not torch.equal(p, b) for p, b in zip(params, before))


def test_bf16_gradients_are_close_to_float32_ones(tmp_path):
    grads = {}
    for precision in ("fp32", "bf16"):
        trainer = new_trainer("bp", tmp_path / precision, [*LC_NET, f"trainer.precision={precision}"])
        _steps(trainer, 1)
        grads[precision] = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
    rel = (grads["bf16"] - grads["fp32"]).norm() / grads["fp32"].norm()
    assert 0 < rel < 0.05  # bf16 has 8 bits of mantissa: about 0.4 % per product, not zero


def test_bf16_evaluation_is_autocast_too_and_a_run_learns_like_float32(tmp_path):
    errors = {}
    for precision in ("fp32", "bf16"):
        trainer = new_trainer("bp", tmp_path / precision, [f"trainer.precision={precision}", "trainer.epochs=3"])
        seen = []
        trainer.model.ops[0].register_forward_hook(lambda mod, inp, out, seen=seen: seen.append(out.dtype))
        summary = trainer.fit()
        assert summary["status"] == "completed" and seen
        assert set(seen) == {torch.bfloat16 if precision == "bf16" else torch.float32}  # training and evaluation
        errors[precision] = summary["best_test_error"]
    assert errors["fp32"] < 50 and abs(errors["bf16"] - errors["fp32"]) < 5


def test_an_unknown_precision_is_refused_before_any_work(tmp_path):
    from bioscale.errors import ConfigError

    with pytest.raises(ConfigError, match="precision"):
        new_trainer("bp", tmp_path, ["trainer.precision=fp8"])


@pytest.mark.parametrize("rule,tokens", [("bp", ()), ("dtp", ("rules.dtp.schedule=alternating",))])
def test_the_compiled_step_trains_the_same_weights_as_the_eager_one(tmp_path, monkeypatch, rule, tokens):
    # dynamo's graph capture through the core's step and the rule's hooks, with the eager backend
    # (inductor's code generation is exercised on the GPU by benchmarks/device_check.sh)
    from torch._dynamo.utils import counters

    monkeypatch.setattr(
        step_modes, "maybe_compile", lambda fn, enabled: torch.compile(fn, backend="eager") if enabled else fn
    )
    monkeypatch.setattr("bioscale.trainer.maybe_compile", step_modes.maybe_compile)
    torch._dynamo.reset()
    counters.clear()
    weights = {}
    for mode in ("false", "true"):
        trainer = new_trainer(rule, tmp_path / mode, [*tokens, f"trainer.compile={mode}"])
        _steps(trainer, 3)
        weights[mode] = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert counters["stats"]["unique_graphs"] > 0  # something was really compiled
    torch.testing.assert_close(weights["true"], weights["false"], rtol=1e-5, atol=1e-6)
