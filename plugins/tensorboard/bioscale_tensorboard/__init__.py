"""TensorBoard observer: each epoch's metrics as scalars in ``<run>/tensorboard/``.

Every number of the epoch's ``metrics.jsonl`` line that observers before it (in name order,
e.g. ``diagnostics``) have added is written too: nested dicts become tags such as
``angle_to_bp/3`` or ``inverse_loss/2``. Point TensorBoard at a sweep's folder to compare its
trials: ``tensorboard --logdir runs/sweeps/<study>``. Nothing is done per step.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioscale import hookimpl
from torch.utils.tensorboard import SummaryWriter

SKIPPED = ("epoch",)


def scalars(metrics: dict, prefix: str = ""):
    """``(tag, value)`` for every finite number in ``metrics``, nested dicts flattened."""
    for key, value in metrics.items():
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from scalars(value, f"{tag}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in SKIPPED:
            if value == value and abs(value) != float("inf"):
                yield tag, float(value)


@dataclass
class TensorBoardConfig:
    folder: str = "tensorboard"  # inside the run folder


class TensorBoard:
    """Writes each epoch's metrics to TensorBoard event files in the run folder."""

    Config = TensorBoardConfig

    def __init__(self, config: TensorBoardConfig | None = None):
        self.config = config or TensorBoardConfig()
        self.writer = None

    @hookimpl
    def bioscale_run_start(self, run, run_dir):
        self.writer = SummaryWriter(log_dir=str(run_dir / self.config.folder))

    @hookimpl
    def bioscale_epoch_end(self, run, epoch, metrics):
        for tag, value in scalars(metrics):
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    @hookimpl
    def bioscale_run_end(self, run, summary):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
