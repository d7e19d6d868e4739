"""Learning-curve figures (``compare``'s comparison.png, ``reproduce``'s curves_<net>.png): one
distinct style per rule for any number of rules, a legend beside the panels, plain percent ticks,
titles from what the runs recorded."""

from __future__ import annotations

import json
import re

import pytest
from bioscale.plotting import draw_curves, plot_curves, runs_title
from bioscale.plotting.axes import error_axis
from bioscale.plotting.styles import label_styles
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

PLAIN_PERCENT = re.compile(r"^\d+(\.\d+)?%$")


def synthetic_curves(n: int, epochs: int = 6, diagnostics: bool = False) -> dict[str, list[dict]]:
    """``n`` rules whose errors fall from 90 % towards 2 %, each a little apart."""
    curves = {}
    for i in range(n):
        lines = []
        for e in range(1, epochs + 1):
            test = 2 + 88 / e**1.5 + 0.1 * i
            line = {"epoch": e, "test_error": test, "train_error": test * 0.8}
            if diagnostics:
                line["angle_to_bp"] = {"fc1": 60 - e - i, "fc2": 50 - e}
            lines.append(line)
        curves[f"rule{i:02d}"] = lines
    return curves


def drawn(fig):
    """The figure laid out and rendered, so that extents and tick labels are final."""
    FigureCanvasAgg(fig).draw()
    return fig


def panel(fig, title: str):
    return next(ax for ax in fig.axes if ax.get_title() == title)


def tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


@pytest.mark.parametrize("n", [11, 15, 40])
def test_every_label_gets_its_own_colour_and_neighbours_differ_in_line_style(n):
    styles = list(label_styles([f"r{i}" for i in range(n)]).values())
    assert len({s["color"] for s in styles}) == n  # no wraparound of a 10-colour cycle
    assert all(a["linestyle"] != b["linestyle"] for a, b in zip(styles, styles[1:]))


def test_fifteen_rules_each_draw_one_line_per_panel_with_a_unique_colour_and_style():
    curves = synthetic_curves(15)
    fig = drawn(draw_curves(curves, "Learning curves of 15 rules: data digits, model digits_fc"))
    for title in ("test error", "train error"):
        lines = panel(fig, title).get_lines()
        assert [line.get_label() for line in lines] == list(curves)
        pairs = {(to_hex(line.get_color()), line.get_linestyle()) for line in lines}
        assert len(pairs) == 15
    test_styles = {l.get_label(): (l.get_color(), l.get_linestyle()) for l in panel(fig, "test error").get_lines()}
    train_styles = {l.get_label(): (l.get_color(), l.get_linestyle()) for l in panel(fig, "train error").get_lines()}
    assert test_styles == train_styles  # a rule looks the same in every panel


def test_the_legend_lists_each_rule_once_outside_every_panel():
    fig = drawn(draw_curves(synthetic_curves(11, diagnostics=True), "t"))
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(synthetic_curves(11))
    box = legend.get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent()), ax.get_title()


def test_the_title_says_what_is_shown_and_diagnostics_get_their_own_panel():
    title = "Learning curves of 3 rules: data digits, model digits_fc"
    fig = drawn(draw_curves(synthetic_curves(3, diagnostics=True), title))
    assert fig.get_suptitle() == title
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles == ["test error", "train error", "update alignment with BP"]
    plain = drawn(draw_curves(synthetic_curves(3), "t"))
    assert [ax.get_title() for ax in plain.axes if ax.axison] == ["test error", "train error"]


def test_errors_within_one_decade_read_as_plain_percent_not_powers_of_ten():
    # curves_fc.png's case: every error between 40 % and 80 % (a log axis labelled 4 × 10¹ … 8 × 10¹)
    curves = {r: [{"epoch": e, "test_error": 80 - 10 * e - i} for e in range(1, 5)] for i, r in enumerate(["BP", "FA"])}
    ax = panel(drawn(draw_curves(curves, "t")), "test error")
    texts = tick_texts(ax.yaxis)
    assert ax.get_yscale() == "linear" and len(texts) >= 3
    assert all(PLAIN_PERCENT.match(t) for t in texts), texts


def test_errors_over_decades_get_a_log_axis_with_plain_percent_ticks():
    falling = [90, 30, 8, 2, 0.8]
    curves = {
        r: [{"epoch": e, "test_error": v + i} for e, v in enumerate(falling, 1)] for i, r in enumerate(["BP", "FA"])
    }
    ax = panel(drawn(draw_curves(curves, "t")), "test error")
    texts = tick_texts(ax.yaxis)
    assert ax.get_yscale() == "log"
    assert all(PLAIN_PERCENT.match(t) for t in texts) and {"1%", "10%"} <= set(texts), texts
    assert not [t.get_text() for t in ax.yaxis.get_ticklabels(minor=True) if t.get_text()]  # no 3 × 10⁰ between


def test_epochs_are_whole_numbers_and_an_inverse_loss_within_a_decade_reads_plainly():
    curves = {
        r: [
            {"epoch": e, "test_error": 50.0 - e, "inverse_error": {"fc1": 0.55 - 0.05 * e - 0.01 * i}}
            for e in range(1, 4)
        ]
        for i, r in enumerate(["DTP", "SDTP"])
    }
    fig = drawn(draw_curves(curves, "t"))
    ax = panel(fig, "inverse models")
    texts = tick_texts(ax.yaxis)
    assert ax.get_yscale() == "linear" and all(re.match(r"^0\.\d+$", t) for t in texts), texts
    epochs = panel(fig, "test error").get_xticks()
    assert {1, 2, 3} <= set(epochs) and all(float(t).is_integer() for t in epochs)  # no epoch 1.25


def test_a_zero_error_stays_on_the_axis_with_a_zero_tick():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.plot([1, 2, 3], [30.0, 0.5, 0.0])
    assert error_axis(ax, [30.0, 0.5, 0.0]) == "symlog"
    FigureCanvasAgg(ax.figure).draw()
    assert tick_texts(ax.yaxis)[0] == "0%" and all(PLAIN_PERCENT.match(t) for t in tick_texts(ax.yaxis))


def test_a_run_without_a_finished_epoch_is_named_in_the_legend_and_no_curves_is_an_error():
    fig = drawn(draw_curves({"BP": synthetic_curves(1)["rule00"], "nan": []}, "t"))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["BP", "nan (no epoch finished)"]
    assert [line.get_label() for line in panel(fig, "test error").get_lines()] == ["BP"]
    drawn(draw_curves({"nan": []}, "t"))  # every run diverged: the empty error panels still draw
    with pytest.raises(ValueError, match="no curves given"):
        draw_curves({}, "t")


def test_plot_curves_writes_the_png(tmp_path):
    path = plot_curves(synthetic_curves(2), tmp_path / "curves.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_title_comes_from_what_the_runs_recorded(tmp_path):
    for name, rule in (("a", "bp"), ("b", "fa")):
        (tmp_path / name).mkdir()
        summary = {"rule": rule, "data": "digits", "model": "mnist_fc", "epochs": 1, "epochs_planned": 1, "seed": 0}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "unfinished").mkdir()  # no summary: left out
    runs = [tmp_path / "a", tmp_path / "b", tmp_path / "unfinished"]
    assert runs_title(runs) == "data digits, model mnist_fc, 1 epoch, seed 0"
    (tmp_path / "b" / "summary.json").write_text(
        json.dumps({"data": "digits", "model": "mnist_fc", "epochs": 3, "epochs_planned": 5, "seed": 0})
    )
    assert runs_title(runs) == "data digits, model mnist_fc, 1, 5 epochs, seed 0"
    assert runs_title([tmp_path / "unfinished"]) == ""
