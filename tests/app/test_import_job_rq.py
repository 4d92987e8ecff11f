"""An import on a real RQ worker, killed with -9 while it writes the rows; a second worker finishes it.

Uses the real Redis of this machine (database 13 unless MATCH_TEST_IMPORT_REDIS_URL says otherwise), a
queue and worker names of its own (deleted afterwards), and the synthetic embedder in the workers; the
workers log every text they encode (bench/counting_worker.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq_support import counting_worker, finished_by, fresh_queue, job_row, start_worker, stop, worker_env
from sqlalchemy import func, select

from app.extensions import db
from bench.counting_worker import read_log
from embeddings import text_hash
from models import EmbeddingRecord, JobStatus, Project
from models.accounts import User

REDIS_URL = os.environ.get("MATCH_TEST_IMPORT_REDIS_URL", "redis://127.0.0.1:6379/13")

pytestmark = pytest.mark.redis

ROWS = 3000
CHUNK = 100
STALE = 8  # seconds without a heartbeat before a running job counts as abandoned
HEAD = "项目编号,名称,组别,所属赛事,行业,省份,发展阶段,简介"
LINE = (
    "RQ-{n:05d},雪域青稞工坊{n}号,企业组,7-R{c:02d},现代农业,西藏自治区,成长期,"
    "以青稞为原料开发第{n}号低糖主食产线。"
)


@pytest.fixture()
def queue_name() -> Iterator[str]:
    """A fresh queue on the real Redis (skipped, saying why, when it does not answer); cleaned afterwards."""
    yield from fresh_queue(REDIS_URL, "import-test")


def _csv(n: int) -> bytes:
    lines = [LINE.format(n=i, c=1 + i % 30) for i in range(n)]
    return ("\n".join([HEAD, *lines]) + "\n").encode("utf-8-sig")


def _worker(app: Any, name: str, log: Path, encoded: Path) -> subprocess.Popen[bytes]:
    env = worker_env(app, MATCH_EMBEDDING_MODEL="synthetic")
    return start_worker(counting_worker(encoded, name), env, log)


def _imported(app: Any) -> list[Project]:
    session = db.new_session(app)
    try:
        return list(session.scalars(select(Project).where(Project.ref.startswith("RQ-"))))
    finally:
        session.close()


def test_an_import_survives_kill_9_of_its_worker_and_a_second_worker_finishes_it_encoding_each_text_once(
    make_app: Any, queue_name: str, tmp_path: Path
) -> None:
    from app.auth.accounts import DEMO_ACCOUNTS
    from app.intake.importjob import queue_import
    from app.services import project_record_text

    app = make_app(
        REDIS_URL=REDIS_URL, JOB_QUEUE=queue_name, JOB_STALE_SECONDS=STALE, EMBEDDING_MODEL="synthetic"
    )
    client = app.test_client()
    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}["admin"]
    client.post("/login", data={"username": "admin", "password": password})
    with app.app_context():
        admin = db.session.scalar(select(User.id).where(User.username == "admin"))
        before = db.session.scalar(select(func.count(Project.id)))
    data = _csv(ROWS)
    job_id = queue_import(app, "projects", "rq.csv", data, user_id=admin, chunk=CHUNK)
    assert job_row(app, job_id).status is JobStatus.QUEUED, "nothing runs it in the web process"

    first_log, second_log = tmp_path / "first.encoded", tmp_path / "second.encoded"
    first = _worker(app, f"{queue_name}-first", tmp_path / "first.log", first_log)
    try:
        deadline = time.monotonic() + 240
        while True:
            job = job_row(app, job_id)
            if job.total == ROWS and 0 < job.done < ROWS:
                break  # writing the rows: kill it now
            assert job.done < ROWS, f"the worker wrote every row before the kill ({job.done})"
            assert job.status is not JobStatus.FAILED, job.error
            assert first.poll() is None, (tmp_path / "first.log").read_text("utf-8")
            assert time.monotonic() < deadline, "the first worker wrote nothing: " + (
                tmp_path / "first.log"
            ).read_text("utf-8")
            time.sleep(0.02)
    finally:
        stop(first, signal.SIGKILL)
    killed = job_row(app, job_id)
    assert killed.status is JobStatus.RUNNING and killed.attempt == 1
    assert 0 < killed.done < ROWS and killed.done % CHUNK == 0, "whole chunks, committed with their progress"
    assert len(_imported(app)) == killed.done, "the rows of the committed chunks, nothing else"
    assert read_log(first_log) == [], "killed before any encoding"
    page = client.get(f"/imports/jobs/{job_id}").get_data(as_text=True)
    assert 'id="import-done"' not in page and "不计为已完成" in page, "not shown as imported"
    assert client.get(f"/api/jobs/{job_id}").get_json()["finished"] is False

    second = _worker(app, f"{queue_name}-second", tmp_path / "second.log", second_log)
    job = finished_by(second, app, job_id, tmp_path / "second.log")
    assert (job.done, job.total) == (2 * ROWS, 2 * ROWS), "every row written, then every text encoded"

    projects = _imported(app)
    assert len(projects) == ROWS and len({p.ref for p in projects}) == ROWS, "none twice, none missing"
    with app.app_context():
        assert db.session.scalar(select(func.count(Project.id))) == before + ROWS
        texts = {p.id: text_hash(project_record_text(db.session.get(Project, p.id))) for p in projects}
        vectors = db.session.execute(
            select(EmbeddingRecord.owner_id, EmbeddingRecord.model, EmbeddingRecord.text_hash).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id.in_(list(texts))
            )
        ).all()
    assert len(vectors) == ROWS and all(m == "synthetic" and texts[o] == h for o, m, h in vectors)
    encoded = read_log(first_log) + read_log(second_log)
    assert len(encoded) == ROWS and max(Counter(encoded).values()) == 1, "each text encoded once"
    assert {h for _m, h in encoded} == set(texts.values())
    page = client.get(f"/imports/jobs/{job_id}").get_data(as_text=True)
    assert f"新增 {ROWS} 条、更新 0 条、未变化 0 条" in page, "the summary of the plan made before the kill"


def test_the_command_queues_the_import_for_the_workers_and_follows_it(
    make_app: Any, queue_name: str, tmp_path: Path
) -> None:
    app = make_app(
        REDIS_URL=REDIS_URL, JOB_QUEUE=queue_name, JOB_STALE_SECONDS=STALE, EMBEDDING_MODEL="synthetic"
    )
    path = tmp_path / "queued.csv"
    path.write_bytes(_csv(50))
    worker = _worker(app, f"{queue_name}-w", tmp_path / "w.log", tmp_path / "w.encoded")
    try:
        result = app.test_cli_runner().invoke(args=["import", "projects", str(path), "--enqueue"])
    finally:
        stop(worker, signal.SIGTERM)
    assert result.exit_code == 0, result.output + (tmp_path / "w.log").read_text("utf-8")
    assert "queued for the workers" in result.output
    assert "imported 50 rows: 50 new, 0 changed, 0 unchanged" in result.output
    assert "encoded project 50; unchanged 0" in result.output
    assert len(_imported(app)) == 50 and len(read_log(tmp_path / "w.encoded")) == 50, "encoded by the worker"
