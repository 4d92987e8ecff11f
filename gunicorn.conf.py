"""Gunicorn settings of `make run`, `make serve` and `make bench-http`: gunicorn -c gunicorn.conf.py.

Environment:
    WORKERS: worker processes (default: one per core). Each opens the index files under
        MATCH_INDEX_DIR written by `flask embed` (nothing is rebuilt when they match the database) and
        follows the others' edits through the index_changes table (app/index_sync.py).
    THREADS: request threads per worker (4).
    HOST, PORT: where to listen (127.0.0.1:5000).
    ACCESS_LOG: "-" (default) logs each request to stdout; empty turns the access log off.
    TIMEOUT: seconds a silent worker may take before it is restarted (60).
"""

from __future__ import annotations

import os
import threading
from typing import Any


def _count(name: str, default: int) -> int:
    """Return a positive whole number from the environment, or stop with a clear message."""
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


wsgi_app = "app:create_app()"
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = _count("WORKERS", os.cpu_count() or 1)
worker_class = "gthread"
threads = _count("THREADS", 4)
timeout = _count("TIMEOUT", 60)
accesslog = os.environ.get("ACCESS_LOG", "-") or None
# Every worker imports the app itself: FAISS/OpenMP state and database connections must not cross a fork.
preload_app = False


_lite_server: Any = None


def on_starting(server: Any) -> None:
    """With MATCH_VECTOR_STORE=milvus:<file>.db, start one milvus-lite server for the workers to share.

    milvus-lite opens a database file in one process only: the master runs a milvus-lite server for the
    file and the workers reach it on a local port (MATCH_VECTOR_STORE=milvus:http://127.0.0.1:<port>).
    """
    global _lite_server
    value = os.environ.get("MATCH_VECTOR_STORE", "").strip()
    if not value.lower().startswith("milvus:") or "://" in value or value.startswith("milvus:unix:"):
        return  # FAISS, or a Milvus server the workers reach themselves
    from pathlib import Path

    from embeddings.stores import LiteServer, parse_store_setting

    setting = parse_store_setting(value, Path(__file__).resolve().parent / "instance")
    assert setting.uri is not None
    _lite_server = LiteServer(setting.uri)
    os.environ["MATCH_VECTOR_STORE"] = f"milvus:{_lite_server.uri}"
    server.log.info("milvus-lite server for %s at %s", setting.uri, _lite_server.uri)


def on_exit(server: Any) -> None:
    """Stop the milvus-lite server started by on_starting, if any."""
    if _lite_server is not None:
        _lite_server.stop()


def post_worker_init(worker: Any) -> None:
    """Build the worker's matching service in the background, so the first ranked request finds it ready.

    Requests that rank before it is built wait for it (app.services.get_matching holds a lock);
    the worker keeps answering its heartbeat meanwhile, so a large index never gets it restarted.
    """
    app = worker.wsgi
    if not app.config.get("MATCHING_EAGER", True):
        return

    def build() -> None:
        from app.services import get_matching
        from embeddings.tokenize import load_tagger

        with app.app_context():
            try:
                get_matching()
                load_tagger()  # what the reasons' keywords are checked with
            except Exception:  # logged; the first ranked request tries again and reports the error
                app.logger.exception("matching service could not be built at worker start")

    threading.Thread(target=build, name="matching-warm-up", daemon=True).start()
