"""A progress bar for long epochs (tqdm on stderr), refreshed only at host-sync points."""

from __future__ import annotations

import sys


class Progress:
    """``enabled=None`` shows the bar when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self._bar = None
        self._start_step = 0

    def start_epoch(self, epoch: int, epochs: int, steps: int, first_step: int = 0) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        self.close()
        self._bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=False, file=sys.stderr, unit="step")
        self._start_step = first_step

    def update(self, global_step: int, loss: float | None) -> None:
        if self._bar is None:
            return
        self._bar.n = min(global_step - self._start_step, self._bar.total)
        if loss is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
