"""What the Python API returns, read from run folders.

``Run`` is one run folder (``bioscale.load_run(path)`` for any), read on each access (a run may
still be training); ``Comparison`` a ``compare`` folder and ``Sweep`` a sweep folder, read when made. Not to be confused with ``bioscale.run.Run``, the view of a
live run that observers get.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from ..run_dir import CHECKPOINT, CONFIG, SUMMARY, read_metrics


def _pandas():
    try:
        import pandas
    except ImportError as exc:
        raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
    return pandas


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _folder_document(path, name: str, kind: str) -> tuple[Path, dict]:
    """``(folder, the parsed JSON document ``name`` in it)``; a ConfigError naming the folder when it has none."""
    folder = Path(path)
    doc = _json(folder / name)
    if not doc:
        raise ConfigError(f"{folder} is not a {kind} folder (it has no {name})")
    return folder, doc


class Run:
    """A run folder: its config, summary, metrics, curves and trained network."""

    def __init__(self, path) -> None:
        self.dir = Path(path)
        if not (self.dir / CONFIG).is_file():
            raise ConfigError(f"{self.dir} is not a run folder (it has no {CONFIG})")

    def __repr__(self) -> str:
        s = self.summary
        return f"Run({str(self.dir)!r}, status={s.get('status')!r}, best_test_error={s.get('best_test_error')})"

    @property
    def config(self) -> dict:
        """``config.yaml`` as a dict: the resolved settings and ``run_info`` (what ran, where)."""
        from omegaconf import OmegaConf

        return OmegaConf.to_container(OmegaConf.load(self.dir / CONFIG), resolve=True)  # type: ignore[return-value]

    @property
    def summary(self) -> dict:
        """``summary.json``: status, best and final errors, timings (``{}`` before the first epoch ends)."""
        return _json(self.dir / SUMMARY)

    @property
    def status(self) -> str:
        """``completed``, ``paused``, ``interrupted``, ``diverged``, ``failed`` or ``running``."""
        return self.summary.get("status", "running")

    @property
    def metrics(self) -> list[dict]:
        """One dict per epoch (``metrics.jsonl``): losses, errors, seconds, observers' values."""
        return read_metrics(self.dir)

    def to_pandas(self):
        """The metrics as a pandas DataFrame, one row per epoch (nested values as ``key.sub`` columns)."""
        return _pandas().json_normalize(self.metrics, sep=".")

    @property
    def model(self):
        """The feed-forward network at the run's last checkpoint, on the CPU, in evaluation mode, built from
        the run's recorded settings (the rule and data set need not be installed; a net from Python must
        be registered again). Feed it inputs normalised as in training (``run.load_data()`` gives them so).
        A rule that predicts otherwise (``ep``: from the settled state) recorded its errors its own way."""
        import torch
        from omegaconf import OmegaConf

        from ..checkpoint import load_checkpoint
        from ..run_model import build_run_model

        config = self.config
        cfg = OmegaConf.create({k: config[k] for k in ("model", "data", "seed")})
        in_shape, classes = self._shapes(config)
        net = build_run_model(cfg, in_shape, classes, torch.Generator().manual_seed(0))
        net.load_state_dict(load_checkpoint(self.dir / CHECKPOINT)["model"])
        return net.eval()

    def load_data(self, device: str = "cpu"):
        """The run's data as it trained on them (the same splits, limits and normalisation), on ``device``:
        ``.train``, ``.test`` (and ``.val``) with ``x`` ``(N, C, H, W)`` float32 and ``y`` ``(N,)``. Data from
        Python objects need them registered in this process (``bioscale.register_dataset``)."""
        from bioscale.datasets import load_data
        from omegaconf import OmegaConf

        return load_data(OmegaConf.create(self.config["data"]), device)

    def _shapes(self, config: dict) -> tuple:
        info = config.get("run_info", {})
        if "in_shape" in info:
            return tuple(info["in_shape"]), int(info["num_classes"])
        data = self.load_data()  # a run recorded before in_shape was: its data tell
        return data.in_shape, data.num_classes

    def plot(self, title: str | None = None):
        """A matplotlib figure of the run's learning curves."""
        from ..plotting.curves import draw_curves

        return draw_curves({self.dir.name: self.metrics}, title or self.dir.name)


class Comparison:
    """A ``compare`` folder: one row and one run per rule, the table, the plot."""

    def __init__(self, path) -> None:
        self.dir, self._doc = _folder_document(path, "comparison.json", "comparison")

    def __repr__(self) -> str:
        return f"Comparison({str(self.dir)!r}, rules={[r['label'] for r in self.rows]})"

    @property
    def rows(self) -> list[dict]:
        """One dict per rule: ``label`` and its run's summary."""
        return list(self._doc["rows"])

    @property
    def runs(self) -> list[Run]:
        """Each rule's run, in the table's order."""
        return [Run(r["run_dir"]) for r in self.rows]

    @property
    def table(self) -> str:
        """The comparison as a markdown table."""
        return (self.dir / "comparison.md").read_text()

    def to_pandas(self):
        """The rows as a pandas DataFrame indexed by rule label."""
        return _pandas().DataFrame(self.rows).set_index("label")

    def plot(self, title: str | None = None):
        """A matplotlib figure of every rule's learning curves."""
        from ..plotting.curves import draw_curves

        return draw_curves({r["label"]: Run(r["run_dir"]).metrics for r in self.rows}, title or self._doc["title"])


class Sweep:
    """A sweep folder: every trial and the best."""

    def __init__(self, path) -> None:
        self.dir, self._doc = _folder_document(path, "sweep.json", "sweep")

    def __repr__(self) -> str:
        best = self.best
        return (
            f"Sweep({str(self.dir)!r}, trials={len(self.trials)}, best_val_error={best and best.get('best_val_error')})"
        )

    @property
    def trials(self) -> list[dict]:
        """One dict per trial: its number, status, drawn settings, validation error, run folder."""
        return list(self._doc.get("trials", []))

    @property
    def best(self) -> dict | None:
        """The best complete trial's row, with its ``command`` (None before one completes)."""
        return self._doc.get("best")

    def to_pandas(self):
        """The trials as a pandas DataFrame (settings as ``settings.<key>`` columns)."""
        return _pandas().json_normalize(self.trials, sep=".")
