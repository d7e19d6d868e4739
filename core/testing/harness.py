"""Small, fast runs for tests: a rule class (installed or not), the shipped digits, a tiny net."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..config.resolve import build_run_config, resolve_rule
from ..config.saved import load_run_config
from ..discovery import RULES_GROUP, PluginEntry, find_entries
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


OLD_SECTION = "test_rule"  # the name the kit gave every rule class before it used the class's own


def renamed_section_tokens(tokens, name: str) -> list[str]:
    """``tokens`` with the kit's old section name ``rules.test_rule.`` replaced by ``rules.<name>.``
    (with a DeprecationWarning naming the new one), for a rule class that runs as ``name``."""
    old = f"rules.{OLD_SECTION}."
    if name == OLD_SECTION or not any(t.startswith(old) for t in tokens):
        return list(tokens)
    warnings.warn(
        f"the kit runs a rule class under its own name now: write rules.{name}.<key> instead of "
        f"{old}<key> (accepted for now)",
        DeprecationWarning,
        stacklevel=3,
    )
    return [f"rules.{name}.{t[len(old) :]}" if t.startswith(old) else t for t in tokens]


def fake_entry(
    cls, name: str | None = None, distribution: str = "test-distribution", version: str = "0.0"
) -> PluginEntry:
    """A PluginEntry for a class that is not installed (as if a distribution provided it),
    named ``name`` or :func:`rule_name_of` the class."""
    name = name or rule_name_of(cls)
    entry = PluginEntry(
        name, RULES_GROUP, f"{cls.__module__}:{cls.__qualname__}", distribution, version, entry_point=None
    )
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
    """A new run of ``rule`` (installed name, class or PluginEntry) on the tiny default setup.
    A class's settings are ``rules.<rule_name_of(class)>.<key>`` (``rules.test_rule.<key>``, the
    kit's old name, is accepted with a DeprecationWarning)."""
    rule_tokens, rules = _rule_tokens(rule)
    if not isinstance(rule, str):
        tokens = renamed_section_tokens(tokens, rule_tokens[0].split("=", 1)[1])
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


def make_step(trainer: Trainer, x=None, y=None, phases=("forward",)):
    """A :class:`bioscale.step.StepContext` for ``trainer``'s model on ``x`` ``(B, *in_shape)``,
    ``y`` ``(B,)`` (default: its first 32 training examples), forward pass and task-loss
    gradient filled in, as a rule's hooks see it in training: for property tests of a rule's
    hooks without a training loop."""
    from ..step import forward_step

    if x is None:
        batch = next(iter(trainer.data.train.batches(32)))
        x, y = batch
    return forward_step(
        trainer.model, x, y, trainer.epoch, trainer.global_step, frozenset(phases), trainer.label_smoothing
    )


class Harness:
    """The kit bound to one folder (what the ``bioscale_harness`` fixture returns)."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)

    def new_trainer(self, rule, tokens=(), observers=(), data=None) -> Trainer:
        return new_trainer(rule, self.out_dir, tokens, observers, data)

    def resume_trainer(self, run_dir, tokens=(), rule=None, observers=()) -> Trainer:
        return resume_trainer(run_dir, tokens, rule, observers)

    def check_rule_contract(self, rule, tokens=(), **checks) -> dict:
        from .contract import check_rule_contract

        return check_rule_contract(rule, self.out_dir, tokens, **checks)

    def make_step(self, trainer: Trainer, x=None, y=None, phases=("forward",)):
        return make_step(trainer, x, y, phases)
