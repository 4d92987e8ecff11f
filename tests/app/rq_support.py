"""What the RQ tests share: a fresh queue on the real Redis; the workers are bench/_workers.py's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from bench._workers import counting_worker, drop_queue, flask_worker, job_row, start_worker, stop, worker_env

__all__ = ["counting_worker", "flask_worker", "fresh_queue", "job_row", "start_worker", "stop", "worker_env"]


def fresh_queue(redis_url: str, prefix: str) -> Iterator[str]:
    """Yield a new queue name on the Redis at redis_url (skip, saying why, when it does not answer);
    delete the queue's keys and registry entries afterwards."""
    redis = pytest.importorskip("redis", reason="Redis tests skipped: the redis client is not installed")
    store = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        store.ping()
    except Exception as exc:  # any failure to reach it means: skip, saying why
        pytest.skip(f"Redis tests skipped: no server at {redis_url} ({exc.__class__.__name__})")
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    yield name
    drop_queue(store, name)
