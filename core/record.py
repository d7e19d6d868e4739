"""The run record: ``config.yaml`` (the resolved config, ``run_info``: which code and machine made
the run, and its ``sittings``) and ``summary.json`` (how the run went).

``run_info`` describes the run as it was created (the first sitting) and is never overwritten;
every sitting (the first one and each ``bioscale resume``) appends an entry to
``run_info.sittings`` with its start, end, status, epochs, host, CPU and code. A sitting whose
process died without ending it (SIGKILL, power loss) is marked ``lost`` by the next resume.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from bioscale.architectures import activations
from omegaconf import OmegaConf

from . import __version__
from .config.schema import config_dict
from .named_plugins import named_records
from .provenance import core_fingerprint, cpu_model, device_name, machine, plugin_fingerprint
from .reference import paper_test_error
from .run_dir import CONFIG, write_text
from .trainer_fields import TrainerFields


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_run_info(run_dir: Path) -> dict:
    """The ``run_info`` section of a run folder's ``config.yaml`` (``{}`` if it has none)."""
    saved = config_dict(OmegaConf.load(Path(run_dir) / CONFIG))
    info = saved.get("run_info") if isinstance(saved, dict) else None
    return info if isinstance(info, dict) else {}


def first_sitting_of(info: dict) -> dict:
    """A record written before sittings existed, as one sitting (what it says of itself)."""
    return {
        "started": None,
        "ended": None,
        "status": "unknown",
        "device": info.get("device"),
        "device_name": info.get("device_name"),
        "torch_version": info.get("torch_version"),
    }


class RunRecord(TrainerFields):
    """Trainer mixin: what the run writes about itself. Reads ``cfg``, ``rule_spec``,
    ``observer_specs``, ``device``, ``parallel``, ``data``, ``model``, ``run_dir``, ``history``,
    ``epoch`` and ``paper_row``; keeps ``run_record`` (the ``run_info`` last written)."""

    run_record: dict | None = None

    def code_record(self) -> dict:
        """The core's fingerprint, the rules' (the active one and those it is made of), the
        enabled observers' and the architecture's and data set's distributions, versions and
        source hashes."""
        rules = {
            name: plugin_fingerprint(spec.entry, spec.cls)
            for name, spec in {self.rule_spec.name: self.rule_spec, **self.rule_spec.companions}.items()
        }
        observers = {spec.name: plugin_fingerprint(spec.entry, spec.cls) for spec in self.observer_specs}
        return {"bioscale": core_fingerprint(), "rules": rules, "observers": observers, **named_records(self.cfg)}

    def sitting(self) -> dict:
        """This sitting, open: start, epochs so far, machine and code."""
        core = core_fingerprint()
        return {
            "started": now(),
            "ended": None,
            "status": "running",
            "from_epoch": self.epoch,
            "to_epoch": self.epoch,
            **machine(self.device),
            "world_size": self.parallel.world_size,
            "cpu_tanh": activations.CPU_TANH,
            "commit": core["commit"],
            "dirty": core["dirty"],
            "source_hash": core["source_hash"],
        }

    def run_info(self) -> dict:
        """The record of a new run: rule, code, machine, data and size, and its first sitting."""
        return {
            "rule": self.rule_spec.info,
            "bioscale_version": __version__,
            "code": self.code_record(),
            "torch_version": str(torch.__version__),
            "python": machine(self.device)["python"],
            "device": str(self.device),
            "device_name": device_name(self.device),
            "cpu_model": cpu_model(),
            "threads": torch.get_num_threads(),
            "world_size": self.parallel.world_size,  # data-parallel processes (1: not launched by torchrun)
            "backend": self.parallel.backend,
            "cpu_tanh": activations.CPU_TANH,  # which tanh form the CPU evaluates (architectures/activations.py)
            "host_malloc": self.host_malloc,  # glibc's thresholds set for training (core/host_malloc.py) or the system's
            "data_source": self.data.source,
            "normalization": self.data.normalization,
            "train_examples": len(self.data.train),
            "test_examples": len(self.data.test),
            "val_examples": len(self.data.val) if self.data.val is not None else 0,
            "in_shape": list(self.data.in_shape),  # (C, H, W): with num_classes, what rebuilds the net alone
            "num_classes": self.data.num_classes,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "sittings": [self.sitting()],
        }

    def resumed_run_info(self, previous: dict) -> dict:
        """``previous`` (the saved ``run_info``) with this sitting appended; an older record
        without sittings gets its own first."""
        info = dict(previous) if previous else self.run_info()
        if previous:
            before = [dict(s) for s in previous.get("sittings") or [first_sitting_of(previous)]]
            if before[-1].get("status") == "running":  # its process ended without a word (killed): the lock was free
                before[-1]["status"] = "lost"
            info["sittings"] = [*before, self.sitting()]
        return info

    def resolved_config(self) -> dict:
        """What ``config.yaml`` holds: the config, every rule section the run uses, ``run_info``."""
        resolved = config_dict(self.cfg, resolve=True, enum_to_str=True)
        resolved["rules"] = {
            name: config_dict(spec.config, enum_to_str=True)
            for name, spec in {self.rule_spec.name: self.rule_spec, **self.rule_spec.companions}.items()
        }
        resolved["run_info"] = self.run_record if self.run_record is not None else self.run_info()
        return resolved

    def write_config(self, run_info: dict | None = None) -> None:
        """Write ``config.yaml`` with ``run_info`` (default: the one written last, else a new one)."""
        if run_info is not None:
            self.run_record = run_info
        resolved = self.resolved_config()
        self.run_record = resolved["run_info"]
        assert self.run_dir is not None  # create and resume set it before the config is written
        write_text(self.run_dir / CONFIG, OmegaConf.to_yaml(OmegaConf.create(resolved)))

    def open_sitting(self) -> None:
        """Start a sitting unless one is open (``fit`` after ``fit(stop_after=...)``)."""
        sittings = (self.run_record or {}).get("sittings") or []
        if not sittings or sittings[-1]["ended"] is not None:
            self.write_config({**(self.run_record or self.run_info()), "sittings": [*sittings, self.sitting()]})

    def close_sitting(self, status: str) -> None:
        """Record this sitting's end, status and last epoch in ``config.yaml``."""
        sittings = list((self.run_record or {}).get("sittings") or [])
        if sittings:
            assert self.run_record is not None  # it holds the sittings
            sittings[-1] = {**sittings[-1], "ended": now(), "status": status, "to_epoch": self.epoch}
            self.write_config({**self.run_record, "sittings": sittings})

    def summary(self, status: str, error: str | None = None) -> dict:
        hist = self.history
        test = [m["test_error"] for m in hist]
        train_seconds = [m["seconds"] for m in hist]
        best_epoch = (test.index(min(test)) + 1) if test else None
        last_train: dict = next((m for m in reversed(hist) if "train_error" in m), {})
        summary = {
            "status": status,
            **({"error": error} if error else {}),
            "rule": self.rule_spec.name,
            "rule_distribution": self.rule_spec.entry.distribution,
            "rule_version": self.rule_spec.entry.version,
            "data": self.cfg.data.name,
            "model": self.cfg.model.preset,
            "seed": self.cfg.seed,
            "epochs": self.epoch,
            "epochs_planned": self.cfg.trainer.epochs,
            "best_test_error": min(test) if test else None,
            "best_epoch": best_epoch,
            "final_test_error": test[-1] if test else None,
            "final_train_error": last_train.get("train_error"),
            "final_train_loss": last_train.get("train_loss"),
            "seconds_per_epoch": statistics.median(train_seconds) if train_seconds else None,
            "total_train_seconds": sum(train_seconds),
            "device": str(self.device),
            "torch_version": str(torch.__version__),
            "run_dir": str(self.run_dir),
        }
        summary.update(self._summary_extras(hist, test))
        return summary

    def _summary_extras(self, hist: list[dict], test: list) -> dict:
        """The paper's number for this cell, top-5 and validation errors, where they exist."""
        extras = {}
        paper = paper_test_error(self.cfg.data.name, self.cfg.model.preset, self.paper_row)
        if paper is not None:
            extras["paper_test_error"] = paper
        if test and "test_top5_error" in hist[-1]:
            extras["best_test_top5_error"] = min(m["test_top5_error"] for m in hist)
            extras["final_test_top5_error"] = hist[-1]["test_top5_error"]
        if hist and "val_error" in hist[-1]:
            val = [m["val_error"] for m in hist]
            best_val_epoch = val.index(min(val))
            extras["best_val_error"] = val[best_val_epoch]
            extras["test_error_at_best_val"] = test[best_val_epoch]
        return extras
