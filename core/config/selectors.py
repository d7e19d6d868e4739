"""``model=NAME`` and ``data=NAME``: the config values an installed architecture or data set selects.

``model=NAME`` merges the architecture's ``config`` values into the ``model`` section with
``preset: NAME``; an architecture with ``build`` sets ``preset: NAME`` and empties ``blocks`` and
``widths`` (its plugin builds the network), and the command line may then set no other ``model.*``
key. ``data=NAME`` sets ``data.name``. Unknown, broken and conflicting names are refused with the
installed ones listed (``named_plugins.py``).
"""

from __future__ import annotations

from bioscale.architectures.architecture import kind_of

from ..discovery import DATASETS_GROUP
from ..errors import ConfigError
from ..named_plugins import installed_architecture, load_architecture, load_named

SELECTORS = ("data", "model")
UNUSED_BY_BUILD = ("model.blocks", "model.widths", "model.activation", "model.weight_init")


def selected(key: str, value: str) -> dict:
    """The ``key`` section's values that ``key=value`` selects."""
    if key == "data":
        load_named(DATASETS_GROUP, value)
        return {"name": value}
    _, arch = load_architecture(value)
    if kind_of(arch) == "build":
        return {"preset": value, "blocks": [], "widths": []}
    preset = dict(arch.config)  # type: ignore[attr-defined]  # a config architecture: a dict (contract)
    preset["preset"] = value
    preset.setdefault("blocks", [])
    return preset


def check_build_settings(preset: str, keys: list[str]) -> None:
    """``keys`` (the command line's) may set no model setting that architecture ``preset`` ignores
    because its plugin builds the network; a :class:`ConfigError` naming the first one that does."""
    _, arch = load_architecture(preset)
    if kind_of(arch) != "build":
        return
    for key in keys:
        if key.startswith(UNUSED_BY_BUILD):
            raise ConfigError(
                f"{key}: model={preset} is built by its plugin, which takes no model settings "
                f"({', '.join(UNUSED_BY_BUILD)} are not used); drop {key} or choose another model"
            )


def check_model_tokens(model: str | None, pairs: list[tuple[str, str]]) -> None:
    """The command line's other ``key=value`` pairs against ``model=NAME`` (None: not given): no
    setting a ``build`` architecture ignores, and no ``model.preset=NAME`` naming one (which would
    keep the default ``blocks`` / ``widths`` in the config of a network they do not describe)."""
    if model is not None:
        check_build_settings(model, [k for k, _ in pairs])
    for key, value in pairs:
        found = installed_architecture(value) if key == "model.preset" else None
        if found is not None and kind_of(found[1]) == "build":
            raise ConfigError(f"model.preset={value}: {value} is built by its plugin; select it with model={value}")
