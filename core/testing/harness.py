"""Small, fast runs for tests: a rule class (installed or not), the shipped digits, a tiny net."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config.saved import load_run_config
from ..config.resolve import ObserverSpec, build_run_config, resolve_rule
from ..discovery import OBSERVERS_GROUP, RULES_GROUP, PluginEntry, find_entries
from ..markers import hookimpl
from ..plugin_host import rule_key
from ..trainer import Trainer

TINY_TOKENS = (
    "data=digits",
    "model.widths=[32,32]",
    "trainer.batch_size=64",
    "trainer.epochs=2",
    "trainer.progress=false",
    "trainer.log_every=5",
)


def rule_name_of(cls) -> str:
    """The name a rule class not installed runs under in the kit: its ``name`` attribute, else
    its class name in lower case (so its settings are ``rules.<that>.<key>``)."""
    return getattr(cls, "name", None) or cls.__name__.lower()


def fake_entry(cls, name: str | None = None, distribution: str = "test-distribution", version: str = "0.0") -> PluginEntry:
    """A PluginEntry for a class that is not installed (as if a distribution provided it),
    named ``name`` or :func:`rule_name_of` the class."""
    name = name or rule_name_of(cls)
    entry = PluginEntry(name, RULES_GROUP, f"{cls.__module__}:{cls.__qualname__}", distribution, version, entry_point=None)
    entry._loaded = cls
    return entry


def rule_registry(*extra: PluginEntry) -> dict[str, PluginEntry]:
    """The installed rules (first distribution of each name) plus ``extra`` entries."""
    rules = {name: entries[0] for name, entries in find_entries(RULES_GROUP).items()}
    rules.update({e.name: e for e in extra})
    return rules


def _rule_tokens(rule) -> tuple[list[str], dict]:
    if isinstance(rule, str):
        return [f"rule={rule}"], rule_registry()
    entry = rule if isinstance(rule, PluginEntry) else fake_entry(rule)
    return [f"rule={entry.name}"], rule_registry(entry)


def new_trainer(rule, out_dir, tokens=(), observers=(), data=None) -> Trainer:
    """A new run of ``rule`` (installed name, class or PluginEntry) on the tiny default setup."""
    rule_tokens, rules = _rule_tokens(rule)
    cfg = build_run_config([*TINY_TOKENS, f"output_dir={out_dir}", *rule_tokens, *tokens])
    return Trainer.create(cfg, resolve_rule(cfg, rules), list(observers), data=data)


def resume_trainer(run_dir, tokens=(), rule=None, observers=()) -> Trainer:
    """Resume ``run_dir`` the way ``bioscale resume`` does (``rule`` only if not installed)."""
    rules = _rule_tokens(rule)[1] if rule is not None else None
    cfg, spec = load_run_config(Path(run_dir), list(tokens), rules)
    return Trainer.resume(Path(run_dir), cfg, spec, list(observers))


def rule_plugin(trainer: Trainer):
    """The rule instance ``trainer`` registered (e.g. to read a TP rule's inverses)."""
    return trainer.plugin_manager.get_plugin(rule_key(trainer.rule_spec.name))


def model_weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def check_rule_contract(rule, out_dir, tokens=()) -> dict:
    """Assert what every rule must do on a tiny run; returns the straight run's summary.

    1. two epochs train without a contract error, every layer's weights change and the
       training loss goes down;
    2. the rule state survives a checkpoint: a 2-epoch run stopped after 1 epoch and
       resumed gives exactly the weights of 2 straight epochs (on the CPU);
    3. gradient probes change nothing: the same run with a probing observer (as the
       diagnostics observer does, ``run.probe_gradients`` and ``run.inverse_error`` after every
       epoch) gives exactly the same weights.
    """
    out_dir = Path(out_dir)
    straight = new_trainer(rule, out_dir / "straight", tokens)
    before = model_weights(straight)
    summary = straight.fit()
    after = model_weights(straight)
    for name in before:
        assert not torch.equal(before[name], after[name]), f"{name} did not change in 2 epochs"
    losses = [m["train_loss"] for m in straight.history if "train_loss" in m]
    assert len(losses) >= 2 and losses[-1] < losses[0], f"training loss did not go down: {losses}"

    half = new_trainer(rule, out_dir / "resumed", tokens)
    half.fit(stop_after=1)
    assert half.epoch == 1
    resumed = resume_trainer(half.run_dir, rule=None if isinstance(rule, str) else rule)
    resumed.fit()
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, after[name]), f"resume is not exact: {name} differs from the straight run"

    probing = ObserverSpec("kit_probe", PluginEntry("kit_probe", OBSERVERS_GROUP, f"{__name__}:ProbingObserver",
                                                    "bioscale", "kit", entry_point=None), ProbingObserver, None)
    probed = new_trainer(rule, out_dir / "probed", tokens, observers=[probing])
    probed.fit()
    assert any("kit_probes" in m for m in probed.history), "the probing observer did not run"
    for name, value in model_weights(probed).items():
        assert torch.equal(value, after[name]), (
            f"training changes with gradient probes on (as an observer makes them): {name} differs. Probes call the credit "
            f"hooks with step.is_probe True; they must not change rule state there (see bioscale.hookspecs)")
    return summary


class ProbingObserver:
    """Probes a run as the diagnostics observer does, after every epoch: the rule's gradients on a
    fixed batch (``run.probe_gradients``) and its inverse errors (``run.inverse_error``)."""

    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        probe = run.probe_gradients(batch_size=32)
        run.inverse_error(probe["step"])
        return {"kit_probes": len(probe["names"])}


def make_step(trainer: Trainer, x=None, y=None, phases=("forward",)):
    """A :class:`bioscale.step.StepContext` for ``trainer``'s model on ``x`` ``(B, *in_shape)``,
    ``y`` ``(B,)`` (default: its first 32 training examples), forward pass and task-loss
    gradient filled in, as a rule's hooks see it in training: for property tests of a rule's
    hooks without a training loop."""
    from ..step import forward_step

    if x is None:
        batch = next(iter(trainer.data.train.batches(32)))
        x, y = batch
    return forward_step(trainer.model, x, y, trainer.epoch, trainer.global_step, frozenset(phases), trainer.label_smoothing)


class Harness:
    """The kit bound to one folder (what the ``bioscale_harness`` fixture returns)."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)

    def new_trainer(self, rule, tokens=(), observers=(), data=None) -> Trainer:
        return new_trainer(rule, self.out_dir, tokens, observers, data)

    def resume_trainer(self, run_dir, tokens=(), rule=None, observers=()) -> Trainer:
        return resume_trainer(run_dir, tokens, rule, observers)

    def check_rule_contract(self, rule, tokens=()) -> dict:
        return check_rule_contract(rule, self.out_dir, tokens)

    def make_step(self, trainer: Trainer, x=None, y=None, phases=("forward",)):
        return make_step(trainer, x, y, phases)
