"""Batch tokenizing: the same tokens as one text at a time, serially or in forked processes."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
tk = importlib.import_module("embeddings.tokenize")  # the module (the package exports the function)

TEXTS = [
    "创客中国，专精特新企业；面向江苏省市场。",
    "人工智能 医学影像 辅助诊断系统",
    "",
    "  ",
    "创客中国，专精特新企业；面向江苏省市场。",
    "AI+工业 小微企业创业创新基地 ＡＢＣ１２３",
]


def test_a_batch_gives_what_each_text_gives_alone() -> None:
    assert tk.tokenize_many(TEXTS) == [tk.tokenize(t) for t in TEXTS]
    assert tk.tokenize_many(TEXTS, for_search=False) == [tk.tokenize(t, for_search=False) for t in TEXTS]


def test_a_large_batch_is_cut_in_forked_processes_with_the_same_result() -> None:
    """Run in a fresh interpreter: the suite's own process has other threads, where batches stay serial."""
    code = textwrap.dedent(
        """
        import importlib, json, sys
        tk = importlib.import_module("embeddings.tokenize")
        tk._PARALLEL_MIN_PIECES = 2
        tk._PARALLEL_CHUNK = 2
        texts = json.loads(sys.argv[1])
        assert tk._processes() == 2, tk._processes()
        assert tk.tokenize_many(texts) == [tk.tokenize(t) for t in texts]
        print("forked-ok")
        """
    )
    env = {**os.environ, "MATCH_TOKENIZE_PROCESSES": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(TEXTS)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "forked-ok" in done.stdout


def test_batches_are_cut_serially_beside_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATCH_TOKENIZE_PROCESSES", "2")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert tk._processes() == 1
    finally:
        stop.set()
        other.join()
