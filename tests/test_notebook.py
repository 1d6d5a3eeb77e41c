"""examples/notebooks/live_session.ipynb runs in a real Jupyter kernel without an error cell."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebooks" / "live_session.ipynb"


@pytest.mark.slow
def test_the_live_session_notebook_runs_and_shows_a_graph_a_plot_and_a_player(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first cell that fails
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o.get("data", {}) for o in outputs if o.output_type in ("execute_result", "display_data")]
    assert any("image/svg+xml" in d and "notebook.fold" in d["image/svg+xml"] for d in shown)  # the patch drawn
    assert any("image/png" in d for d in shown)  # the spectrum
    assert any('<audio controls src="data:audio/wav;base64,' in d.get("text/html", "") for d in shown)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "odd harmonics at [110, 330, 550] Hz" in text
    assert "notebook.fold: 17 checks" in text and "0 failure(s)" in text
