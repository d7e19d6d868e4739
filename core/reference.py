"""The paper's reported test errors (Bartunov et al. 2018, Table 1; percent), for comparison.

Keys: ``(data, architecture)`` with architecture ``fc``, ``lc`` or ``conv`` (the "BP
convnet" row), then ``rule`` or ``rule:schedule`` for the target-propagation rules.
ImageNet entries are top-1 errors.
"""

from __future__ import annotations

from .config.schema import plain_value

PAPER_TEST_ERROR = {
    ("mnist", "fc"): {"bp": 1.48, "fa": 1.85, "dfa": 2.75, "dtp:parallel": 2.86, "dtp:alternating": 1.83,
                      "sdtp:parallel": 3.52, "sdtp:alternating": 2.28, "aosdtp:parallel": 2.93, "aosdtp:alternating": 1.86},
    ("mnist", "lc"): {"bp": 1.17, "fa": 1.26, "dfa": 2.05, "dtp:parallel": 1.52, "dtp:alternating": 1.46,
                      "sdtp:parallel": 1.98, "sdtp:alternating": 1.90, "aosdtp:parallel": 1.92, "aosdtp:alternating": 1.91},
    ("mnist", "conv"): {"bp": 1.01},
    ("cifar10", "fc"): {"bp": 41.32, "fa": 41.97, "dfa": 47.80, "dtp:parallel": 59.14, "dtp:alternating": 42.32,
                        "sdtp:parallel": 55.32, "sdtp:alternating": 54.27, "aosdtp:parallel": 47.11, "aosdtp:alternating": 45.40},
    ("cifar10", "lc"): {"bp": 32.41, "fa": 37.44, "dfa": 44.41, "dtp:parallel": 39.47, "dtp:alternating": 39.47,
                        "sdtp:parallel": 46.63, "sdtp:alternating": 45.66, "aosdtp:parallel": 40.05, "aosdtp:alternating": 40.21},
    ("cifar10", "conv"): {"bp": 31.87},
    ("imagenet", "lc"): {"bp": 71.43, "fa": 93.08, "dtp:parallel": 98.34, "dtp:alternating": 99.36, "sdtp:parallel": 99.28},
    ("imagenet", "conv"): {"bp": 63.93},
}


def paper_test_error(data: str, model_preset: str, rule: str, rule_config=None) -> float | None:
    """The paper's test error for this run's row, or None when the paper has none."""
    arch = model_preset.rsplit("_", 1)[-1] if "_" in model_preset else None
    table = PAPER_TEST_ERROR.get((data, arch))
    if table is None:
        return None
    schedule = getattr(rule_config, "schedule", None) if rule_config is not None else None
    if schedule is not None:
        return table.get(f"{rule}:{plain_value(schedule)}")
    return table.get(rule)
