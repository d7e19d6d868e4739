"""``bioscale.provenance``: source hashes that follow the files, git state only for a real
checkout of the sources, the CPU's model name, and fingerprints that say what changed."""

from __future__ import annotations

import re
import subprocess
import sys

from bioscale import provenance
from bioscale.provenance import (
    code_changes,
    code_fingerprint,
    core_fingerprint,
    cpu_model,
    git_state,
    hash_files,
    package_files,
)

HEX64 = re.compile(r"[0-9a-f]{64}")


def _package(root, name="fakepkg", body="x = 1\n"):
    pkg = root / name
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(body)
    (pkg / "sub" / "mod.py").write_text("y = 2\n")
    (pkg / "sub" / "notes.txt").write_text("not source")
    return pkg


def test_a_package_hash_follows_its_source_files_only(tmp_path, monkeypatch):
    pkg = _package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    files = package_files("fakepkg.sub.mod")
    assert sorted(name for name, _ in files) == ["fakepkg/__init__.py", "fakepkg/sub/mod.py"]
    before = hash_files(files)
    (pkg / "sub" / "notes.txt").write_text("changed, but not source")
    assert hash_files(package_files("fakepkg")) == before
    (pkg / "sub" / "mod.py").write_text("y = 3\n")
    assert hash_files(package_files("fakepkg")) != before


def test_sources_outside_a_git_checkout_have_no_commit(tmp_path):
    pkg = _package(tmp_path)
    assert git_state([pkg]) == {"commit": None, "dirty": None}


def test_a_checkout_gives_its_commit_and_dirty_flag(tmp_path):
    pkg = _package(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_state([pkg]) == {"commit": head, "dirty": False}
    (pkg / "sub" / "mod.py").write_text("y = 3\n")
    assert git_state([pkg]) == {"commit": head, "dirty": True}


def test_without_git_on_the_path_the_hash_is_still_taken(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable
    provenance.core_fingerprint.cache_clear()
    try:
        fingerprint = core_fingerprint()
    finally:
        provenance.core_fingerprint.cache_clear()
    assert fingerprint["commit"] is None and fingerprint["dirty"] is None
    assert HEX64.fullmatch(fingerprint["source_hash"])


def test_code_fingerprint_names_each_rule_and_what_changed():
    now = code_fingerprint(["bp", "fa"])
    assert set(now["rules"]) == {"bp", "fa"}
    assert now["rules"]["fa"]["distribution"] == "bioscale-fa"
    assert HEX64.fullmatch(now["rules"]["bp"]["source_hash"])
    assert now["rules"]["bp"]["source_hash"] != now["rules"]["fa"]["source_hash"]
    assert code_changes(now, now) == []
    old = {"bioscale": dict(now["bioscale"]), "rules": {k: dict(v) for k, v in now["rules"].items()}}
    old["rules"]["fa"]["source_hash"] = "0" * 64
    old["bioscale"]["commit"] = "another label"  # labels do not count, sources do
    assert code_changes(old, now) == ["rule fa sources"]
    old["bioscale"]["source_hash"] = "0" * 64
    assert code_changes(old, now) == ["bioscale sources", "rule fa sources"]
    assert code_changes(None, now) == ["no code fingerprint recorded"]


def test_cpu_model_reads_the_model_name(monkeypatch):
    monkeypatch.setattr(provenance, "cpuinfo_field", lambda key: "Some CPU 9000" if key == "model name" else None)
    assert cpu_model() == "Some CPU 9000"
    monkeypatch.setattr(provenance, "cpuinfo_field", lambda key: None)
    monkeypatch.setattr(provenance.platform, "processor", lambda: "")
    assert cpu_model() == provenance.platform.machine()


def test_the_core_hash_is_the_same_in_a_fresh_process():
    code = "from bioscale.provenance import core_fingerprint; print(core_fingerprint()['source_hash'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == core_fingerprint()["source_hash"]


def test_a_plugin_without_importable_sources_has_no_hash():
    entry = type("Entry", (), {"distribution": "made-at-run-time", "version": "1"})()
    cls = type("Made", (), {"__module__": "no_such_module_anywhere"})
    assert provenance.plugin_fingerprint(entry, cls) == {
        "distribution": "made-at-run-time",
        "version": "1",
        "source_hash": None,
    }


def test_a_cpu_run_records_that_it_set_glibcs_allocator_thresholds(tmp_path):
    """core/host_malloc.py: on Linux with glibc the thresholds are set once and the run says so."""
    import sys

    from bioscale.host_malloc import tune_for_training
    from bioscale.testing import new_trainer

    trainer = new_trainer("bp", tmp_path, ["trainer.epochs=1"])
    expected = "tuned" if sys.platform.startswith("linux") and tune_for_training() else "system"
    assert trainer.run_info()["host_malloc"] == expected == trainer.host_malloc
