"""sweep.png: each searched setting on the axis its distribution calls for (log for log-uniform,
categories for choices, whole numbers for ints), the objective in plain percent, a title naming
the study, rule and metric."""

from __future__ import annotations

import optuna
import pytest
from bioscale.plotting import draw_sweep, plot_sweep
from bioscale.plotting.sweep import parse_declared, rule_of
from bioscale.search.report import write_report
from bioscale.search.space import parse_spec
from matplotlib.backends.backend_agg import FigureCanvasAgg

SPECS = {
    "rules.dtp.optimizer.lr": "loguniform:1e-5:3e-4",
    "rules.dtp.optimizer.beta2": "choice:0.99,0.999",
    "rules.dtp.optimizer.eps": "choice:1e-4,1e-6,1e-8",
    "rules.dtp.alpha": "uniform:0.01:0.2",
    "rules.dtp.schedule": "choice:parallel,alternating",
    "trainer.batch_size": "int:16:128",
}
COMMAND = "bioscale sweep rule=dtp data=digits trainer.epochs=2 sweep.trials=6"


def declared() -> dict[str, str]:
    """The space as ``bioscale sweep`` records it in the study and the report (``kind:(values)``)."""
    return {k: f"{p.kind}:{p.values}" for k, p in ((k, parse_spec(k, v)) for k, v in SPECS.items())}


def trial_rows(n: int = 6) -> list[dict]:
    rows = []
    for i in range(n):
        settings = {
            "rules.dtp.optimizer.lr": 1e-5 * 3 ** (i % 4),
            "rules.dtp.optimizer.beta2": (0.99, 0.999)[i % 2],
            "rules.dtp.optimizer.eps": (1e-4, 1e-6, 1e-8)[i % 3],
            "rules.dtp.alpha": 0.02 + 0.03 * i,
            "rules.dtp.schedule": ("parallel", "alternating")[i % 2],
            "trainer.batch_size": 16 + 20 * i,
        }
        rows.append({"trial": i, "status": "complete", "settings": settings, "best_val_error": 9.0 - i})
    rows.append({"trial": n, "status": "pruned", "settings": rows[0]["settings"], "best_val_error": None})
    return rows


def panels(fig) -> dict:
    """Short setting name → its axes (the x label starts with the key less ``rules.<rule>.``)."""
    FigureCanvasAgg(fig).draw()
    return {ax.get_xlabel().split()[0]: ax for ax in fig.axes if ax.axison}


def test_each_setting_is_drawn_on_the_axis_its_distribution_calls_for():
    axes = panels(draw_sweep(trial_rows(), declared(), "sweep-dtp-digits-digits_fc", COMMAND))
    assert set(axes) == {"optimizer.lr", "optimizer.beta2", "optimizer.eps", "alpha", "schedule", "trainer.batch_size"}
    assert axes["optimizer.lr"].get_xscale() == "log"
    assert axes["optimizer.lr"].get_xlim()[0] < 1e-5 and axes["optimizer.lr"].get_xlim()[1] > 3e-4  # the whole range
    assert axes["alpha"].get_xscale() == "linear"
    labels = lambda ax: [t.get_text() for t in ax.get_xticklabels()]  # noqa: E731
    assert labels(axes["optimizer.beta2"]) == ["0.99", "0.999"]
    assert labels(axes["optimizer.eps"]) == ["1e-08", "1e-06", "0.0001"]  # numbers ascending, evenly spaced
    assert labels(axes["schedule"]) == ["parallel", "alternating"]  # words as declared
    ticks = [t for t in axes["trainer.batch_size"].get_xticks() if 16 <= t <= 128]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert all("(choice)" in axes[k].get_xlabel() for k in ("optimizer.beta2", "optimizer.eps", "schedule"))


def test_the_title_names_study_rule_and_metric_and_the_best_trial_is_starred():
    fig = draw_sweep(trial_rows(), declared(), "sweep-dtp-digits-digits_fc", COMMAND)
    title = fig.get_suptitle()
    assert "sweep-dtp-digits-digits_fc" in title and "rule dtp" in title and "best validation error" in title
    assert "6 complete, 1 pruned" in title
    ax = panels(fig)["alpha"]
    star = ax.collections[-1].get_offsets()
    assert star.shape == (1, 2) and star[0][0] == pytest.approx(0.02 + 0.03 * 5) and star[0][1] == 4.0
    assert all(t.get_text().endswith("%") for t in ax.get_yticklabels() if t.get_text())


def test_no_completed_trial_draws_nothing(tmp_path):
    rows = [r | {"status": "pruned", "best_val_error": None} for r in trial_rows()]
    assert draw_sweep(rows, declared(), "s", COMMAND) is None
    assert plot_sweep(tmp_path / "sweep.png", rows, declared(), "s", COMMAND) is None
    assert not (tmp_path / "sweep.png").exists()


def test_declared_entries_parse_and_odd_ones_fall_back():
    assert parse_declared(declared()["rules.dtp.optimizer.eps"]) == ("choice", (1e-4, 1e-6, 1e-8))
    assert parse_declared("loguniform:(1e-05, 0.0003)") == ("loguniform", (1e-5, 3e-4))
    assert parse_declared("gauss:(1, 2)") == ("", ()) and parse_declared("choice:[oops") == ("", ())
    assert rule_of(["rules.kp.lr"], "bioscale sweep rule=kp") == "kp"
    assert rule_of(["rules.kp.lr", "trainer.batch_size"], "") == "kp"


def test_write_report_draws_the_png_from_a_study(tmp_path):
    study = optuna.create_study(study_name="s1")
    dist = optuna.distributions.FloatDistribution(1e-5, 3e-4, log=True)
    for i, lr in enumerate((1e-5, 1e-4, 2e-4)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"rules.bp.optimizer.lr": lr},
                distributions={"rules.bp.optimizer.lr": dist},
                value=5.0 - i,
                user_attrs={"tokens": ["rule=bp"]},
            )
        )
    meta = {
        "command": "bioscale sweep rule=bp",
        "commit": "abc",
        "machine": "m",
        "started": "now",
        "validation": "100",
        "sampler": "random",
        "pruner": "none",
        "space": {"rules.bp.optimizer.lr": "loguniform:(1e-05, 0.0003)"},
    }
    write_report(tmp_path, study, meta)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
