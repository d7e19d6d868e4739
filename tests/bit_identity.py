"""Bit-identity references of the target-propagation family (issue 32: refactors must not move numbers).

Each case trains one rule (and schedule) on an ``mnist_fc``-shaped net (``model=mnist_fc``: 5 × FC
256, tanh, the rule's ``mnist_fc`` recipe) on 256 shipped digits, 2 epochs of batches of 64, CPU,
fp32, one thread, seed 0, and hashes every forward parameter (SHA-256 of its bytes). The rule
settings are the ones resolved when the reference was recorded, passed back explicitly
(``REFERENCE["cases"][name]["rule_settings"]``), so a later recipe change does not move the case.

Record (only at a commit whose numbers are the reference):
``python tests/bit_identity.py tests/bit_identity_reference.json``. Floating-point results depend
on the CPU and torch build, so the reference also records the machine; elsewhere the test skips.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

CASES = {
    f"{rule}-{schedule}": (rule, schedule)
    for rule in ("dtp", "sdtp", "aosdtp", "ddtp", "ldrl")
    for schedule in ("parallel", "alternating")
}

TOKENS = (
    "data=digits",
    "data.limit_train=256",
    "model=mnist_fc",
    "trainer.batch_size=64",
    "trainer.epochs=2",
    "trainer.progress=false",
    "trainer.log_every=4",
    "trainer.threads=1",
    "trainer.device=cpu",
    "trainer.checkpoint=false",
    "seed=0",
    "observers.console.enabled=false",
)


def machine() -> dict:
    """What the floating-point results depend on besides the code."""
    from bioscale.architectures import activations

    return {
        "torch": torch.__version__,
        "cpu": activations.cpuinfo_field("model name") or platform.processor(),
        "cpu_tanh": activations.CPU_TANH,
    }


def _flat_tokens(prefix: str, node) -> list[str]:
    """``prefix.key=value`` tokens for every leaf of a plain nested dict."""
    if isinstance(node, dict):
        return [t for k, v in node.items() for t in _flat_tokens(f"{prefix}.{k}", v)]
    return [f"{prefix}={'null' if node is None else node}"]


def train(name: str, out_dir, rule_settings: dict | None = None) -> dict:
    """Train case ``name``; returns ``{"rule_settings": resolved rules.<rule> section, "params": {name: sha256}}``.
    ``rule_settings`` (a recorded section) is passed back as explicit tokens."""
    from bioscale.config import resolve_observers
    from bioscale.config.resolve import build_run_config, resolve_rule
    from bioscale.trainer import Trainer

    rule, schedule = CASES[name]
    settings = _flat_tokens(f"rules.{rule}", rule_settings) if rule_settings else [f"rules.{rule}.schedule={schedule}"]
    threads = torch.get_num_threads()
    try:
        cfg = build_run_config([*TOKENS, f"rule={rule}", f"output_dir={out_dir}", *settings])
        spec = resolve_rule(cfg)
        trainer = Trainer.create(cfg, spec, resolve_observers(cfg))
        trainer.fit()
    finally:
        torch.set_num_threads(threads)
    params = {
        k: hashlib.sha256(v.detach().contiguous().numpy().tobytes()).hexdigest()
        for k, v in trainer.model.state_dict().items()
    }
    settings_now = OmegaConf.to_container(spec.config, enum_to_str=True)
    if rule_settings:
        defaults = OmegaConf.to_container(OmegaConf.structured(spec.cls.Config), enum_to_str=True)
        settings_now = _as_recorded(settings_now, rule_settings, defaults)
    return {"rule_settings": settings_now, "params": params}


def _as_recorded(now: dict, recorded: dict, defaults: dict) -> dict:
    """``now`` without the keys of nested sections that ``recorded`` lacks and that hold their
    schema defaults: settings added since the reference (e.g. ``optimizer.momentum``), which
    the reference's training ran without. A changed one stays, so the comparison sees it."""
    out = {}
    for key, value in now.items():
        if isinstance(value, dict) and isinstance(recorded.get(key), dict):
            value = _as_recorded(value, recorded[key], defaults.get(key) or {})
        elif key not in recorded and key in defaults and defaults[key] == value:
            continue
        out[key] = value
    return out


def record(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cases = {name: train(name, Path(tmp) / name) for name in CASES}
    path.write_text(json.dumps({"machine": machine(), "cases": cases}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    record(Path(sys.argv[1]))
