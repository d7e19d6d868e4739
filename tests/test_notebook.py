"""``examples/quickstart.ipynb``: stored without outputs, and every cell runs (in a Jupyter kernel of
this interpreter, in a scratch folder) using only the documented API."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_quickstart_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_quickstart_runs_top_to_bottom(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # "python3" is this interpreter's kernel (jupyter_client runs a "python" kernel with sys.executable)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for o in outputs) + "".join(
        str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "completed" in texts and "signofbp" in texts
    for cell in nb.cells:  # nothing printed twice: each of a cell's bioscale lines once
        lines = [
            l for o in cell.get("outputs", []) for l in o.get("text", "").splitlines() if l.startswith("[bioscale]")
        ]
        assert len(lines) == len(set(lines)), lines
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 3  # the comparison, the rule's own run, the second comparison
