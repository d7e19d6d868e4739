"""The ``console`` observer: one line per epoch on stderr."""

from __future__ import annotations

import sys

from bioscale.markers import hookimpl


class ConsoleObserver:
    """Print one line per epoch (loss, errors, seconds) to stderr."""

    def __init__(self):
        self.epochs = None  # the planned epochs, from the config at run start

    @hookimpl
    def bioscale_run_start(self, run, run_dir, config):
        info, record = run.rule_info, config["run_info"]
        self.epochs = config["trainer"]["epochs"]
        print(
            f"[bioscale] {info['name']} ({info['distribution']} {info['version']}) on {config['data']['name']} / "
            f"{config['model']['preset']}, {record['train_examples']} training examples, "
            f"device {record['sittings'][-1]['device']}, run folder {run_dir}",
            file=sys.stderr,
            flush=True,
        )

    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        parts = [f"epoch {epoch}/{self.epochs}"]
        if "train_loss" in metrics:
            parts.append(f"train loss {metrics['train_loss']:.4f} err {metrics['train_error']:.2f}%")
        if "val_error" in metrics:
            parts.append(f"val err {metrics['val_error']:.2f}%")
        parts.append(f"test err {metrics['test_error']:.2f}%")
        if "test_top5_error" in metrics:
            parts.append(f"top-5 {metrics['test_top5_error']:.2f}%")
        if "inverse_loss" in metrics:
            mean_inv = sum(metrics["inverse_loss"].values()) / len(metrics["inverse_loss"])
            parts.append(f"inverse loss {mean_inv:.4g}")
        parts.append(f"{metrics['seconds']:.1f}s")
        print("[bioscale] " + "  ".join(parts), file=sys.stderr, flush=True)
        return None
