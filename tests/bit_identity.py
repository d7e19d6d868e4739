"""Bit-identity references (issue 32: refactors must not move numbers; issue 34: nor may nets beyond chains).

Each case trains one rule (and schedule) with its recipe, CPU, fp32, one thread, seed 0, batches of 64,
and hashes every forward parameter (SHA-256 of its bytes): the target-propagation family and BP / FA on
``mnist_fc`` (5 × FC 256, tanh) with 256 shipped digits for 2 epochs; BP, FA, DTP and SDTP parallel on
``cifar_lc`` with 128 synthetic CIFAR-shaped images for 1 epoch. The rule
settings are the ones resolved when the reference was recorded, passed back explicitly
(``REFERENCE["cases"][name]["rule_settings"]``), so a later recipe change does not move the case.

Record (only at a commit whose numbers are the reference):
``python tests/bit_identity.py tests/bit_identity_reference.json``; ``--add`` records only the cases the file lacks
(the chain cases of issue 34 were added so, at b72ee18). Floating-point results depend
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

CASES = {  # name: (rule, schedule or None, model)
    f"{rule}-{schedule}": (rule, schedule, "mnist_fc")
    for rule in ("dtp", "sdtp", "aosdtp", "ddtp", "ldrl")
    for schedule in ("parallel", "alternating")
}
# issue 34 (nets beyond chains): the chain nets train as before it, recorded at b72ee18 (the commit before 7cb564a);
# cifar_lc on a synthetic CIFAR-shaped set (synthetic_cifar), one epoch of two batches
CASES.update({f"{rule}-mnist_fc": (rule, None, "mnist_fc") for rule in ("bp", "fa")})
CASES.update({f"{rule}-cifar_lc": (rule, None, "cifar_lc") for rule in ("bp", "fa")})
CASES.update({f"{rule}-parallel-cifar_lc": (rule, "parallel", "cifar_lc") for rule in ("dtp", "sdtp")})

TOKENS = (
    "trainer.batch_size=64",
    "trainer.progress=false",
    "trainer.log_every=4",
    "trainer.threads=1",
    "trainer.device=cpu",
    "trainer.checkpoint=false",
    "seed=0",
    "observers.console.enabled=false",
)


DATA = {  # per model: the data and budget tokens
    "mnist_fc": ("data=digits", "data.limit_train=256", "trainer.epochs=2"),
    "cifar_lc": ("data=cifar10", "data.limit_train=128", "trainer.epochs=1"),
}


def synthetic_cifar(root: Path) -> Path:
    """``root/cifar10.npz``: 128 training and 64 test images of CIFAR-10's shape (uint8 HWC), fixed bytes."""
    import numpy as np

    rng = np.random.RandomState(0)
    arrays = {
        "x_train": rng.randint(0, 256, (128, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.randint(0, 10, 128).astype(np.int64),
        "x_test": rng.randint(0, 256, (64, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.randint(0, 10, 64).astype(np.int64),
    }
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "cifar10.npz", **arrays)
    return root


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

    rule, schedule, model = CASES[name]
    if rule_settings:
        settings = _flat_tokens(f"rules.{rule}", rule_settings)
    else:
        settings = [f"rules.{rule}.schedule={schedule}"] if schedule else []
    data = [*DATA[model], f"model={model}"]
    if model == "cifar_lc":
        data.append(f"data.root={synthetic_cifar(Path(out_dir) / 'data')}")
    threads = torch.get_num_threads()
    try:
        cfg = build_run_config([*TOKENS, *data, f"rule={rule}", f"output_dir={out_dir}", *settings])
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


def record(path: Path, only_missing: bool = False) -> None:
    """Write every case's reference to ``path``; ``only_missing``: add the cases it lacks (same machine only)."""
    doc = json.loads(path.read_text()) if only_missing else {"machine": machine(), "cases": {}}
    if doc["machine"] != machine():
        raise SystemExit(f"{path} was recorded on {doc['machine']}, this is {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            if name not in doc["cases"]:
                doc["cases"][name] = train(name, Path(tmp) / name)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    paths = [a for a in sys.argv[1:] if a != "--add"]
    if len(paths) != 1:
        raise SystemExit("usage: python tests/bit_identity.py [--add] REFERENCE.json")
    record(Path(paths[0]), only_missing="--add" in sys.argv[1:])
