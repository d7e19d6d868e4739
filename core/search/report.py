"""``sweep.json``, ``sweep.md`` and ``sweep.png`` of a study: a row per trial, the best
trial's exact ``bioscale train`` command, the objective against each searched setting."""

from __future__ import annotations

import shlex
from pathlib import Path

from optuna.trial import TrialState

from ..plotting import plot_sweep
from ..run_dir import write_json, write_text


def trial_rows(study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        status = {
            TrialState.COMPLETE: "complete",
            TrialState.PRUNED: "pruned",
            TrialState.RUNNING: "running",
            TrialState.WAITING: "waiting",
        }.get(
            t.state,
            "interrupted"
            if a.get("interrupted")
            else "stopped"
            if a.get("stopped")
            else ("failed" if "failure" in a else "worker died"),
        )
        rows.append(
            {
                "trial": t.number,
                "status": status,
                "settings": dict(t.params),
                "best_val_error": t.value if t.state == TrialState.COMPLETE else None,
                "test_error_at_best_val": a.get("test_error_at_best_val"),
                "best_test_error": a.get("best_test_error"),
                "epochs": a.get("epochs") if t.state == TrialState.COMPLETE else len(t.intermediate_values),
                "seconds": a.get("seconds"),
                "run_dir": a.get("run_dir"),
                "failure": a.get("failure"),
                "retry_of": a.get("retry_of"),
                "tokens": a.get("tokens"),
                "error": a.get("error"),
            }
        )
    return rows


def best_row(rows: list[dict]) -> dict | None:
    done = [r for r in rows if r["status"] == "complete"]
    return min(done, key=lambda r: r["best_val_error"]) if done else None


def train_command(tokens: list[str]) -> str:
    return "bioscale train " + " ".join(shlex.quote(t) for t in tokens)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_report(folder: Path, study, meta: dict) -> dict:
    """Write the three files into ``folder``; return the JSON document."""
    rows = trial_rows(study)
    best = best_row(rows)
    sessions = study.user_attrs.get("sessions") or [{k: meta[k] for k in ("commit", "machine", "started")}]
    meta = {**meta, **sessions[0], "sessions": sessions}  # the first sitting's provenance; every sitting listed
    doc = {
        **meta,
        "study": study.study_name,
        "trials": rows,
        "best": None
        if best is None
        else {
            "trial": best["trial"],
            "best_val_error": best["best_val_error"],
            "test_error_at_best_val": best["test_error_at_best_val"],
            "command": train_command(best["tokens"]),
        },
    }
    write_json(folder / "sweep.json", doc)
    lines = _header_lines(study.study_name, meta, sessions) + _best_lines(best) + _trial_table(rows)
    write_text(folder / "sweep.md", "\n".join(lines) + "\n")
    plot_sweep(folder / "sweep.png", rows, meta["space"], study.study_name, meta.get("command", ""))
    return doc


def _header_lines(study_name: str, meta: dict, sessions: list[dict]) -> list[str]:
    """``sweep.md``'s title and provenance: command, commit, machine, sittings, objective, space."""
    return [
        f"# Sweep {study_name}",
        "",
        f"- command: `{meta['command']}`",
        f"- commit: {meta['commit']}; machine: {meta['machine']}; started: {meta['started']}",
        *(
            [
                "- sittings (the command rerun; finished trials are kept): "
                + "; ".join(f"{x['started']} at {x['commit']}" for x in sessions)
            ]
            if len(sessions) > 1
            else []
        ),
        f"- objective: best validation error ({meta['validation']} held-out training examples); sampler {meta['sampler']}, pruner {meta['pruner']}",
        "- space: " + "; ".join(f"`{k}` {v}" for k, v in meta["space"].items()),
        "",
    ]


def _best_lines(best: dict | None) -> list[str]:
    """The best trial and the command that reproduces it (nothing when no trial finished)."""
    if best is None:
        return []
    return [
        f"Best: trial {best['trial']}, validation error {best['best_val_error']:.2f} % "
        f"(test error at that epoch {_fmt(best['test_error_at_best_val'])} %). Reproduce it with:",
        "",
        "```bash",
        train_command(best["tokens"]),
        "```",
        "",
    ]


def _trial_table(rows: list[dict]) -> list[str]:
    """One line per trial: its status, its settings (a column per searched key) and its results."""
    keys = sorted({k for r in rows for k in r["settings"]})
    head = (
        "| trial | status | "
        + " | ".join(keys)
        + " | best val err % | test err at best val % | best test err % | epochs | s |"
    )
    lines = [head, "| " + " | ".join(["---"] * (len(keys) + 7)) + " |"]
    for r in rows:
        settings = " | ".join(_fmt(r["settings"].get(k)) for k in keys)
        lines.append(
            f"| {r['trial']} | {r['status']}{' (retry of ' + str(r['retry_of']) + ')' if r['retry_of'] is not None else ''} | "
            f"{settings} | {_fmt(r['best_val_error'])} | {_fmt(r['test_error_at_best_val'])} | "
            f"{_fmt(r['best_test_error'])} | {_fmt(r['epochs'])} | {_fmt(r['seconds'])} |"
        )
    return lines
