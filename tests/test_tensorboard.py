"""The tensorboard observer writes each epoch's metrics, the diagnostics' angles included."""

from __future__ import annotations

import pytest
from bioscale.testing import new_trainer

pytest.importorskip("tensorboard")


def test_every_epoch_metric_and_angle_reaches_tensorboard(tmp_path):
    from bioscale.config import build_run_config, resolve_observers
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    names = [o.name for o in resolve_observers(build_run_config([]))]
    assert names.index("diagnostics") < names.index("tensorboard")  # so it sees the angles
    trainer = new_trainer(
        "fa",
        tmp_path,
        ["trainer.epochs=2"],
        observers=resolve_observers(build_run_config(["observers.console.enabled=false"])),
    )
    trainer.fit()
    events = EventAccumulator(str(trainer.run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"test_error", "train_loss", "lr", "angle_to_bp/2", "angle_to_bp/3"} <= tags
    test_error = [e.value for e in events.Scalars("test_error")]
    assert [e.step for e in events.Scalars("test_error")] == [1, 2]
    assert test_error == pytest.approx([m["test_error"] for m in trainer.history])
    angles = [e.value for e in events.Scalars("angle_to_bp/2")]
    assert angles == pytest.approx([m["angle_to_bp"]["2"] for m in trainer.history])


def test_observers_see_the_extras_of_those_before_them(tmp_path):
    from bioscale import hookimpl
    from bioscale.config.resolve import ObserverSpec
    from bioscale.testing import fake_entry

    class First:
        @hookimpl
        def bioscale_epoch_end(self, run, epoch, metrics):
            return {"first": epoch}

    class Second:
        seen = []

        @hookimpl
        def bioscale_epoch_end(self, run, epoch, metrics):
            Second.seen.append(metrics.get("first"))

    specs = [ObserverSpec(n, fake_entry(c, n), c, None) for n, c in (("a", First), ("b", Second))]
    new_trainer("bp", tmp_path, ["trainer.epochs=2"], observers=specs).fit()
    assert Second.seen == [1, 2]
