"""Import a contest-scale file (20,000 project rows): rows/s and peak memory, then the same file again.

Builds a CSV from the demo projects (each row a distinct project with its own project number), imports it
into a fresh database in one step (read, map, validate, one transaction: the JSON API's path), imports it
again (nothing created, nothing encoded), then encodes a sample of the new rows with the configured model
to give the encoding rate.

With --rq the same file goes the way of the import page and `flask import`: an import job (app.intake.
importjob) on a `flask worker` subprocess (Redis at --redis), which checks the file, writes the rows in
committed chunks and encodes them; it prints the phases, the time, rows/s and the worker's peak RSS. With
--kill as well, the first worker is killed with SIGKILL part-way (--kill-phase write: while it writes the
rows; encode: while it encodes them), a second worker takes the job over once its heartbeat is stale, and
the outcome is printed: projects stored (each row once?), vectors, and the encoder calls of both workers
(bench/counting_worker.py logs them: a text encoded twice shows up there).

    python bench/bench_import.py [--rows 20000] [--encode 128] [--model e5] [--database-url URL]
    python bench/bench_import.py --rq [--kill [--kill-phase write|encode] [--kill-at 0.4]]
                                 [--worker-model synthetic] [--redis URL] [--stale 10]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "app" / "demo" / "data" / "projects.json"
REGIONAL = [f"7-R{n:02d}" for n in range(1, 36)]


def peak_rss_mb() -> float:
    """Return this process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_csv(rows: int) -> bytes:
    """Return a UTF-8 (BOM) CSV of distinct projects made from the demo ones, with organisers' headers."""
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            "项目编号",
            "项目名称",
            "参赛组别",
            "赛事编号",
            "所属行业",
            "省份",
            "发展阶段",
            "项目简介",
            "从业人员（人）",
            "营业收入（万元）",
            "知识产权",
            "联系人",
        ]
    )
    for i in range(rows):
        p = demo[i % len(demo)]
        writer.writerow(
            [
                f"B-{i:05d}",
                f"{p['name']}·{i}",
                p["group"],
                REGIONAL[i % len(REGIONAL)],
                p["industry"],
                p["province"] or "",
                p["stage"] or "",
                f"{p['description']}（第{i}号）",
                p["employees"] or "",
                p["revenue_wan"] or "",
                p["ip"] or "",
                p["contact_name"] or "",
            ]
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _vm_hwm_mb(pid: int) -> float:
    """Return a process's peak resident memory so far (VmHWM), in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_rq(args: argparse.Namespace) -> None:
    """Import the file as a job on `flask worker` subprocesses (optionally killing the first); print it."""
    import signal
    import subprocess
    import uuid
    from collections import Counter

    import redis
    from counting_worker import read_log
    from sqlalchemy import func, select

    from app.intake.importjob import load_state, queue_import
    from bench._workers import counting_worker, drop_queue, job_row, rq_app, start_worker, stop, worker_env
    from models import EmbeddingRecord, Project

    queue = f"bench-import-{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="bench-import-rq-"))
    url = args.database_url or f"sqlite:///{folder / 'match.db'}"
    app = rq_app(folder, queue, args.redis, args.stale, args.worker_model, url)
    env = worker_env(app, MATCH_EMBEDDING_MODEL=args.worker_model)
    logs = [folder / "first.encoded", folder / "second.encoded"]

    def worker(n: int) -> subprocess.Popen[bytes]:
        argv = counting_worker(logs[n], queue + str(n))
        return start_worker(argv, env, folder / f"worker{n}.log")

    data = build_csv(args.rows)
    rows = args.rows
    print(
        f"file: {rows} rows, {len(data) / 1024 / 1024:.1f} MB CSV; database {url.split(':')[0]}; "
        f"RQ queue on {args.redis}; workers encode with {args.worker_model}"
    )
    workers = [worker(0)]
    peaks = [0.0, 0.0]
    start = time.perf_counter()
    job_id = queue_import(app, "projects", "bench.csv", data)
    marks: dict[str, float] = {}
    killed: tuple[float, int, int | None] | None = None
    shown = -1
    try:
        while True:
            job = job_row(app, job_id)
            now = time.perf_counter() - start
            for i, proc in enumerate(workers):
                peaks[i] = max(peaks[i], _vm_hwm_mb(proc.pid))
            if job.total == rows and "checked" not in marks:
                marks["checked"] = now
            if job.done >= rows and "written" not in marks:
                marks["written"] = now
            step = int(10 * job.done / job.total) if job.total else -1
            if step != shown:
                shown = step
                print(f"  {now:6.1f} s  attempt {job.attempt}  {job.done} / {job.total}  {job.message or ''}")
            if job.finished:
                break
            phase_done = job.done if job.done < rows else job.done - rows
            in_phase = (job.total == rows) if args.kill_phase == "write" else (job.total or 0) > rows
            if args.kill and killed is None and in_phase and phase_done >= args.kill_at * rows:
                stop(workers[0], signal.SIGKILL)
                job = job_row(app, job_id)
                killed = (now, job.done, job.total)
                print(
                    f"  {now:6.1f} s  SIGKILL of the first worker at {job.done} / {job.total}; "
                    "a second worker starts and takes the job over once its heartbeat is stale"
                )
                workers.append(worker(1))
            time.sleep(0.2)
    finally:
        for proc in workers:
            stop(proc, signal.SIGTERM, 60)
        drop_queue(redis.Redis.from_url(args.redis), queue)
    seconds = time.perf_counter() - start
    job = job_row(app, job_id)
    session = app.extensions["db"]["factory"]()
    try:
        state = load_state(session, job_id) or {}
        stored = session.scalar(select(func.count(Project.id)).where(Project.ref.startswith("B-")))
        numbers = select(func.count(func.distinct(Project.ref))).where(Project.ref.startswith("B-"))
        distinct = session.scalar(numbers)
        ids = select(Project.id).where(Project.ref.startswith("B-")).scalar_subquery()
        vectors = session.scalar(
            select(func.count(EmbeddingRecord.id)).where(
                EmbeddingRecord.owner_kind == "project",
                EmbeddingRecord.owner_id.in_(ids),
                EmbeddingRecord.model == args.worker_model,
            )
        )
    finally:
        session.close()
    report = state.get("report", {})
    print(
        f"job {job.status.name} after {job.attempt} run(s) in {seconds:.1f} s: "
        f"{report.get('created')} new, {report.get('updated')} changed, {report.get('unchanged')} unchanged"
        + (f"; error: {job.error}" if job.error else "")
    )
    if "checked" in marks and "written" in marks:
        write = marks["written"] - marks["checked"]
        print(
            f"  checked in {marks['checked']:.1f} s (queue, worker start, read, validate); rows written in "
            f"{write:.1f} s; end to end {rows / seconds:,.0f} rows/s (rows until written: "
            f"{rows / marks['written']:,.0f} rows/s)"
        )
    second = f", second worker {peaks[1]:.0f} MB" if killed else ""
    print(f"  peak RSS: first worker {peaks[0]:.0f} MB{second}; this process {peak_rss_mb():.0f} MB")
    calls = [read_log(log) for log in logs]
    every = calls[0] + calls[1]
    twice = sum(1 for n in Counter(every).values() if n > 1)
    print(
        f"  outcome: projects {stored} for {rows} rows ({distinct} distinct project numbers); "
        f"vectors {vectors}; encoder calls {len(every)} (first worker {len(calls[0])}, second "
        f"{len(calls[1])}), distinct texts {len(set(every))}, texts encoded twice {twice}"
    )
    if killed is not None:
        encoded = f"{twice} texts encoded twice (the batch in flight)" if twice else "nothing encoded twice"
        written = "every row once" if stored == distinct == rows else "ROWS DIFFER"
        print(f"  killed at {killed[1]} / {killed[2]} after {killed[0]:.1f} s; {encoded}; {written}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--encode", type=int, default=128, help="New rows to encode for the encoding rate (0: none)."
    )
    parser.add_argument("--model", default="e5", help="Embedding model spec for the encoding sample.")
    parser.add_argument("--database-url", default=None, help="Default: SQLite in a temporary folder.")
    parser.add_argument("--rq", action="store_true", help="Import through a `flask worker` (Redis).")
    parser.add_argument("--kill", action="store_true", help="With --rq: SIGKILL the first worker part-way.")
    parser.add_argument("--kill-phase", choices=("write", "encode"), default="write")
    parser.add_argument("--kill-at", type=float, default=0.4, help="Share of the phase done at the kill.")
    parser.add_argument("--worker-model", default="synthetic", help="With --rq: the workers' model.")
    parser.add_argument("--redis", default=os.environ.get("MATCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--stale", type=int, default=10, help="With --rq: MATCH_JOB_STALE_SECONDS.")
    args = parser.parse_args()
    if args.rq:
        run_rq(args)
        return

    from app import create_app
    from app.cli import upgrade_database
    from app.extensions import db
    from app.imports import apply_mapping, guess_mapping, import_rows, read_rows

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    url = args.database_url or f"sqlite:///{folder / 'match.db'}"
    app = create_app(
        {
            "DATABASE_URL": url,
            "INDEX_DIR": str(folder / "index"),
            "EMBEDDING_MODEL": args.model,
            "MATCHING_EAGER": False,
            "TESTING": True,
        }
    )
    upgrade_database(app)
    data = build_csv(args.rows)
    print(f"file: {args.rows} rows, {len(data) / 1024 / 1024:.1f} MB CSV; database {url.split(':')[0]}")
    print(f"peak RSS before the import: {peak_rss_mb():.0f} MB")

    def run(label: str) -> list:
        with app.app_context():
            start = time.perf_counter()
            rows = read_rows("bench.csv", data)
            mapping = guess_mapping("projects", list(rows[0]))
            report, saved = import_rows(db.session, "projects", apply_mapping(rows, mapping, ignored=False))
            seconds = time.perf_counter() - start
            assert report.ok, report.errors[:3]
            print(
                f"{label}: {report.rows} rows in {seconds:.1f} s = {report.rows / seconds:,.0f} rows/s "
                f"({report.created} new, {report.updated} changed, {report.unchanged} unchanged); "
                f"peak RSS {peak_rss_mb():.0f} MB"
            )
            ids = [p.id for p in saved]
            app.extensions["db"]["session"].remove()
            return ids

    start = time.perf_counter()
    new_ids = run("import")
    import_seconds = time.perf_counter() - start
    again = run("same file again")
    assert not again, "a re-import created or changed rows"
    print(f"(one-step import {import_seconds:.1f} s; the page's and the command's job: --rq [--kill])")

    if args.encode and new_ids:
        from sqlalchemy import select

        from app.intake.indexing import index_rows
        from models import Project

        with app.app_context():
            sample = list(db.session.scalars(select(Project).where(Project.id.in_(new_ids[: args.encode]))))
            start = time.perf_counter()
            encoded = index_rows(db.session, "project", sample)
            seconds = time.perf_counter() - start
            rate = encoded / seconds
            print(
                f"encoding ({args.model}, in batches of 64 after "
                f"the commit): {encoded} texts in {seconds:.1f} s = "
                f"{rate:.1f} texts/s -> {args.rows} rows in about "
                f"{args.rows / rate / 60:.0f} min on this machine; "
                f"peak RSS {peak_rss_mb():.0f} MB"
            )
    app.extensions["db"]["engine"].dispose()


if __name__ == "__main__":
    main()
