"""What the RQ tests share: a fresh queue on the real Redis, `flask worker` children, and stopping them."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


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
    keys = list(store.scan_iter(f"*{name}*"))
    if keys:
        store.delete(*keys)
    for registry in ("rq:queues", "rq:workers"):
        for member in store.smembers(registry):
            if name.encode() in member:
                store.srem(registry, member)


def start_worker(
    app: Any, redis_url: str, queue: str, argv: Sequence[str], log: Path, stale: int, **env: str
) -> subprocess.Popen[bytes]:
    """Start a worker process (argv) on the app's database and the queue, in its own process group."""
    settings = {
        **os.environ,
        "MATCH_DATABASE_URL": app.config["DATABASE_URL"],
        "MATCH_INDEX_DIR": app.config["INDEX_DIR"],
        "MATCH_SECRET_KEY": "test-secret",
        "MATCH_REDIS_URL": redis_url,
        "MATCH_JOB_QUEUE": queue,
        "MATCH_JOB_STALE_SECONDS": str(stale),
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(argv), cwd=REPO, env=settings, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send sig to the worker's process group; SIGKILL it if it has not ended within 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
