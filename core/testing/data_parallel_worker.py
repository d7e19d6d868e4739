"""Train the jobs of a JSON file one after another in this process group (or in one process).

``python -m bioscale.testing.data_parallel_worker JOBS.json OUT_DIR``, alone or under torchrun:
each job ``{"rule": name or "module:Class", "tokens": [...], "name": folder}`` becomes one run
under ``OUT_DIR/<name>/`` (optional ``"stop_after": N``: train N epochs and leave it paused). Used by :func:`bioscale.testing.check_data_parallel`.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from ..config import resolve_observers
from ..config.resolve import build_run_config, resolve_rule
from ..distributed import end_launched_process
from ..trainer import Trainer
from .harness import fake_entry, rule_registry


def main(jobs_file: str, out_dir: str) -> int:
    trainer = None
    for job in json.loads(Path(jobs_file).read_text()):
        rule = job["rule"]
        rules = None
        if ":" in rule:
            module, _, qualname = rule.partition(":")
            cls = getattr(importlib.import_module(module), qualname)
            entry = fake_entry(cls)
            rule, rules = entry.name, rule_registry(entry)
        cfg = build_run_config(
            [
                *job["tokens"],
                f"rule={rule}",
                f"output_dir={Path(out_dir) / job['name']}",
                "observers.console.enabled=false",
            ]
        )
        trainer = Trainer.create(cfg, resolve_rule(cfg, rules), resolve_observers(cfg))
        trainer.fit(stop_after=job.get("stop_after"))
    if trainer is not None:
        trainer.parallel.close()
    return 0


if __name__ == "__main__":
    status = main(*sys.argv[1:])
    end_launched_process(status)
    sys.exit(status)
