"""``bioscale.train``, ``resume``, ``compare``, ``sweep`` and ``load_run``: the commands from Python.

Each builds the ``key=value`` tokens the command line would (``tokens.py``), so every check and
default is the CLI's; errors raise (``bioscale.ConfigError`` naming the key, ...) before anything
is written. Model, data and rule may be Python objects (``objects.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import DivergenceError, StopRun
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


def _tokens(rule, model, data, config, overrides, settings, model_label=None, data_label=None) -> list[str]:
    tokens = _selectors(model, data, model_label, data_label) + to_tokens(config, settings, overrides)
    return tokens + ([f"rule={objects.rule_name(rule)}"] if rule is not None else [])


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
    return _fit(prepare(tokens))


def resume(path, *, model=None, data=None, overrides: Iterable[str] = (), **settings) -> Run:
    """Continue the run in ``path`` from its checkpoint (``trainer.epochs=N`` to train further), as
    ``bioscale resume`` does. A run trained on Python objects needs them again (``model``, ``data``:
    registered under the names the run recorded)."""
    from ..commands.resume import prepare_resume

    recorded = Run(path).config
    if model is not None:
        objects.model_name(model, recorded["model"]["preset"])
    if data is not None:
        objects.data_name(data, recorded["data"]["name"])
    return _fit(prepare_resume(str(path), to_tokens(None, settings, overrides)))


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

    entries = [_entry(r) for r in rules] if rules is not None else []
    out, _ = run_comparison(entries + _tokens(None, model, data, config, overrides, settings))
    return Comparison(out)


def sweep(
    rule,
    *,
    model=None,
    data=None,
    trials: int = 20,
    config=None,
    overrides: Iterable[str] = (),
    **settings,
) -> Sweep:
    """Search ``rule``'s settings on Optuna, as ``bioscale sweep`` does (``sweep={"workers": 2, ...}``
    for the ``sweep.*`` settings; ``trials`` is ``sweep.trials``); returns the ``Sweep``. Rules,
    models or data sets registered from Python need one worker (workers are processes)."""
    from ..commands.sweep import run_sweep
    from ..local_plugins import any_registered

    tokens = _tokens(rule, model, data, config, [f"sweep.trials={trials}", *overrides], settings)
    return Sweep(run_sweep(tokens, in_process_only=any_registered()))


def load_run(path) -> Run:
    """The run folder ``path`` (any: finished, paused, interrupted or still running) as a ``Run``."""
    return Run(Path(path))


__all__ = ["compare", "load_run", "resume", "sweep", "train"]
