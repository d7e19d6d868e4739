"""Python objects as plugins of this process: a torch module as an architecture, arrays or torch
``Dataset`` objects as a data set, a rule class as a rule (``local_plugins.py`` holds them).

Each ``*_name`` function registers its object and returns the name that ``model=`` / ``data=`` /
``rule=`` then select, so the run resolves, records and resumes exactly as for an installed plugin.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import torch

from ..discovery import ARCHITECTURES_GROUP, DATASETS_GROUP, RULES_GROUP
from ..errors import ConfigError
from ..local_plugins import fingerprint, register


def _plugin_name(text: str, fallback: str) -> str:
    """``text`` as a plugin name: other characters become ``_``, leading non-letters go."""
    name = re.sub(r"^[^A-Za-z]+", "", re.sub(r"[^A-Za-z0-9_\-]", "_", text))
    return name or fallback


def module_fingerprint(module: torch.nn.Module) -> str:
    """A module's structure and its parameters' and buffers' bytes, fingerprinted."""
    state = module.state_dict()
    tensors = [state[k].detach().cpu().contiguous().numpy().tobytes() for k in sorted(state)]
    return fingerprint(repr(module), *sorted(state), *tensors)


def model_name(model, name: str | None = None) -> str:
    """``model`` (a name, a ``torch.nn.Module`` or an architecture object) as a ``model=`` name. A
    module becomes the architecture ``name`` (default: its class name) whose ``build`` hands a copy
    to ``bioscale.architectures.convert.from_module``: its weights are its own (the run's seed
    draws none) and the module passed is never trained in place."""
    from bioscale.architectures import Architecture

    if isinstance(model, str):
        return model
    if isinstance(model, torch.nn.Module):
        frozen = copy.deepcopy(model).cpu()

        def build(in_shape, num_classes, generator):  # a copy per run: runs never share weights
            return copy.deepcopy(frozen)

        label = name or _plugin_name(type(model).__name__, "module")
        arch = Architecture(f"{label}: a torch module from Python", build=build)
        register(ARCHITECTURES_GROUP, label, arch, module_fingerprint(frozen))
        return label
    if hasattr(model, "description") and (hasattr(model, "build") or hasattr(model, "config")):
        if name is None:
            raise ConfigError("model: an architecture object needs model_name= (the name model= selects)")
        register(ARCHITECTURES_GROUP, name, model)
        return name
    raise ConfigError(
        f"model: expected a name, a torch.nn.Module or an architecture object, got a {type(model).__name__}"
    )


def _stacked(dataset, what: str) -> tuple:
    """A torch ``Dataset`` of ``(image, label)`` items as ``(x, y)`` arrays, read once."""
    try:
        items = [dataset[i] for i in range(len(dataset))]
        xs = torch.stack([torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x for x, _ in items])
        ys = torch.as_tensor([int(y) for _, y in items])
    except Exception as exc:  # user data of an unexpected shape
        raise ConfigError(f"data: {what}: cannot read its items as (image, label) pairs: {exc}") from exc
    return xs, ys


def channels_last(x):
    """Images ``(N, C, H, W)`` (``C`` 1 or 3, the last axis neither: torch's layout) as ``(N, H, W, C)``; others as given."""
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        return x.permute(0, 2, 3, 1) if isinstance(x, torch.Tensor) else np.moveaxis(x, 1, -1)
    return x


def _splits(data) -> tuple | None:
    """``(x_train, y_train, x_test, y_test)`` from the forms :func:`data_name` accepts, or None."""
    if isinstance(data, (tuple, list)):
        if len(data) == 4:
            return tuple(data)
        if len(data) == 2 and all(isinstance(d, (tuple, list)) and len(d) == 2 for d in data):
            return (*data[0], *data[1])
        if len(data) == 2 and all(isinstance(d, torch.utils.data.Dataset) for d in data):
            return (*_stacked(data[0], "the training Dataset"), *_stacked(data[1], "the test Dataset"))
        if len(data) == 2 and all(isinstance(d, (np.ndarray, torch.Tensor)) for d in data):
            return _held_out(*data)
    return None


TEST_FRACTION = 10  # one example in this many is the test split of a single (x, y) pair


def _held_out(x, y) -> tuple:
    """One ``(x, y)`` pair as ``(x_train, y_train, x_test, y_test)``: a tenth of the rows (at least one), drawn
    by a fixed seed, is the test split."""
    n = len(x)
    if n < 2 or len(y) != n:
        raise ConfigError(f"data: (x, y) needs at least 2 rows and as many labels as images; got {n} and {len(y)}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).numpy()
    test, train = np.sort(order[: max(1, n // TEST_FRACTION)]), np.sort(order[max(1, n // TEST_FRACTION) :])
    return x[train], y[train], x[test], y[test]


def _max_value(x) -> float:
    """The pixel scale: 255 for integer images up to 255, their maximum above that; 1 for floats (taken as they are)."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    if t.is_floating_point():
        return 1.0
    top = float(t.max()) if t.numel() else 255.0
    return 255.0 if top <= 255 else top


def _arrays_fingerprint(splits: tuple) -> str:
    arrays = [
        np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)) for a in splits
    ]
    return fingerprint(*[f"{a.dtype}{a.shape}" for a in arrays], *[a.tobytes() for a in arrays])


def data_name(data, name: str | None = None) -> str:
    """``data`` (a name; ``(x_train, y_train, x_test, y_test)``; ``((x_train, y_train), (x_test,
    y_test))``; one ``(x, y)`` pair, a tenth of whose rows (drawn by a fixed seed) become the test split;
    a pair of torch ``Dataset`` objects of ``(image, label)`` items; or a data-set object
    with ``description`` and ``load``) as a ``data=`` name (default ``arrays``). Images are ``(N, H,
    W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` with ``C`` 1 or 3 (moved to channels last), numpy or
    torch; labels integer class indices ``(N,)``. Integer pixels up to 255 are divided by 255, floats
    are taken as they are; then they are prepared as the run's ``data`` settings say (by default
    standardised with the training split's statistics). The data set's version is a fingerprint of
    the arrays' bytes, which the run records."""
    from bioscale.datasets import DataSet, from_arrays

    if isinstance(data, str):
        return data
    label = name or "arrays"
    if hasattr(data, "description") and callable(getattr(data, "load", None)):
        register(DATASETS_GROUP, label, data)
        return label
    splits = _splits(data)
    if splits is None:
        raise ConfigError(
            "data: expected a name, (x_train, y_train, x_test, y_test), ((x_train, y_train), (x_test, y_test)), "
            f"a pair of torch Datasets or a data-set object; got a {type(data).__name__}"
        )
    splits = (channels_last(splits[0]), splits[1], channels_last(splits[2]), splits[3])
    top = _max_value(splits[0])
    version = _arrays_fingerprint(splits)

    def load(cfg, device):
        return from_arrays(
            cfg, *splits, device=device, max_value=top, source=f"{label} (arrays from Python, {version})"
        )

    register(DATASETS_GROUP, label, DataSet(f"{label}: arrays from Python", load), version)
    return label


def rule_name(rule) -> str:
    """``rule`` (an installed name or a rule class) as a ``rule=`` name; a class is registered under
    its ``name`` attribute or its class name in lower case (its settings: ``rules.<that>.<key>``)."""
    if isinstance(rule, str):
        return rule
    if isinstance(rule, type):
        name = getattr(rule, "name", None) or _plugin_name(rule.__name__.lower(), "rule")
        register(RULES_GROUP, name, rule)
        return name
    raise ConfigError(f"rule: expected a rule name or a rule class, got a {type(rule).__name__}")
