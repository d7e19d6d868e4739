"""Command-line ``key=value`` tokens merged into a structured config, with errors that name the
key and list what is valid there."""

from __future__ import annotations

from typing import cast

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError
from .list_items import check_list_entries
from .messages import explain, keys_of


def split_tokens(tokens: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for token in tokens:
        if "=" not in token:
            raise ConfigError(f"expected key=value, got {token!r} (for example trainer.epochs=10)")
        key, value = token.split("=", 1)
        if not key:
            raise ConfigError(f"empty key in {token!r}")
        pairs.append((key.strip(), value))
    return pairs


def apply_dotlist(cfg: DictConfig, pairs: list[tuple[str, str]], where: str) -> DictConfig:
    """Merge ``key=value`` pairs into a structured config, with friendly errors."""
    if not pairs:
        return cfg
    for key, value in pairs:
        try:
            override = OmegaConf.from_dotlist([f"{key}={value}"])
        except Exception as exc:  # YAML syntax, unknown tags such as !!python/...
            raise ConfigError(f"{where}: cannot parse {key}={value!r}: {str(exc).splitlines()[0]}") from exc
        try:
            if any(part.isdigit() for part in key.split(".")):  # a list index: model.blocks.0.kernel=5
                cfg = cfg.copy()
                _check_list_path(cfg, key, where)
                OmegaConf.update(cfg, key, OmegaConf.select(override, key), merge=True)
            else:
                check_list_entries(cfg, key, override, where)  # model.blocks=[{...}]: name the entry
                cfg = cast(DictConfig, OmegaConf.merge(cfg, override))  # a DictConfig merged stays one
        except ConfigError:
            raise
        except OmegaConfBaseException as exc:
            raise explain(exc, cfg, where) from exc
        except Exception as exc:  # e.g. a value of the wrong container type
            raise ConfigError(f"{where}: cannot set {key}={value!r}: {str(exc).splitlines()[0]}") from exc
    return cfg


def _check_list_path(cfg: DictConfig, key: str, where: str) -> None:
    """Each step of ``key`` exists (list indices in range, known keys), else a ConfigError
    listing what is valid there."""
    node, walked = cfg, []
    for part in key.split(".")[:-1]:
        walked.append(part)
        if isinstance(node, ListConfig):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"{where}: {'.'.join(walked)} does not exist: {'.'.join(walked[:-1])} has {len(node)} entries"
                )
            node = node[int(part)]
        elif isinstance(node, DictConfig) and part in node:
            node = node[part]
        else:
            raise ConfigError(
                f"{where}: unknown key {'.'.join(walked)!r}; valid keys under {'.'.join(walked[:-1]) or 'the top level'!r}: {keys_of(node)}"
            )
    leaf = key.split(".")[-1]
    if isinstance(node, DictConfig) and leaf not in node:
        parent = ".".join(key.split(".")[:-1])
        raise ConfigError(f"{where}: unknown key {key!r}; valid keys under {parent!r}: {keys_of(node)}")


def check_resolvable(cfg: DictConfig, where: str) -> None:
    """Every ``${...}`` interpolation in ``cfg`` resolves (else a :class:`ConfigError` naming it)."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:
        raise ConfigError(f"{where}: {str(exc).splitlines()[0]}") from exc
