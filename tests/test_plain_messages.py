"""Mistakes met from outside get a plain sentence and exit status 2: no argparse riddle, no
PyTorch or NumPy advice, no terminal colour codes."""

from __future__ import annotations

import pytest
import torch
from bioscale import RuleConfig, hookimpl
from bioscale.checkpoint import UnloadableState, check_loadable
from bioscale.errors import PluginFailure
from bioscale.testing import fake_entry, new_trainer
from conftest import run_cli, save_signed


@pytest.mark.parametrize("args", [[], ["trainer.epochs=3"]], ids=["nothing", "only_overrides"])
def test_resume_without_a_run_folder_says_so(args):
    result = run_cli("resume", *args)
    assert result.returncode == 2
    assert "resume needs a run folder" in result.stderr
    assert "bioscale resume RUN_FOLDER [trainer.key=value ...]" in result.stderr
    assert "required" not in result.stderr and "Traceback" not in result.stderr


class Opaque:
    """A Python object that pickle saves but a weights-only load refuses."""


class OpaqueStateRule:
    """BP (the default credit) that keeps an arbitrary Python object as its state."""

    Config = RuleConfig

    def __init__(self, config):
        self.config = config

    @hookimpl
    def bioscale_feedback_signal(self, step, layer, grad_above):
        return step.layer_vjp(layer, grad_above)

    @hookimpl
    def bioscale_state_dict(self):
        return {"memory": [1, {"opaque": Opaque()}]}


def _assert_plain(text: str) -> None:
    assert "weights_only" not in text and "\x1b[" not in text and "add_safe_globals" not in text
    assert "Traceback" not in text and len(text) < 600, text


def test_a_checkpoint_holding_a_pickled_object_is_refused_plainly(tmp_path):
    trainer = new_trainer("bp", tmp_path, ["trainer.epochs=3"])
    trainer.fit(stop_after=1)
    path = trainer.run_dir / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    save_signed({**state, "rule": {"opaque": Opaque()}}, path)  # a checksum that matches: only the type is wrong
    before = {p.name: p.read_bytes() for p in trainer.run_dir.iterdir() if p.is_file()}
    result = run_cli("resume", trainer.run_dir)
    assert result.returncode == 2
    assert f"checkpoint {path} cannot be loaded: it holds a test_plain_messages.Opaque object" in result.stderr
    assert "only tensors, numbers, strings, lists and dicts" in result.stderr
    _assert_plain(result.stderr)
    assert {p.name: p.read_bytes() for p in trainer.run_dir.iterdir() if p.is_file()} == before


def test_rule_state_a_checkpoint_cannot_hold_is_named_plainly_at_save_time(tmp_path):
    entry = fake_entry(OpaqueStateRule, "opaque", "bioscale-opaque", "0.2")
    trainer = new_trainer(entry, tmp_path, ["trainer.epochs=1"])
    with pytest.raises(PluginFailure) as info:
        trainer.fit()
    message = str(info.value)
    assert "rule 'opaque' (bioscale-opaque 0.2)" in message and "test_plain_messages.Opaque object" in message
    _assert_plain(message)
    assert not (trainer.run_dir / "checkpoint.pt").exists()


def test_check_loadable_names_the_culprit_and_where_it_sits():
    with pytest.raises(UnloadableState, match=r"a test_plain_messages.Opaque object at \['memory'\]\[1\]\['opaque'\]"):
        check_loadable(OpaqueStateRule(None).bioscale_state_dict())
    with pytest.raises(UnloadableState, match="cannot be saved"):
        check_loadable({"f": lambda x: x})
    check_loadable({"w": torch.ones(2), "step": 3, "names": ["a"], "nested": {"x": 1.5}})
