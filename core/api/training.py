"""``bioscale.train``, ``resume``, ``compare``, ``sweep`` and ``load_run``: the commands from Python.

Each builds the ``key=value`` tokens the command line would (``tokens.py``), so every check and
default is the CLI's; errors raise (``bioscale.ConfigError`` naming the key, ...) before anything
is written. Model, data and rule may be Python objects (``objects.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import ConfigError, DivergenceError, StopRun
from . import objects
from .results import Comparison, Run, Sweep
from .tokens import to_tokens


def _selectors(model, data, model_label: str | None, data_label: str | None) -> list[str]:
    """``model=`` / ``data=`` tokens (a dict is that section's settings; a data dict's ``name`` selects)."""
    out: list[str] = []
    if isinstance(data, Mapping):
        data = dict(data)
        if "name" in data:
            out.append(f"data={objects.data_name(data.pop('name'), data_label)}")
        out += to_tokens(sections={"data": data}) if data else []
    elif data is not None:
        out.append(f"data={objects.data_name(data, data_label)}")
    if isinstance(model, Mapping):
        out += to_tokens(sections={"model": dict(model)}) if model else []
    elif model is not None:
        out.append(f"model={objects.model_name(model, model_label)}")
    return out


def _tokens(rule, model, data, config, overrides, settings, model_label=None, data_label=None, first=()) -> list[str]:
    """``config``, then ``model`` / ``data`` / ``rule``, then ``first`` tokens, then the keyword ``settings``,
    then ``overrides``: a later token wins, as on the command line."""
    tokens = to_tokens(config) + _selectors(model, data, model_label, data_label)
    tokens += [f"rule={objects.rule_name(rule)}"] if rule is not None else []
    return tokens + list(first) + to_tokens(None, settings, overrides)


@contextlib.contextmanager
def callers_random_state():
    """Give the caller's torch random state (CPU, and CUDA where used) and thread count back after a run
    seeds its own (and sets ``trainer.threads``)."""
    import torch

    cpu, threads = torch.get_rng_state(), torch.get_num_threads()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        torch.set_num_threads(threads)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _fit(trainer) -> Run:
    """Train to the end; the run's ending (completed, paused, diverged, stopped) is the Run's status."""
    try:
        trainer.fit()
    except (DivergenceError, StopRun):  # a result, recorded in summary.json; the Run says which
        pass
    finally:
        trainer.parallel.close()
    return Run(trainer.run_dir)


def train(
    rule=None,
    *,
    model=None,
    data=None,
    config=None,
    overrides: Iterable[str] = (),
    model_name: str | None = None,
    data_name: str | None = None,
    **settings,
) -> Run:
    """Train one run, as ``bioscale train`` does, and return it.

    :param rule: an installed rule's name, or a rule class (registered for this process).
    :param model: an architecture's name, a ``torch.nn.Module`` (converted; its copy is trained), an
        architecture object (with ``model_name``), or a dict of ``model`` settings.
    :param data: a data set's name; arrays ``(x_train, y_train, x_test, y_test)`` or ``((x_train,
        y_train), (x_test, y_test))``; a pair of torch ``Dataset`` objects; a data-set object; or a
        dict of ``data`` settings whose ``name`` selects the data set.
    :param config: a YAML file or a dict of settings, applied before ``settings``.
    :param overrides: ``"key=value"`` strings, applied last.
    :param settings: sections as nested dicts (``trainer={"epochs": 3}``, ``rules={"fa": {...}}``),
        dotted keys (``**{"trainer.epochs": 3}``) or top-level values (``seed=1``).
    :return: the ``Run``; its ``status`` says how it ended (``completed``, ``paused``,
        ``diverged``, or an observer's stop). ``KeyboardInterrupt`` leaves it ``interrupted``
        (resumable) and propagates.
    :raises bioscale.ConfigError: a setting, naming its key (before anything is written).
    """
    from ..commands.train import prepare

    tokens = _tokens(rule, model, data, config, overrides, settings, model_name, data_name)
    with callers_random_state():
        return _fit(prepare(tokens))


def resume(path: str | Path, *, model=None, data=None, overrides: Iterable[str] = (), **settings) -> Run:
    """Continue the run in ``path`` from its checkpoint (``trainer.epochs=N`` to train further), as
    ``bioscale resume`` does. A run trained on Python objects needs the same ones again: ``model`` and
    ``data`` (registered under the names the run recorded), a rule class with ``bioscale.register_rule``;
    one that differs from what the run recorded (its fingerprint) is a ``ConfigError``."""
    from ..commands.resume import prepare_resume

    recorded = Run(path).config
    if model is not None:
        objects.model_name(model, recorded["model"]["preset"])
    if data is not None:
        objects.data_name(data, recorded["data"]["name"])
    check_python_plugins(recorded)
    with callers_random_state():
        return _fit(prepare_resume(str(path), to_tokens(None, settings, overrides)))


def check_python_plugins(recorded: dict) -> None:
    """Each plugin from Python the run recorded (its rule, net, data) is registered now and holds what it
    held then (the same fingerprint), or a ConfigError says which to pass or register again."""
    from ..discovery import ARCHITECTURES_GROUP, DATASETS_GROUP, RULES_GROUP, discover
    from ..local_plugins import DISTRIBUTION

    code = recorded.get("run_info", {}).get("code", {}) or {}
    wanted = [
        (RULES_GROUP, name, fp, "rule", "bioscale.register_rule") for name, fp in (code.get("rules") or {}).items()
    ]
    for key, group, how in (("architecture", ARCHITECTURES_GROUP, "model="), ("data", DATASETS_GROUP, "data=")):
        fp = code.get(key) or {}
        wanted.append((group, fp.get("name"), fp, key, how))
    for group, name, fp, what, how in wanted:
        if not fp or fp.get("distribution") != DISTRIBUTION:
            continue
        entry = discover(group).get(name)
        if entry is None or entry.distribution != DISTRIBUTION:
            raise ConfigError(f"the run's {what} {name!r} came from Python: give it again ({how}) to resume")
        if entry.version != fp.get("source_hash"):
            raise ConfigError(
                f"the {what} {name!r} registered now ({entry.version}) is not the one the run trained with "
                f"({fp.get('source_hash')}): give the same one again ({how})"
            )


def _entry(item) -> str:
    """A ``compare`` entry: a name (``"dtp"`` or ``"dtp:schedule=parallel"``), a rule class, or
    ``(name or class, {setting: value})``."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Mapping):
        name = objects.rule_name(item[0])
        return f"{name}:" + ",".join(to_tokens(sections=dict(item[1])))
    return objects.rule_name(item)


def compare(
    rules: Iterable | None = None,
    *,
    model=None,
    data=None,
    config=None,
    overrides: Iterable[str] = (),
    **settings,
) -> Comparison:
    """Train each rule on the same data, model and seed, as ``bioscale compare`` does (``rules``
    None: every installed rule that runs on its defaults); returns the ``Comparison``."""
    from ..commands.compare import run_comparison

    rules = [rules] if isinstance(rules, (str, type)) else rules
    entries = [_entry(r) for r in rules] if rules is not None else []
    with callers_random_state():
        out, _ = run_comparison(entries + _tokens(None, model, data, config, overrides, settings))
    return Comparison(out)


def sweep(
    rule,
    *,
    model=None,
    data=None,
    trials: int | None = None,
    config=None,
    overrides: Iterable[str] = (),
    **settings,
) -> Sweep:
    """Search ``rule``'s settings on Optuna, as ``bioscale sweep`` does (``sweep={"workers": 2, ...}``
    for the ``sweep.*`` settings; ``trials`` is ``sweep.trials``, 20 unless given); returns the ``Sweep``.
    A rule, net, data set or enabled observer registered from Python needs one worker (workers are
    processes)."""
    from ..commands.sweep import run_sweep

    first = [f"sweep.trials={trials}"] if trials is not None else []
    tokens = _tokens(rule, model, data, config, overrides, settings, first=first)
    with callers_random_state():
        return Sweep(run_sweep(tokens, in_process_only=_uses_python_plugins(tokens)))


def _uses_python_plugins(tokens: list[str]) -> bool:
    """Whether the run ``tokens`` describe uses a rule, net, data set or observer registered from Python."""
    from ..config import build_run_config, resolve_observers
    from ..discovery import ARCHITECTURES_GROUP, DATASETS_GROUP, OBSERVERS_GROUP, RULES_GROUP
    from ..local_plugins import is_registered
    from ..search.settings import split_sweep_tokens

    cfg = build_run_config(split_sweep_tokens(tokens)[0])
    used = [(RULES_GROUP, cfg.rule), (ARCHITECTURES_GROUP, cfg.model.preset), (DATASETS_GROUP, cfg.data.name)]
    used += [(OBSERVERS_GROUP, spec.name) for spec in resolve_observers(cfg)]
    return any(is_registered(group, name) for group, name in used)


def load_run(path: str | Path) -> Run:
    """The run folder ``path`` (any: finished, paused, interrupted or still running) as a ``Run``."""
    return Run(Path(path))


__all__ = ["compare", "load_run", "resume", "sweep", "train"]
