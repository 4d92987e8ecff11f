"""The soak runs end to end: a short run of `make soak` against its own gunicorn finishes with no 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_short_soak_completes_without_server_errors(demo_template: Path, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "soak.py"),
            "--seconds",
            "20",
            "--rate",
            "3",
            "--from-db",
            str(demo_template / "match.db"),
            "--from-index",
            str(demo_template / "index"),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["server_alive"] and result["server_errors"] == 0 and result["failures"] == 0
    assert result["requests"] >= 40  # the rate was kept, roughly
    assert all(k["requests"] > 0 for name, k in result["kinds"].items() if name != "import")
    assert all(not code.startswith("5") for k in result["kinds"].values() for code in k["statuses"])
    assert len(result["rss_mib"]) >= 3 and all(mib > 0 for _t, mib, _n in result["rss_mib"])
    assert "p99 ms" in run.stdout and "server RSS over time" in run.stdout
