"""What the RQ tests share: a fresh queue on the real Redis, a taken-over job finished by a second worker;
the worker processes themselves are bench/_workers.py's."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app.jobs import wait_for
from bench._workers import counting_worker, drop_queue, flask_worker, job_row, start_worker, stop, worker_env
from models import Job, JobStatus

__all__ = [
    "counting_worker",
    "finished_by",
    "flask_worker",
    "fresh_queue",
    "job_row",
    "start_worker",
    "stop",
    "worker_env",
]


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


def finished_by(worker: subprocess.Popen[bytes], app: Flask, job_id: int, log: Path) -> Job:
    """Wait for the worker that took over a killed worker's job to finish it, then stop the worker; return
    the job, asserted done on its second attempt (log: the worker's output, shown when it is not)."""
    try:
        job = wait_for(app, job_id, timeout=300, poll=0.5)
    finally:
        stop(worker, signal.SIGTERM)
    assert job.status is JobStatus.DONE, (job.error, log.read_text("utf-8"))
    assert job.attempt == 2, "queued again once, after the first worker stopped beating"
    return job
