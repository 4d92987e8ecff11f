"""Import a contest-scale file (20,000 project rows): rows/s and peak memory, then the same file again.

Builds a CSV from the demo projects (each row a distinct project with its own project number), imports it
into a fresh database through the same path as the page and `flask import projects` (read, map, validate,
one transaction), imports it again (nothing created, nothing encoded), then encodes a sample of the new
rows with the configured model to give the encoding rate (the rows are committed before encoding starts:
a kill during encoding loses no row, `flask embed` finishes the vectors).

    python bench/bench_import.py [--rows 20000] [--encode 128] [--model e5] [--database-url URL]
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


def kill_midway(url: str, folder: Path, rows: int, after: float) -> None:
    """Run `flask import projects` on another file in a child process, SIGKILL it half-way, count rows."""
    import signal
    import subprocess

    from sqlalchemy import create_engine, func, select

    from models import Project

    engine = create_engine(url)
    with engine.connect() as conn:
        before = conn.scalar(select(func.count(Project.id)))
    path = folder / "second.csv"
    path.write_bytes(build_csv(rows).replace(b"B-", b"K-"))
    env = {**os.environ, "MATCH_DATABASE_URL": url, "MATCH_MATCHING_EAGER": "false"}
    child = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "import", "projects", str(path)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(after)
    if child.poll() is not None:
        print(f"the child import ended (exit {child.returncode}) before the kill: no mid-way check")
        return
    child.send_signal(signal.SIGKILL)
    child.wait()
    with engine.connect() as conn:
        after_kill = conn.scalar(select(func.count(Project.id)))
    engine.dispose()
    verdict = "unchanged" if after_kill == before else f"CHANGED by {after_kill - before}"
    print(f"`flask import projects` of another {rows} rows killed (SIGKILL) after {after:.0f} s: "
          f"projects {before} -> {after_kill} ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--encode", type=int, default=128, help="New rows to encode for the encoding rate (0: none)."
    )
    parser.add_argument("--model", default="e5", help="Embedding model spec for the encoding sample.")
    parser.add_argument("--database-url", default=None, help="Default: SQLite in a temporary folder.")
    parser.add_argument(
        "--no-kill", dest="kill", action="store_false",
        help="Skip the check that a `flask import` killed half-way leaves the database as it was.",
    )
    args = parser.parse_args()

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
    if args.kill:
        kill_midway(url, folder, args.rows, import_seconds * 0.9)

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
