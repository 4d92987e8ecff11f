"""Background jobs on RQ with the real Redis of this machine: workers, a dead queue, kill -9 mid-job.

Each test uses a queue and worker names of its own (in Redis database 14 unless MATCH_TEST_JOBS_REDIS_URL
says otherwise) and deletes only those keys afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rq_support import finished_by, flask_worker, fresh_queue, job_row, start_worker, stop, worker_env
from sqlalchemy import delete, select

from app.extensions import db
from app.jobs import start_job, wait_for
from embeddings import text_hash
from models import EmbeddingRecord, Job, JobKind, JobStatus, Project

REDIS_URL = os.environ.get("MATCH_TEST_JOBS_REDIS_URL", "redis://127.0.0.1:6379/14")

pytestmark = pytest.mark.redis


@pytest.fixture()
def queue_name() -> Iterator[str]:
    """A fresh queue on the real Redis (skipped, saying why, when it does not answer); cleaned afterwards."""
    yield from fresh_queue(REDIS_URL, "jobs-test")


def _settings(queue: str, **extra: Any) -> dict[str, Any]:
    return {"REDIS_URL": REDIS_URL, "JOB_QUEUE": queue, **extra}


def _drop_vectors(app: Any, n: int) -> list[int]:
    """Delete the stored vectors of n projects (an encoding job then has n texts to encode); return ids."""
    with app.app_context():
        s = db.session
        ids = s.scalars(select(Project.id).order_by(Project.id).limit(n)).all()
        project = EmbeddingRecord.owner_kind == "project"
        s.execute(delete(EmbeddingRecord).where(project, EmbeddingRecord.owner_id.in_(ids)))
        s.commit()
    return list(ids)


def _vectors(app: Any, ids: list[int]) -> dict[int, tuple[Any, bytes, str]]:
    with app.app_context():
        e = EmbeddingRecord
        rows = db.session.execute(
            select(e.owner_id, e.updated_at, e.vector, e.text_hash).where(
                e.owner_kind == "project", e.owner_id.in_(ids)
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_jobs_go_to_the_queue_and_a_worker_runs_them(make_app: Any, queue_name: str) -> None:
    app = make_app(**_settings(queue_name))
    ids = _drop_vectors(app, 3)
    job_id = start_job(JobKind.ENCODE, {"only": {"project": ids}}, app=app)
    job = job_row(app, job_id)
    assert job.status is JobStatus.QUEUED and job.rq_id and job.rq_id.startswith(queue_name)
    time.sleep(0.5)
    assert job_row(app, job_id).status is JobStatus.QUEUED, "nothing runs it in the web process"
    from rq import Queue

    from app.jobs import rq_queue

    assert job.rq_id in rq_queue(app).job_ids
    result = app.test_cli_runner().invoke(args=["worker", "--burst", "--name", f"{queue_name}-burst"])
    assert result.exit_code == 0, result.output
    job = job_row(app, job_id)
    assert (job.status, job.done, job.total, job.attempt) == (JobStatus.DONE, 3, 3, 1), job.error
    assert set(_vectors(app, ids)) == set(ids)
    assert isinstance(rq_queue(app), Queue) and rq_queue(app).count == 0


def test_an_import_queued_on_rq_reaches_the_web_index_when_its_job_finishes(
    make_app: Any, queue_name: str
) -> None:
    import io

    from app.services import get_matching

    app = make_app(**_settings(queue_name), INDEX_SYNC_SECONDS=0.1)
    with app.app_context():
        service = get_matching()
        assert service.wait_until_ready(60) and not service.degraded
    client = app.test_client()
    from app.auth.accounts import DEMO_ACCOUNTS

    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}["admin"]
    client.post("/login", data={"username": "admin", "password": password})
    head = "名称,组别,所属赛事,获奖等级,行业,省份,城市,发展阶段,拟融资金额（万元）,融资轮次,简介,需求"
    line = "雪域牦牛乳制品{n},企业组,7-R25,无,现代农业,西藏自治区,拉萨市,成长期,800,A轮,{text},融资"
    text = "以牦牛乳为原料开发奶酪与酸奶第{n}号产线。"
    rows = [line.format(n=i, text=text.format(n=i)) for i in range(3)]
    data = "\n".join([head, *rows]).encode("utf-8-sig")
    r = client.post(
        "/api/imports/projects",
        data={"file": (io.BytesIO(data), "y.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()
    with app.app_context():
        ids = db.session.scalars(select(Project.id).where(Project.name.startswith("雪域牦牛乳制品"))).all()
        job_id = db.session.scalar(select(Job.id).order_by(Job.id.desc()))
    assert len(ids) == 3 and all(pid in service.project_ids() for pid in ids), "searchable at once"
    assert not any(pid in service._proj_index for pid in ids), "no vector before the worker ran"
    assert job_row(app, job_id).status is JobStatus.QUEUED
    result = app.test_cli_runner().invoke(args=["worker", "--burst", "--name", f"{queue_name}-burst"])
    assert result.exit_code == 0, result.output
    assert job_row(app, job_id).status is JobStatus.DONE
    deadline = time.monotonic() + 30
    while not all(pid in service._proj_index for pid in ids):
        assert time.monotonic() < deadline, "the worker's vectors never reached the web index"
        # a ranking applies the change log the worker wrote with the vectors (app.index_sync)
        assert client.get(f"/api/projects/{ids[0]}/matches?kind=fund&k=1").status_code == 200
        time.sleep(0.2)


def test_an_unreachable_queue_fails_the_job_in_chinese_and_keeps_the_rows(make_app: Any) -> None:
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0", JOB_QUEUE="nowhere")
    job_id = start_job(JobKind.ENCODE, {"only": {"project": []}}, app=app)
    job = wait_for(app, job_id, timeout=30)
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.startswith("无法提交到后台任务队列（Redis）")


def _worker(app: Any, name: str, log: Path) -> subprocess.Popen[bytes]:
    return start_worker(flask_worker(name), worker_env(app), log)


def test_a_worker_killed_mid_job_leaves_whole_batches_and_another_finishes_without_re_encoding(
    make_app: Any, queue_name: str, tmp_path: Path
) -> None:
    stale = 12  # seconds without progress before a running job counts as abandoned
    app = make_app(**_settings(queue_name, JOB_STALE_SECONDS=stale))
    ids = _drop_vectors(app, 24)
    job_id = start_job(JobKind.ENCODE, {"batch_size": 4}, app=app)  # the real e5 model, 6 batches
    first = _worker(app, f"{queue_name}-first", tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            job = job_row(app, job_id)
            if job.status is not JobStatus.QUEUED and job.done >= 4:
                break
            assert first.poll() is None, (tmp_path / "first.log").read_text("utf-8")
            time.sleep(0.05)
        else:
            pytest.fail("the first worker encoded no batch: " + (tmp_path / "first.log").read_text("utf-8"))
        stop(first, signal.SIGKILL)
    finally:
        stop(first, signal.SIGKILL)
    killed = job_row(app, job_id)
    assert killed.status is JobStatus.RUNNING and killed.attempt == 1
    assert 4 <= killed.done < 24, f"killed too late to test a resume: {killed.done} done"
    assert killed.done % 4 == 0, "whole batches only"
    before = _vectors(app, ids)
    assert len(before) == killed.done, "each batch commits its vectors and its progress together"

    second = _worker(app, f"{queue_name}-second", tmp_path / "second.log")
    job = finished_by(second, app, job_id, tmp_path / "second.log")
    assert (job.done, job.total) == (24, 24), "every text encoded once: nothing twice, nothing left"
    after = _vectors(app, ids)
    assert set(after) == set(ids)
    for owner_id, stored in before.items():
        assert after[owner_id] == stored, f"project {owner_id} was encoded again"
    from app.services import project_record_text

    with app.app_context():
        for owner_id in ids:
            assert after[owner_id][2] == text_hash(project_record_text(db.session.get(Project, owner_id)))


def test_a_queued_job_whose_message_redis_lost_is_sent_again(make_app: Any, queue_name: str) -> None:
    import redis
    from sqlalchemy import update

    from app.jobs import requeue_abandoned
    from models.base import utcnow

    app = make_app(**_settings(queue_name, JOB_STALE_SECONDS=60))
    ids = _drop_vectors(app, 2)
    waiting = start_job(JobKind.ENCODE, {"only": {"project": ids}}, app=app)
    lost = start_job(JobKind.ENCODE, {"only": {"project": ids}}, app=app)
    first_rq_id = job_row(app, lost).rq_id
    store = redis.Redis.from_url(REDIS_URL)
    store.delete(f"rq:job:{first_rq_id}")  # as if Redis restarted without its data
    assert requeue_abandoned(app) == [], "not before the stale time"
    with app.app_context():
        old = utcnow() - timedelta(minutes=5)
        db.session.execute(update(Job).where(Job.id.in_([waiting, lost])).values(heartbeat_at=old))
        db.session.commit()
    assert requeue_abandoned(app) == [lost], "a job still waiting in the queue is a backlog, not a loss"
    assert job_row(app, lost).rq_id != first_rq_id
    result = app.test_cli_runner().invoke(args=["worker", "--burst", "--name", f"{queue_name}-burst"])
    assert result.exit_code == 0, result.output
    assert job_row(app, lost).status is JobStatus.DONE and job_row(app, waiting).status is JobStatus.DONE
