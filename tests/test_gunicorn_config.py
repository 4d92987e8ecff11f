"""gunicorn.conf.py, read by make run / serve / bench-http: WORKERS (default one per core), 4 threads."""

from __future__ import annotations

import os
import runpy
import time
from pathlib import Path
from typing import Any

import pytest

CONF = str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py")


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in ("WORKERS", "THREADS", "PORT", "HOST", "ACCESS_LOG", "TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(CONF)


def test_workers_default_to_one_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(monkeypatch)
    assert s["workers"] == os.cpu_count()
    assert (s["worker_class"], s["threads"], s["wsgi_app"]) == ("gthread", 4, "app:create_app()")
    assert s["bind"] == "127.0.0.1:5000" and s["accesslog"] == "-" and s["preload_app"] is False


def test_workers_and_port_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(monkeypatch, WORKERS="3", PORT="5123", ACCESS_LOG="")
    assert s["workers"] == 3 and s["bind"] == "127.0.0.1:5123" and s["accesslog"] is None


@pytest.mark.parametrize("bad", ["abc", "0", "-2", "1.5", " 2"])
def test_a_bad_worker_count_is_refused_clearly(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    with pytest.raises(SystemExit, match="WORKERS must be a whole number of at least 1"):
        _settings(monkeypatch, WORKERS=bad)


def test_the_worker_builds_its_matching_service_at_start(monkeypatch: pytest.MonkeyPatch, app: Any) -> None:
    hook = _settings(monkeypatch)["post_worker_init"]
    worker = type("Worker", (), {"wsgi": app})()
    hook(worker)
    start = time.monotonic()
    while "matching" not in app.extensions and time.monotonic() - start < 120:
        time.sleep(0.1)
    assert "matching" in app.extensions and "index_sync" in app.extensions
