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
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._workers import drop_queue, flask_worker, job_row, rq_app, start_worker, stop, worker_env


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

    from app.demo.synthetic import load_synthetic
    from app.jobs import start_job
    from models import EmbeddingRecord, JobKind, JobStatus, Project

    queue = f"bench-jobs-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    app = rq_app(folder, queue, args.redis, args.stale, args.model)
    t0 = time.perf_counter()
    engine = app.extensions["db"]["engine"]
    load_synthetic(engine, args.projects, 200, echo=lambda _s: None)
    with engine.begin() as con:  # nothing stored: every project text is to be encoded, as after an import
        con.execute(delete(EmbeddingRecord).where(EmbeddingRecord.owner_kind == "project"))
        ids = list(con.scalars(select(Project.id)))
    print(f"{args.projects} projects loaded in {time.perf_counter() - t0:.1f} s (vectors dropped)")

    env = worker_env(app, MATCH_EMBEDDING_MODEL=args.model)
    params = {"only": {"project": ids}, "batch_size": args.batch_size}
    job_id = start_job(JobKind.ENCODE, params, app=app)

    store = redis.Redis.from_url(args.redis)
    first = start_worker(flask_worker(f"{queue}-first"), env, folder / "first.log")
    started = time.perf_counter()
    killed_at = None
    second = None
    try:
        last = -1
        while True:
            job = job_row(app, job_id)
            if job.done != last:
                at = time.perf_counter() - started
                print(f"  {at:7.1f} s  {job.status.value}  {job.done}/{job.total}  {job.message or ''}")
                last = job.done
            if killed_at is None and job.total and job.done >= args.kill_at * job.total:
                stop(first, signal.SIGKILL, 60)
                killed_at = time.perf_counter() - started
                print(f"kill -9 of the first worker at {killed_at:.1f} s with {job.done}/{job.total} stored")
                second = start_worker(flask_worker(f"{queue}-second"), env, folder / "second.log")
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
                stop(proc, signal.SIGTERM, 60)
        drop_queue(store, queue)
        engine.dispose()


if __name__ == "__main__":
    main()
