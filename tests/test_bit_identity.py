"""Each case (TP rules; BP, FA, DTP, SDTP on the chain nets) trains bit for bit as at its reference commit (tests/bit_identity.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bit_identity import CASES, machine, train

REFERENCE = json.loads((Path(__file__).parent / "bit_identity_reference.json").read_text())


def test_the_reference_covers_every_case():
    assert set(REFERENCE["cases"]) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_trains_bit_identically_to_the_reference(name, tmp_path):
    if machine() != REFERENCE["machine"]:
        pytest.skip(f"reference recorded on {REFERENCE['machine']}, this is {machine()} (see tests/bit_identity.py)")
    recorded = REFERENCE["cases"][name]
    now = train(name, tmp_path, recorded["rule_settings"])
    # settings added since the reference keep their defaults; every recorded one is as recorded
    assert {k: now["rule_settings"].get(k) for k in recorded["rule_settings"]} == recorded["rule_settings"]
    differ = sorted(k for k in recorded["params"] if now["params"].get(k) != recorded["params"][k])
    assert not differ, f"{name}: these parameters differ from the reference: {differ}"
