"""The embeddings benchmark still runs end to end (tiny sizes), so it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_runs_and_prints_every_section() -> None:
    args = ["--texts", "4", "--sizes", "200", "--queries", "5", "--real", "3", "--budget", "10"]
    done = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "bench" / "bench_embeddings.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "texts/s" in out
    assert "200 ids: build" in out
    assert "10% allowed, bare" in out
    assert "real company descriptions" in out
    assert ("first 3 non-empty descriptions" in out) or ("skipped:" in out)
