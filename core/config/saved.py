"""A run folder's saved config (``config.yaml``) as ``bioscale resume`` rebuilds it: the saved
settings, the allowed overrides (``trainer.*``, ``observers.*``) checked as ``train`` checks
them, and the rule spec from the saved, fully resolved rule sections."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..discovery import ARCHITECTURES_GROUP, DATASETS_GROUP, RULES_GROUP, discover, load_rule_class
from ..errors import CheckpointError, ConfigError, PluginError, UsageError
from ..named_plugins import load_named
from ..run_dir import CHECKPOINT, CONFIG
from .bounds import check_bounds
from .composite import companion_specs
from .dotlist import apply_dotlist, check_resolvable, split_tokens
from .recipes import rule_config
from .schema import RunConfig
from .specs import RuleSpec

RESUMABLE_PREFIXES = ("trainer.", "observers.")
REQUIRED_SECTIONS = {"rule", "data", "model", "trainer"}


def read_saved_config(run_dir: Path) -> dict:
    """``config.yaml`` of ``run_dir`` as a plain dict; a :class:`CheckpointError` unless the folder
    holds a run (config and checkpoint) and the file is a run's config."""
    config_path = run_dir / CONFIG
    if not config_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder: {config_path} is missing")
    if not (run_dir / CHECKPOINT).is_file():
        raise CheckpointError(f"{run_dir} has no {CHECKPOINT} to resume from")
    try:
        saved = OmegaConf.to_container(OmegaConf.load(config_path))
    except Exception as exc:  # YAML syntax, unknown tags (!!python/...), unreadable file
        raise CheckpointError(f"{config_path} is unreadable: {str(exc).splitlines()[0]}") from exc
    if not isinstance(saved, dict) or not REQUIRED_SECTIONS <= set(saved):
        raise CheckpointError(
            f"{config_path} is not a run's config: it lacks "
            f"{sorted(REQUIRED_SECTIONS - set(saved if isinstance(saved, dict) else {}))}"
        )
    return saved


def _with_overrides(saved: dict, tokens: list[str], config_path: Path) -> DictConfig:
    """The saved settings (``run_info`` and ``rules`` already removed) with the overrides applied."""
    pairs = split_tokens(tokens)
    bad = [k for k, _ in pairs if not k.startswith(RESUMABLE_PREFIXES)]
    if bad:
        raise ConfigError(
            f"resume only changes {', '.join(p + '*' for p in RESUMABLE_PREFIXES)}; got {bad}. "
            f"Start a new run to change anything else."
        )
    try:
        cfg = cast(DictConfig, OmegaConf.merge(OmegaConf.structured(RunConfig), saved))  # a dataclass's: a DictConfig
        check_resolvable(cfg, str(config_path))
        check_bounds(cfg, "")
    except (OmegaConfBaseException, ConfigError) as exc:
        raise CheckpointError(f"{config_path} does not fit this bioscale's config schema: {exc}") from exc
    cfg = apply_dotlist(cfg, pairs, "resume")  # the overrides, checked as train checks them
    check_resolvable(cfg, "resume")
    check_bounds(cfg, "")
    return cfg


def check_named_plugins(run_info: dict, saved: dict) -> None:
    """The run's data set is installed, and so is its architecture when a plugin built the
    network (``run_info.code.architecture.kind: build``); else a :class:`PluginError` (exit 2)
    naming the distribution that trained the run."""
    recorded = (run_info.get("code") or {}) if isinstance(run_info, dict) else {}
    wanted = [(DATASETS_GROUP, str((saved.get("data") or {}).get("name", "digits")), recorded.get("data"))]
    arch = recorded.get("architecture") or {}
    if arch.get("kind") == "build":
        wanted.append((ARCHITECTURES_GROUP, str((saved.get("model") or {}).get("preset")), arch))
    for group, name, record in wanted:
        try:
            load_named(group, name)
        except UsageError as exc:
            origin = f" (the run used {record.get('distribution')} {record.get('version')})" if record else ""
            raise PluginError(f"cannot resume: {exc}{origin}") from exc


def load_run_config(run_dir: Path, tokens: list[str], rules: dict | None = None) -> tuple[DictConfig, RuleSpec]:
    """The saved config of ``run_dir`` with the allowed overrides applied, and its rule spec.

    :param rules: name → PluginEntry to pick the rule from (default: the installed ones).
    """
    run_dir = Path(run_dir)
    saved = read_saved_config(run_dir)
    check_named_plugins(saved.pop("run_info", None) or {}, saved)
    rule_sections = saved.pop("rules", {}) or {}
    cfg = _with_overrides(saved, tokens, run_dir / CONFIG)
    rules = discover(RULES_GROUP) if rules is None else rules
    entry, cls = load_rule_class(cfg.rule, rules)
    # the saved, fully resolved rule config wins over today's defaults and recipes
    config = rule_config(cfg.rule, cls, entry, cfg.model.preset, rule_sections.get(cfg.rule, {}))
    companions = companion_specs(cfg.rule, cls, config, rules, cfg.model.preset, rule_sections)  # rule=mix's rules
    return cfg, RuleSpec(cfg.rule, entry, cls, config, companions)
