"""A rule's config: its ``Config`` defaults, its recipe for the model preset, its conditional
recipes, then the user's ``rules.<name>.*`` settings, range-checked."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..discovery import PluginEntry
from ..errors import ConfigError, PluginError
from .bounds import check_bounds
from .messages import explain
from .schema import plain_value


def _merge_recipe(cfg, recipe, where: str, label: str):
    try:
        return OmegaConf.merge(cfg, recipe)
    except OmegaConfBaseException as exc:
        raise PluginError(f"{where}: its recipe {label!r} is invalid: {explain(exc, cfg, where)}") from exc


def _conditional_recipes(recipes: dict, model_preset: str) -> list[tuple[str, str, str, dict]]:
    """Recipes keyed ``"<preset>:<key>=<value>"``: apply when the rule config has key == value."""
    found = []
    for label, recipe in recipes.items():
        preset, _, condition = label.partition(":")
        if preset == model_preset and "=" in condition:
            key, value = condition.split("=", 1)
            found.append((label, key, value, recipe))
    return found


def rule_config(name: str, cls, entry: PluginEntry, model_preset: str, user: dict | None) -> DictConfig:
    """``cls.Config`` defaults ← recipe for ``model_preset`` ← conditional recipes ← user overrides.

    A rule's ``recipes`` maps ``"<preset>"`` to tuned settings, and may map
    ``"<preset>:<key>=<value>"`` to settings that apply on top when the final config has
    ``key == value`` (e.g. ``"mnist_fc:schedule=parallel"``).
    """
    where = f"rules.{name} ({entry.origin})"
    recipes = getattr(cls, "recipes", None) or {}
    if user and not isinstance(user, (dict, DictConfig)):
        raise ConfigError(f"{where}: expected rules.{name}.<key>=value, got rules.{name}={user!r}")

    def build(extra: list) -> DictConfig:
        cfg = OmegaConf.structured(cls.Config)
        if recipes.get(model_preset):
            cfg = _merge_recipe(cfg, recipes[model_preset], where, model_preset)
        for label, recipe in extra:
            cfg = _merge_recipe(cfg, recipe, where, label)
        if user:
            try:
                cfg = OmegaConf.merge(cfg, user)
            except OmegaConfBaseException as exc:
                raise explain(exc, cfg, where) from exc
        return cfg

    cfg = build([])
    conditional = [
        (label, recipe)
        for label, key, value, recipe in _conditional_recipes(recipes, model_preset)
        if str(plain_value(OmegaConf.select(cfg, key))) == value
    ]
    cfg = build(conditional) if conditional else cfg
    check_bounds(cfg, f"rules.{name}")
    return cfg
