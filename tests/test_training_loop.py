"""The trainer's contract with rules and observers: hook order, phases, events, divergence."""

import json
from dataclasses import dataclass

import pytest
import torch
from bioscale import RuleConfig, hookimpl
from bioscale.config.resolve import ObserverSpec
from bioscale.errors import DivergenceError
from bioscale.testing import fake_entry, new_trainer, rule_plugin


@dataclass
class RecorderConfig(RuleConfig):
    nan_after_steps: int = -1


class RecordingRule:
    """BP that records every hook call; alternates passes; can turn its signal into NaN."""

    Config = RecorderConfig

    def __init__(self, config):
        self.config = config
        self.calls = []
        self.steps = 0

    @hookimpl
    def bioscale_setup(self, model, generator):
        self.calls.append(("setup", model.num_layers))

    @hookimpl
    def bioscale_epoch_passes(self, epoch):
        self.calls.append(("passes", epoch))
        return [{"inverse"}, {"forward"}]

    @hookimpl
    def bioscale_update_inverse(self, step):
        self.calls.append(("inverse", step.index, tuple(sorted(step.phases)), step.output_grad is None))
        return {2: torch.tensor(1.0)}

    @hookimpl
    def bioscale_output_target(self, step):
        self.calls.append(("output_target", step.index))
        return None

    @hookimpl
    def bioscale_layer_target(self, step, layer, target_above):
        self.calls.append(("layer_target", layer, target_above is None))
        return None

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        self.calls.append(("feedback", layer, tuple(grad_above.shape)))
        self.steps += layer == 2
        signal = step.layer_vjp(layer, grad_above)
        if 0 <= self.config.nan_after_steps < self.steps:
            signal = signal * float("nan")
        return signal


class EventObserver:
    def __init__(self):
        self.events = []

    @hookimpl
    def bioscale_run_start(self, run):
        self.events.append("run_start")

    @hookimpl
    def bioscale_step_end(self, run, step):
        self.events.append("step")

    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        self.events.append(("epoch_end", epoch, "test_error" in metrics))
        return {"observer_metric": epoch * 10}

    @hookimpl
    def bioscale_run_end(self, run, summary):
        self.events.append(("run_end", summary["epochs"]))
        self.statuses = getattr(self, "statuses", []) + [summary["status"]]


class InterruptingObserver(EventObserver):
    """Presses Ctrl-C in the middle of the second epoch."""

    @hookimpl
    def bioscale_step_end(self, run, step):
        if step.epoch == 1:
            raise KeyboardInterrupt


def test_hook_order_phases_and_observer_events(tmp_path):
    observer = EventObserver()
    obs_spec = ObserverSpec("events", fake_entry(EventObserver, "events"), lambda: observer, None)
    trainer = new_trainer(
        fake_entry(RecordingRule, "recorder"),
        tmp_path,
        ["trainer.epochs=1", "data.limit_train=128"],
        observers=[obs_spec],
    )
    rule = rule_plugin(trainer)
    trainer.fit()
    L = trainer.model.num_layers  # 3
    calls = rule.calls
    assert calls[0] == ("setup", L) and calls[1] == ("passes", 0)
    inverse = [c for c in calls if c[0] == "inverse"]
    assert inverse == [("inverse", 0, ("inverse",), True), ("inverse", 1, ("inverse",), True)]
    first_forward = calls.index(("output_target", 2))
    assert all(c[0] != "inverse" for c in calls[first_forward:])  # a whole inverse pass, then forward
    expected_step = [("output_target", 2)]
    for layer in range(L, 1, -1):
        expected_step += [
            ("layer_target", layer, True),
            ("feedback", layer, (64, *trainer.model.layer(layer).out_shape)),
        ]
    assert calls[first_forward : first_forward + len(expected_step)] == expected_step
    assert observer.events[0] == "run_start" and observer.events.count("step") == 4
    assert observer.events[-2:] == [("epoch_end", 1, True), ("run_end", 1)]
    line = json.loads((trainer.run_dir / "metrics.jsonl").read_text())
    assert line["observer_metric"] == 10 and line["passes"] == ["inverse", "forward"]
    assert line["inverse_loss"] == {"2": 1.0}


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = new_trainer(
        fake_entry(RecordingRule, "recorder"), tmp_path, ["trainer.epochs=3", "rules.recorder.nan_after_steps=30"]
    )
    with pytest.raises(DivergenceError) as info:
        trainer.fit()
    assert (
        "nan" in str(info.value)
        and "epoch 2" in str(info.value)
        and "last good checkpoint (epoch 1)" in str(info.value)
    )
    state = torch.load(trainer.run_dir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    summary = json.loads((trainer.run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["epochs"] == 1


def test_checkpoint_holds_model_optimizer_rule_and_rng_state(tmp_path):
    trainer = new_trainer("fa", tmp_path, ["trainer.epochs=1"])
    trainer.fit()
    state = torch.load(trainer.run_dir / "checkpoint.pt", weights_only=True)
    assert set(state) >= {"model", "optimizer", "rule", "rng", "epoch", "global_step", "identity"}
    assert set(state["rng"]) >= {"torch", "data", "rule"}
    assert state["optimizer"]["state"]  # Adam moments are saved
    assert not list(trainer.run_dir.glob(".*tmp*"))  # atomic write leaves no temp file


def _observed(cls):
    observer = cls()
    return observer, ObserverSpec("events", fake_entry(cls, "events"), lambda: observer, None)


@pytest.mark.parametrize("ending", ["completed", "paused", "diverged", "interrupted"])
def test_run_end_reaches_observers_on_every_ending(tmp_path, ending):
    observer, spec = _observed(InterruptingObserver if ending == "interrupted" else EventObserver)
    tokens = ["trainer.epochs=3"] + (["rules.recorder.nan_after_steps=30"] if ending == "diverged" else [])
    trainer = new_trainer(fake_entry(RecordingRule, "recorder"), tmp_path, tokens, observers=[spec])
    if ending in ("diverged", "interrupted"):
        with pytest.raises(DivergenceError if ending == "diverged" else KeyboardInterrupt):
            trainer.fit()
    else:
        trainer.fit(stop_after=1 if ending == "paused" else None)
    assert observer.statuses == [ending]  # exactly once, with the status summary.json holds
    assert json.loads((trainer.run_dir / "summary.json").read_text())["status"] == ending


def test_a_step_is_let_go_before_the_next_forward(tmp_path):
    """The loop holds no step (its activations) while the next batch's forward runs."""
    import weakref

    trainer = new_trainer("bp", tmp_path, ["trainer.epochs=1", "data.limit_train=256"])
    forward, alive_at_forward = trainer._forward_step, []
    earlier: list = []

    def watched(*args, **kwargs):
        alive_at_forward.append(sum(ref() is not None for ref in earlier))
        step = forward(*args, **kwargs)
        earlier.append(weakref.ref(step))
        return step

    trainer._forward_step = watched
    trainer.fit()
    assert len(alive_at_forward) == 4 and alive_at_forward == [0, 0, 0, 0]


class GradsReader:
    """BP that reads the step's signals and activations after credit (after_forward_grads takes grads)."""

    Config = RuleConfig

    def __init__(self, config):
        self.seen = []

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)

    @hookimpl
    def bioscale_after_forward_grads(self, step, grads):
        self.seen.append(all(torch.is_tensor(g) for g in grads[1:]) and torch.is_tensor(step.h[1]))


@pytest.mark.parametrize("rule, kept", [("bp", False), ("fa", False), ("kp", False), ("wm", False), ("reader", True)])
def test_signals_are_kept_only_for_a_rule_that_reads_them(tmp_path, rule, kept):
    """δa_l and layer l's forward tensors are let go once the credit assignment has passed layer l,
    unless the rule's after_forward_grads takes ``grads`` (KP and WM do not: they read ``.grad`` and
    their own state); the .grad are the same either way."""
    from bioscale.credit import assign_credit, write_weight_grads
    from bioscale.testing import make_step

    if rule == "reader":
        rule = fake_entry(GradsReader, "reader")
    trainer = new_trainer(rule, tmp_path, ["data.limit_train=128"])
    assert trainer.rule_hooks.reads_step_after_credit == kept
    x, y = trainer.data.train.x[:64], trainer.data.train.y[:64]
    step = make_step(trainer, x, y)
    grads = trainer._assign_and_write(step)
    written = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}
    assert all((g is not None) == kept for g in grads[1:])
    L = trainer.model.num_layers
    assert torch.is_tensor(step.logits) and torch.is_tensor(step.h[0])
    for l in range(1, L):
        if kept:
            assert torch.is_tensor(step.h[l]) and torch.is_tensor(step.a[l])
        else:
            with pytest.raises(RuntimeError, match=rf"step\.h\[{l}\] was let go"):
                _ = step.h[l].shape
            with pytest.raises(RuntimeError, match=rf"step\.a\[{l}\] was let go"):
                step.a[l].sum()
    step = make_step(trainer, x, y)
    full = assign_credit(trainer.rule_hooks, step)
    write_weight_grads(step, full)
    for name, param in trainer.model.named_parameters():
        assert torch.equal(param.grad, written[name]), name


@pytest.mark.parametrize("model", ["mnist_fc", "lenet", "resnet20"])
def test_pre_activations_read_back_as_the_forward_formed_them(tmp_path, model):
    """``step.a[l]`` equals the op's output in the forward, bit for bit, whether the forward
    kept it (batch norm's input) or a rule's read forms it again."""
    import numpy as np
    from bioscale.config import build_run_config
    from bioscale.datasets import from_arrays
    from bioscale.testing import make_step

    side = 8 if model == "mnist_fc" else 32
    x = np.random.default_rng(0).integers(0, 255, (80, side, side, 3)).astype(np.uint8)
    data = from_arrays(build_run_config(["rule=bp"]).data, x[:64], np.arange(64) % 10, x[64:], np.arange(16) % 10)
    trainer = new_trainer("bp", tmp_path, [f"model={model}"], data=data)
    step = make_step(trainer)
    kept, h, _ = trainer.model.forward_train(step.x, keep_a=True)
    assert len(step.a) == len(kept) and step.a[0] is None
    for l in range(1, len(kept)):
        assert torch.equal(step.a[l], kept[l]), l
        assert torch.equal(step.h[l], h[l]), l


def test_pre_activations_formed_again_under_the_forwards_bf16_autocast(tmp_path):
    """A rule reading ``step.a`` outside the autocast region (after_forward_grads, observers) gets
    the bf16 forward's value, not a float32 recomputation."""
    from bioscale.step import forward_step

    trainer = new_trainer("bp", tmp_path, ["data.limit_train=64"])
    x, y = trainer.data.train.x[:16], trainer.data.train.y[:16]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        step = forward_step(trainer.model, x, y, 0, 0, frozenset({"forward"}))
        kept, _, _ = trainer.model.forward_train(x, keep_a=True)
    for l in range(1, len(kept)):
        assert step.a[l].dtype == torch.bfloat16 and torch.equal(step.a[l], kept[l]), l


def test_a_rule_reading_its_signals_after_credit_gets_them_in_training(tmp_path):
    trainer = new_trainer(fake_entry(GradsReader, "reader"), tmp_path, ["trainer.epochs=1", "data.limit_train=128"])
    trainer.fit()
    assert rule_plugin(trainer).seen == [True, True]


class ActivationLogger:
    """Reads a hidden layer's output at every step's end, as an activation logger would."""

    def __init__(self):
        self.means = []

    @hookimpl
    def bioscale_step_end(self, run, step):
        self.means.append(step.h[1].mean())


def test_an_observer_of_every_step_keeps_the_steps_tensors(tmp_path):
    logger = ActivationLogger()
    spec = ObserverSpec("logger", fake_entry(ActivationLogger, "logger"), lambda: logger, None)
    trainer = new_trainer("bp", tmp_path, ["trainer.epochs=1", "data.limit_train=128"], observers=[spec])
    assert trainer.observers.watches_steps
    assert trainer.fit()["status"] == "completed" and len(logger.means) == 2
