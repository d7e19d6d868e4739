"""Which structures a net has beyond a plain chain, and whether the rule supports them.

A rule class declares ``supports``: a subset of :data:`STRUCTURES` (none: plain chains only), and
may say why it lacks the others in ``support_note`` (appended to the refusal). The
structures of a config net come from its ``model.blocks`` alone, so a rule / net pair that cannot
work is refused at config resolution, before any data is read (a ``ConfigError``, exit 2).
"""

from __future__ import annotations

from bioscale.architectures.build import check_block
from bioscale.errors import ConfigError

STRUCTURES = ("pooling", "batchnorm", "skip")
WORDS = {"pooling": "pooling", "batchnorm": "batch norm", "skip": "skip connections"}


def block_structures(blocks: list[dict]) -> dict[str, list[int]]:
    """``{structure: [block numbers, 1-based]}`` for the ``model.blocks`` dicts (checked first:
    a ValueError names a bad block)."""
    found: dict[str, list[int]] = {s: [] for s in STRUCTURES}
    for index, spec in enumerate(blocks):
        check_block(index, spec)
        if (spec.get("pool") or "none") != "none":
            found["pooling"].append(index + 1)
        if spec.get("norm"):
            found["batchnorm"].append(index + 1)
        if spec["type"] == "residual":
            found["skip"].append(index + 1)
    return found


def numbers(found: list[int]) -> str:
    """``[1, 2, 3, 5]`` → ``"1-3, 5"``."""
    runs: list[list[int]] = []
    for n in found:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _where(found: list[int], unit: str) -> str:
    return f"{unit} {found[0]}" if len(found) == 1 else f"{unit}s {numbers(found)}"


def supported(cls) -> frozenset:
    """The structures a rule class declares it supports."""
    return frozenset(getattr(cls, "supports", ()) or ())


def describe_support(support: frozenset) -> str:
    kinds = [WORDS[s] for s in STRUCTURES if s in support]
    return "plain chains" + (" with " + " and ".join(kinds) if kinds else " (no pooling, batch norm or skips)")


def check_supported(net: str, found: dict[str, list[int]], rules: list[tuple[str, type]], unit: str = "block") -> None:
    """Refuse the first rule of ``(name, class)`` pairs lacking a structure the net has; ``found``
    numbers ``unit``s (config blocks, or a built net's layers)."""
    for name, cls in rules:
        support = supported(cls)
        missing = [s for s in STRUCTURES if found.get(s) and s not in support]
        if missing:
            has = "; ".join(f"{WORDS[s]} in {_where(found[s], unit)}" for s in missing)
            why = getattr(cls, "support_note", None)
            raise ConfigError(
                f"{name}: {net} has {has}; {name} supports {describe_support(support)}" + (f" ({why})" if why else "")
            )
