"""A progress bar for long epochs (tqdm on stderr, or a notebook widget in Jupyter), refreshed only
at host-sync points."""

from __future__ import annotations

import sys


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell) or a Colab one."""
    if "google.colab" in sys.modules:
        return True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def bar_class():
    """tqdm's notebook widget in Jupyter when ipywidgets is installed, else its text bar."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401  # the widget tqdm.notebook draws
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm


class Progress:
    """``enabled=None`` shows the bar when stderr is a terminal or the process is a Jupyter kernel."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = (sys.stderr.isatty() or in_notebook()) if enabled is None else bool(enabled)
        self._bar = None
        self._start_step = 0

    def start_epoch(self, epoch: int, epochs: int, steps: int, first_step: int = 0) -> None:
        if not self.enabled:
            return
        self.close()
        self._bar = bar_class()(
            total=steps, desc=f"epoch {epoch + 1}/{epochs}", leave=False, file=sys.stderr, unit="step"
        )
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
