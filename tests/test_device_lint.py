"""The device lint (tests/device_lint.py) holds over the step and epoch paths, and catches review F1's
mistake (a CPU tensor stacked with the run device's epoch sums) where it is planted."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from device_lint import ROOT, findings

F1 = """\
    import torch


    def epoch_sums(loss_sum, wrong, seen):
        return torch.stack([loss_sum, wrong.double(), torch.tensor(float(seen), dtype=torch.float64)])


    def nan_check(check):
        check(torch.tensor(float("nan")))
"""

PLACED = """\
    import torch
    from torch import nn


    def fine(x, device, g, model):
        a = torch.zeros(3, device=device)
        b = torch.empty(4).uniform_(-1, 1, generator=g).to(device)
        seed = int(torch.randint(0, 2**62, (1,), generator=g))
        w = nn.init.orthogonal_(torch.empty(4, 4), generator=g)
        model.weight = nn.Parameter(torch.empty(2, 2))
        c = torch.tensor(1.0)  # cpu: a host-side constant, for this test
        return a, b, seed, w.to(device), c
"""


def _plant(tmp_path, source: str) -> str:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "planted.py").write_text(textwrap.dedent(source))
    return "lib/planted.py"


def test_the_step_and_epoch_paths_name_their_devices():
    assert findings() == []


def test_the_lint_names_review_f1_at_its_file_and_line(tmp_path):
    rel = _plant(tmp_path, F1)
    found = findings(("lib",), tmp_path)
    assert [f.split(" has no device=")[0] for f in found] == [
        f"{rel}:5: torch.tensor(...)",
        f"{rel}:9: torch.tensor(...)",
    ]
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "device_lint.py"), str(tmp_path / "lib")], cwd=ROOT)
    assert done.returncode == 1


def test_placed_host_and_waived_tensors_pass_and_a_waiver_needs_a_reason(tmp_path):
    rel = _plant(tmp_path, PLACED)
    assert findings(("lib",), tmp_path) == []
    bare = (tmp_path / rel).read_text().replace("# cpu: a host-side constant, for this test", "# cpu:")
    (tmp_path / rel).write_text(bare.replace("w.to(device)", "w"))  # w no longer moved; c's waiver without a reason
    assert [f.split(":")[1] for f in findings(("lib",), tmp_path)] == ["9", "11"]
