"""The kit's check of a rule's ``supports`` declaration: on a tiny net with every structure the
rule declares it trains and resumes exactly (ARCHITECTURE.md, "The network"; a net with a
structure it does not declare is refused by the core at config)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..config.structures import supported
from ..discovery import PluginEntry, load_rule_class
from .harness import model_weights, new_trainer, resume_trainer


def net_tokens(structures: frozenset) -> list[str]:
    """``model.*`` tokens of a tiny net over the 8x8 digits with exactly ``structures``."""
    pool, norm, skip = ("pooling" in structures, "batchnorm" in structures, "skip" in structures)
    extra = ", norm: true, bias: false" if norm else ""
    blocks = [f"{{type: conv, channels: 4, kernel: 3{extra}{', pool: max' if pool else ''}}}"]
    if skip:
        blocks += [
            f"{{type: residual, channels: 4, kernel: 3{extra}}}",
            f"{{type: residual, channels: 6, kernel: 3, stride: 2, shortcut: pad{extra}}}",
            f"{{type: residual, channels: 8, kernel: 3, stride: 2, shortcut: projection{extra}}}",
        ]
    else:
        blocks.append(f"{{type: conv, channels: 6, kernel: 3{extra}{', pool: avg' if pool else ''}}}")
    return [f"model.blocks=[{', '.join(blocks)}]", "model.widths=[16]"]


def check_structures(rule, out_dir: Path, tokens) -> None:
    """On a net with every structure ``rule`` declares: 2 epochs change every weight, and a run
    stopped after one and resumed ends with the straight run's weights (and batch statistics)."""
    declared = _effective_support(rule, tokens)
    if not declared:
        return
    net = [*tokens, *net_tokens(declared)]
    straight = new_trainer(rule, out_dir / "structures", net)
    before = model_weights(straight)
    straight.fit()
    after = model_weights(straight)
    for name in before:
        if not name.endswith(("running_mean", "running_var")):
            assert not torch.equal(before[name], after[name]), (
                f"{name} did not change in 2 epochs on {sorted(declared)}"
            )
    half = new_trainer(rule, out_dir / "structures_resumed", net)
    half.fit(stop_after=1)
    resumed = resume_trainer(half.run_dir, rule=None if isinstance(rule, str) else rule)
    resumed.fit()
    for name, value in model_weights(resumed).items():
        assert torch.equal(value, after[name]), f"resume is not exact on {sorted(declared)}: {name} differs"


def _rule_class(rule) -> type:
    """The class of ``rule``: an installed name, a PluginEntry or the class itself."""
    if isinstance(rule, str):
        return load_rule_class(rule)[1]
    if isinstance(rule, PluginEntry):
        return rule.load()
    return rule


def _effective_support(rule, tokens) -> frozenset:
    """What ``rule`` declares, narrowed for a composite rule (``mix``) to what every rule it uses
    with ``tokens`` declares (the core refuses the rest)."""
    declared = supported(_rule_class(rule))
    if isinstance(rule, str):
        from ..config import build_run_config, resolve_rule

        for companion in resolve_rule(build_run_config([*tokens, f"rule={rule}"])).companions.values():
            declared &= supported(companion.cls)
    return declared
