"""An encoding job of N records on RQ workers, with a kill -9 of the first worker part-way through.

Prints the progress as the job's row shows it, when the worker was killed, and what the second worker
did: that the job finished, how many texts were encoded in all (done == total means none twice) and
the throughput. Needs Redis (MATCH_REDIS_URL, default redis://127.0.0.1:6379/14: only this run's keys
are touched and deleted).

    python -m bench.bench_jobs --projects 20000                 # synthetic vectors: the job machinery
    python -m bench.bench_jobs --projects 2000 --model e5       # the real model (slow on small machines)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker", "--name", name],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=20000)
    parser.add_argument("--model", default="synthetic", help="synthetic (default) or e5")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--kill-at", type=float, default=0.4, help="kill -9 the first worker at this share")
    parser.add_argument("--redis", default=os.environ.get("MATCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--stale", type=int, default=10, help="MATCH_JOB_STALE_SECONDS for the run")
    args = parser.parse_args(argv)

    import redis
    from sqlalchemy import delete, select

    from app import create_app
    from app.cli import upgrade_database
    from app.demo.synthetic import load_synthetic
    from app.extensions import db
    from app.jobs import start_job
    from models import EmbeddingRecord, Job, JobKind, JobStatus, Project

    queue = f"bench-jobs-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    settings: dict[str, Any] = {
        "DATABASE_URL": f"sqlite:///{folder / 'match.db'}",
        "INDEX_DIR": str(folder / "index"),
        "SECRET_KEY": "bench",
        "EMBEDDING_MODEL": args.model,
        "REDIS_URL": args.redis,
        "JOB_QUEUE": queue,
        "JOB_STALE_SECONDS": args.stale,
    }
    app = create_app(settings)
    upgrade_database(app)
    t0 = time.perf_counter()
    engine = app.extensions["db"]["engine"]
    load_synthetic(engine, args.projects, 200, echo=lambda _s: None)
    with engine.begin() as con:  # nothing stored: every project text is to be encoded, as after an import
        con.execute(delete(EmbeddingRecord).where(EmbeddingRecord.owner_kind == "project"))
        ids = list(con.scalars(select(Project.id)))
    print(f"{args.projects} projects loaded in {time.perf_counter() - t0:.1f} s (vectors dropped)")

    env = {**os.environ, "HF_HUB_OFFLINE": "1", **{f"MATCH_{k}": str(v) for k, v in settings.items()}}
    params = {"only": {"project": ids}, "batch_size": args.batch_size}
    job_id = start_job(JobKind.ENCODE, params, app=app)

    def row() -> Job:
        session = db.new_session(app)
        try:
            job = session.get(Job, job_id)
            assert job is not None
            session.expunge(job)
            return job
        finally:
            session.close()

    store = redis.Redis.from_url(args.redis)
    first = _worker(env, f"{queue}-first", folder / "first.log")
    started = time.perf_counter()
    killed_at = None
    second = None
    try:
        last = -1
        while True:
            job = row()
            if job.done != last:
                at = time.perf_counter() - started
                print(f"  {at:7.1f} s  {job.status.value}  {job.done}/{job.total}  {job.message or ''}")
                last = job.done
            if killed_at is None and job.total and job.done >= args.kill_at * job.total:
                _stop(first, signal.SIGKILL)
                killed_at = time.perf_counter() - started
                print(f"kill -9 of the first worker at {killed_at:.1f} s with {job.done}/{job.total} stored")
                second = _worker(env, f"{queue}-second", folder / "second.log")
            if job.finished:
                break
            time.sleep(0.5)
        took = time.perf_counter() - started
        print(
            f"job {job.status.value}: {job.done}/{job.total} encoded, attempts {job.attempt}, {took:.1f} s "
            f"({job.done / took:.0f} texts/s including the {args.stale} s until the dead worker was noticed)"
        )
        print("nothing encoded twice" if job.done == job.total == args.projects else "MISMATCH: see the row")
        if job.status is JobStatus.FAILED:
            print("error:", job.error)
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc, signal.SIGTERM)
        keys = list(store.scan_iter(f"*{queue}*"))
        if keys:
            store.delete(*keys)
        for registry in ("rq:queues", "rq:workers"):
            for member in store.smembers(registry):
                if queue.encode() in member:
                    store.srem(registry, member)
        engine.dispose()


if __name__ == "__main__":
    main()
