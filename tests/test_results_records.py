"""results/: the plain commands reproduce the recorded runs' settings, links resolve, the tree stays small."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from bioscale.config import build_run_config, resolve_rule
from bioscale.config.optimizer import without_added_defaults
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
NEWER = sorted(p.parent for p in RESULTS.glob("newer_rules/*_*ep/*/config.yaml"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


# settings a rule gained after these runs were recorded, at the value that gives the behaviour it had then
# (ldrl's inverses were always Glorot-initialised; tests/test_bit_identity.py pins its training)
ADDED_SINCE = {"ldrl": {"inverse_init": "glorot"}}


@pytest.mark.parametrize(
    "run", [r for r in NEWER if "-mix-" not in r.name], ids=lambda p: p.name.split("-s0-")[-1] + "@" + p.parent.name
)
def test_the_plain_command_resolves_to_the_recorded_newer_rule_settings(run):
    """``bioscale train rule=R model=M`` (the rule's recipe) gives the rule section the README's run used."""
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    rule, preset = recorded["rule"], recorded["model"]["preset"]
    variant = recorded["rules"][rule].get("variant")
    extra = [f"rules.{rule}.variant={variant}"] if variant not in (None, "usf") else []
    spec = resolve_rule(build_run_config([f"rule={rule}", f"model={preset}", *extra]))
    expected = {**ADDED_SINCE.get(rule, {}), **recorded["rules"][rule]}
    # optimiser settings added since (SGD, multistep, warm-up) are left out while at their defaults
    now = without_added_defaults(spec.config, OmegaConf.to_container(spec.config, enum_to_str=True))
    assert now == expected


def _tracked() -> list[str] | None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "results"], capture_output=True, text=True)
    return done.stdout.split() if done.returncode == 0 else None


def test_results_keep_answers_not_artefacts():
    files = _tracked()
    if files is None:
        pytest.skip("not a git checkout")
    assert len(files) < 300
    assert not [f for f in files if f.endswith((".log", ".db", ".pt"))]
    runs = {Path(f).parent for f in files if f.endswith("summary.json")}
    extra = [
        f
        for f in files
        if Path(f).parent in runs and Path(f).name not in ("config.yaml", "metrics.jsonl", "summary.json")
    ]
    assert not extra  # a kept run folder holds its config, metrics and summary only


def test_every_link_in_results_resolves():
    broken = []
    for md in sorted(RESULTS.rglob("*.md")):
        for target in LINK.findall(md.read_text()):
            path = target.split("#")[0]
            if path and not target.startswith(("http:", "https:")) and not (md.parent / path).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken
