"""What the RQ benchmarks (bench_import.py --rq, bench_jobs.py) and the RQ tests share.

An app on a queue of its own, the environment and command lines of its worker processes, starting them
in their own process group and stopping them, reading a job's row, and deleting the queue's keys from
Redis afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask

from app import create_app
from app.cli import upgrade_database
from app.extensions import db
from models import Job

REPO = Path(__file__).resolve().parents[1]


def rq_app(
    folder: Path, queue: str, redis_url: str, stale: int, model: str, database_url: str | None = None
) -> Flask:
    """Return an app (schema upgraded) whose jobs go to queue on the Redis at redis_url.

    Its database is database_url, or SQLite in folder; its indexes are in folder; model encodes.
    """
    app = create_app(
        {
            "DATABASE_URL": database_url or f"sqlite:///{folder / 'match.db'}",
            "INDEX_DIR": str(folder / "index"),
            "SECRET_KEY": "bench",
            "EMBEDDING_MODEL": model,
            "REDIS_URL": redis_url,
            "JOB_QUEUE": queue,
            "JOB_STALE_SECONDS": stale,
        }
    )
    upgrade_database(app)
    return app


def worker_env(app: Flask, **extra: str) -> dict[str, str]:
    """Return the environment of a worker process on the app's database, indexes, Redis and queue.

    extra adds or overrides variables (e.g. MATCH_EMBEDDING_MODEL); the model is otherwise the default.
    """
    config = app.config
    return {
        **os.environ,
        "MATCH_DATABASE_URL": config["DATABASE_URL"],
        "MATCH_INDEX_DIR": config["INDEX_DIR"],
        "MATCH_SECRET_KEY": config["SECRET_KEY"],
        "MATCH_REDIS_URL": config["REDIS_URL"],
        "MATCH_JOB_QUEUE": config["JOB_QUEUE"],
        "MATCH_JOB_STALE_SECONDS": str(config["JOB_STALE_SECONDS"]),
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def flask_worker(name: str) -> list[str]:
    """Return the command line of `flask worker` named name, under this interpreter."""
    return [sys.executable, "-m", "flask", "--app", "app", "worker", "--name", name]


def counting_worker(encoded: Path, name: str) -> list[str]:
    """Return the command line of a worker named name that logs the texts it encodes to encoded."""
    return [sys.executable, str(REPO / "bench" / "counting_worker.py"), str(encoded), "--name", name]


def start_worker(argv: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a worker process (argv, env) in the repository, in its own process group; output to log."""
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(argv), cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes], sig: int, wait: float = 30) -> None:
    """Send sig to the worker's process group; SIGKILL it if it has not ended within wait seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def job_row(app: Flask, job_id: int) -> Job:
    """Return the job's row as it is now in the database (detached from its session)."""
    session = db.new_session(app)
    try:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job
    finally:
        session.close()


def drop_queue(store: Any, name: str) -> None:
    """Delete the keys of the queue name (and of its workers) and its entries in RQ's registries."""
    keys = list(store.scan_iter(f"*{name}*"))
    if keys:
        store.delete(*keys)
    for registry in ("rq:queues", "rq:workers"):
        for member in store.smembers(registry):
            if name.encode() in member:
                store.srem(registry, member)
