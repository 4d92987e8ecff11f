"""The evaluation notebook runs end to end (it imports the package, so it cannot rot silently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.benchmark import DEFAULT_DATA_ROOT

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "ranking_evaluation.ipynb"


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEFAULT_DATA_ROOT / "itjuzi_ai").is_dir(),
    reason=f"evaluation data not found at {DEFAULT_DATA_ROOT} (shared data sit next to the repository)",
)
def test_ranking_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MATCH_EVAL_OUT", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parents[1])}},
    ).execute()
    results = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert '"ours"' in results and '"popularity"' in results
