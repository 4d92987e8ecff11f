"""Imports as background jobs without Redis (a thread of the web process): the page flow, a run that dies
mid-write and is resumed, refused files, the command line. tests/app/test_import_job_rq.py kills a real
RQ worker with -9."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app.extensions import db
from app.jobs import requeue_abandoned, run_job, wait_all, wait_for
from embeddings import text_hash
from models import EmbeddingRecord, Institution, Job, JobKind, JobStatus, Project
from models.accounts import AuditLog
from models.base import utcnow
from models.jobs import JobFile

HEAD = "项目编号,名称,组别,所属赛事,获奖等级,行业,省份,城市,发展阶段,拟融资金额（万元）,融资轮次,简介,需求"
LINE = (
    "IJ-{n:04d},青稞精酿{n}号,企业组,7-R25,无,现代农业,西藏自治区,拉萨市,成长期,800,A轮,"
    "以青稞为原料酿造第{n}号精酿啤酒。,融资"
)
INST_HEAD = "名称,机构类型,省份,简介"
INST_LINE = "高原创投{n}号,创业投资机构,西藏自治区,专注高原特色产业早期投资的第{n}号基金。"


class Killed(BaseException):
    """Stands for a kill -9: nothing in the job catches it, the row is left running."""


def _csv(n: int, line: str = LINE, head: str = HEAD) -> bytes:
    return ("\n".join([head] + [line.format(n=i) for i in range(n)]) + "\n").encode("utf-8-sig")


def _login(client: Any, username: str = "admin") -> None:
    from app.auth.accounts import DEMO_ACCOUNTS

    password = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}[username]
    client.post("/login", data={"username": username, "password": password})


def _queue_from_pages(client: Any, data: bytes, name: str = "batch.csv", kind: str = "projects") -> str:
    """Upload, keep the guessed columns, preview, commit; return the job page's address."""
    r = client.post("/imports/", data={"kind": kind, "file": (io.BytesIO(data), name)})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    token = r.headers["Location"].split("/")[-2]
    page = client.get(f"/imports/{token}/mapping").get_data(as_text=True)
    chosen = re.findall(r'<select name="(col\d+)"[^>]*>.*?<option value="([^"]*)" selected', page, re.S)
    assert client.post(f"/imports/{token}/mapping", data=dict(chosen)).status_code == 302
    assert client.get(f"/imports/{token}/preview").status_code == 200
    r = client.post(f"/imports/{token}/commit")
    assert r.status_code == 302 and "/imports/jobs/" in r.headers["Location"], r.get_data(as_text=True)[:500]
    return str(r.headers["Location"])


def _user_id(app: Flask, username: str) -> int:
    from models.accounts import User

    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))  # type: ignore[return-value]


def _organiser_contest(app: Flask) -> str:
    from models.accounts import User

    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "organiser"))
        return str(user.contests[0].code)


def _job_id(location: str) -> int:
    return int(location.rstrip("/").split("/")[-1])


def _row(app: Flask, job_id: int) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        db.session.expunge(job)
        return job


def _count(app: Flask, model: type = Project, prefix: str = "青稞精酿") -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)).where(model.name.startswith(prefix))) or 0


def _audits(app: Flask, action: str = "import.projects") -> list[AuditLog]:
    with app.app_context():
        return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def _encoded_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every text the encoder is given (whatever thread runs the job)."""
    import app.services as services

    seen: list[str] = []
    store = services.store_vectors

    def counted(s: Any, kind: str, items: Any, embedder: Any) -> Any:
        seen.extend(t for _i, t in items)
        return store(s, kind, items, embedder)

    monkeypatch.setattr(services, "store_vectors", counted)
    return seen


def _die_after(monkeypatch: pytest.MonkeyPatch, calls: int, name: str = "write_project") -> None:
    """Make the import job 'die' (as if killed) at the calls-th row it writes."""
    import app.intake.importjob as importjob

    real = getattr(importjob, name)
    count = [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        if count[0] == calls:
            raise Killed()
        return real(*args, **kwargs)

    monkeypatch.setattr(importjob, name, dying)


def _abandon_and_requeue(app: Flask, job_id: int) -> None:
    """Let the dead run's heartbeat go stale, then do what every `flask worker` does: queue it again."""
    with app.app_context():
        db.session.execute(
            update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
    assert requeue_abandoned(app) == [job_id]


def test_the_page_queues_the_import_shows_its_progress_then_the_summary(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(EMBEDDING_MODEL="synthetic")
    client = app.test_client()
    _login(client, "organiser")
    encoded = _encoded_texts(monkeypatch)
    location = _queue_from_pages(client, _csv(30).replace(b"7-R25", _organiser_contest(app).encode()))
    job_id = _job_id(location)
    page = client.get(location).get_data(as_text=True)
    assert f'data-job-url="/api/jobs/{job_id}"' in page and "imports/job.js" in page
    job = wait_for(app, job_id, timeout=120)
    assert job.kind is JobKind.IMPORT and job.status is JobStatus.DONE, job.error
    # one bar: 30 rows written, then their 30 texts encoded
    assert (job.done, job.total, job.attempt) == (60, 60, 1)
    progress = client.get(f"/api/jobs/{job_id}").get_json()
    assert (progress["kind"], progress["kind_label"], progress["percent"]) == ("import", "批量导入", 100)
    page = client.get(location)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="import-done"' in text
    assert "新增 30 条、更新 0 条、未变化 0 条参赛项目" in text and "生成向量 30 条" in text
    assert "继续导入" in text  # no dead end
    assert _count(app) == 30 and len(encoded) == 30 and len(set(encoded)) == 30
    [line] = _audits(app)
    assert line.detail["created"] == 30 and line.detail["job"] == job_id
    with app.app_context():
        assert db.session.scalar(select(func.count(JobFile.id))) == 0, "the stored file is gone once written"
    # another account sees neither the page nor the progress
    other = app.test_client()
    _login(other, "admin")
    assert other.get(location).status_code == 200, "the secretariat sees every import"
    stranger = app.test_client()
    _login(stranger, "fund")
    assert stranger.get(location).status_code in (403, 404)
    assert stranger.get(f"/api/jobs/{job_id}").status_code == 404


def test_the_same_file_again_writes_nothing_and_encodes_nothing(make_app: Any, monkeypatch: Any) -> None:
    app = make_app(EMBEDDING_MODEL="synthetic")
    client = app.test_client()
    _login(client)
    first = _queue_from_pages(client, _csv(12))
    wait_all(app)
    assert _row(app, _job_id(first)).status is JobStatus.DONE
    encoded = _encoded_texts(monkeypatch)
    again = _queue_from_pages(client, _csv(12))
    wait_all(app)
    job = _row(app, _job_id(again))
    assert (job.status, job.done, job.total) == (JobStatus.DONE, 0, 0)
    assert "新增 0 条、更新 0 条、未变化 12 条" in client.get(again).get_data(as_text=True)
    assert _count(app) == 12 and encoded == []


def test_a_run_that_dies_mid_write_keeps_whole_chunks_and_the_next_run_finishes_without_doubles(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.intake.importjob import queue_import

    app = make_app(EMBEDDING_MODEL="synthetic")
    client = app.test_client()
    _login(client)
    job_id = queue_import(
        app, "projects", "big.csv", _csv(45), user_id=_user_id(app, "admin"), dispatch=False, chunk=10
    )
    encoded = _encoded_texts(monkeypatch)
    _die_after(monkeypatch, 24)  # in the third chunk of ten
    with pytest.raises(Killed):
        run_job(app, job_id)
    dead = _row(app, job_id)
    assert dead.status is JobStatus.RUNNING and (dead.done, dead.total) == (20, 45)
    assert _count(app) == 20, "two whole chunks, the third rolled back"
    assert encoded == [] and _audits(app) == [], "not imported yet: no audit line"
    page = client.get(f"/imports/jobs/{job_id}").get_data(as_text=True)
    assert 'id="import-done"' not in page and "正在导入" in page and "不计为已完成" in page

    monkeypatch.undo()  # the next worker is healthy
    encoded = _encoded_texts(monkeypatch)
    _abandon_and_requeue(app, job_id)
    job = wait_for(app, job_id, timeout=120)
    assert job.status is JobStatus.DONE and job.attempt == 2, job.error
    assert (job.done, job.total) == (90, 90), "45 rows written, 45 texts encoded"
    assert _count(app) == 45
    with app.app_context():
        names = db.session.scalars(select(Project.name).where(Project.name.startswith("青稞精酿"))).all()
        ids = db.session.scalars(select(Project.id).where(Project.name.startswith("青稞精酿"))).all()
        vectors = db.session.scalars(
            select(EmbeddingRecord.text_hash).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id.in_(ids)
            )
        ).all()
    assert sorted(names) == sorted(f"青稞精酿{i}号" for i in range(45)), "none twice, none missing"
    assert len(encoded) == 45 and max(Counter(encoded).values()) == 1, "each text encoded once"
    assert len(vectors) == 45 and set(vectors) == {text_hash(t) for t in encoded}
    # the summary counts the rows as the file found the database: all new, none "unchanged"
    text = client.get(f"/imports/jobs/{job_id}").get_data(as_text=True)
    assert "新增 45 条、更新 0 条、未变化 0 条" in text
    [line] = _audits(app)
    assert line.detail["created"] == 45


def test_a_run_that_dies_while_encoding_encodes_only_what_was_not_stored(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.intake.importjob import queue_import

    app = make_app(EMBEDDING_MODEL="synthetic")
    job_id = queue_import(app, "projects", "b.csv", _csv(40), dispatch=False, chunk=15)
    run = _row(app, job_id)
    import app.services as services

    real = services.store_vectors
    batches = [0]

    def dying(s: Any, k: Any, items: Any, e: Any) -> Any:
        batches[0] += 1
        if batches[0] == 3:
            raise Killed()
        return real(s, k, items, e)

    monkeypatch.setattr(services, "store_vectors", dying)
    with app.app_context():
        db.session.execute(update(Job).where(Job.id == run.id).values(params={**run.params, "batch_size": 8}))
        db.session.commit()
    with pytest.raises(Killed):
        run_job(app, job_id)
    dead = _row(app, job_id)
    assert (dead.done, dead.total) == (40 + 16, 80), "every row, and two batches of vectors"
    monkeypatch.undo()
    encoded = _encoded_texts(monkeypatch)
    _abandon_and_requeue(app, job_id)
    job = wait_for(app, job_id, timeout=120)
    assert job.status is JobStatus.DONE and (job.done, job.total) == (80, 80), job.error
    assert len(encoded) == 24 and len(set(encoded)) == 24, "only the 24 texts without a stored vector"
    assert _count(app) == 40


def test_institutions_resume_by_their_committed_progress_without_doubles(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.intake.importjob import queue_import

    app = make_app(EMBEDDING_MODEL="synthetic")
    data = _csv(25, INST_LINE, INST_HEAD)
    job_id = queue_import(app, "institutions", "inst.csv", data, dispatch=False, chunk=10)
    import app.intake.importjob as importjob

    real = importjob.Institution
    made = [0]

    def dying(**values: Any) -> Any:
        made[0] += 1
        if made[0] == 15:
            raise Killed()
        return real(**values)

    monkeypatch.setattr(importjob, "Institution", dying)
    with pytest.raises(Killed):
        run_job(app, job_id)
    assert _count(app, Institution, "高原创投") == 10
    monkeypatch.undo()
    # without Redis nothing requeues it: the secretariat's button on the import's page resumes it
    with app.app_context():
        stale = utcnow() - timedelta(hours=1)
        db.session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=stale))
        db.session.commit()
    client = app.test_client()
    _login(client)
    page = client.get(f"/imports/jobs/{job_id}").get_data(as_text=True)
    assert "运行进程已停止响应" in page and "从中断处继续导入" in page
    r = client.post("/admin/jobs/retry", data={"job_id": str(job_id)})
    assert r.status_code == 302
    job = wait_for(app, job_id, timeout=120)
    assert job.status is JobStatus.DONE, job.error
    assert _count(app, Institution, "高原创投") == 25
    assert len(_audits(app, "import.institutions")) == 1


def test_a_chunk_written_again_creates_no_project_twice(make_app: Any, monkeypatch: Any) -> None:
    """Even if the progress were lost (set back to nothing), the stable keys find the rows written."""
    from app.intake.importjob import queue_import

    app = make_app(EMBEDDING_MODEL="synthetic")
    job_id = queue_import(app, "projects", "c.csv", _csv(30), dispatch=False, chunk=10)
    _die_after(monkeypatch, 25)
    with pytest.raises(Killed):
        run_job(app, job_id)
    assert _count(app) == 20
    monkeypatch.undo()
    with app.app_context():
        db.session.execute(update(Job).where(Job.id == job_id).values(done=0))
        db.session.commit()
    _abandon_and_requeue(app, job_id)
    assert wait_for(app, job_id, timeout=120).status is JobStatus.DONE
    assert _count(app) == 30


def test_a_file_refused_at_commit_writes_nothing_and_lists_its_rows(make_app: Any) -> None:
    from app.intake.importjob import queue_import

    app = make_app(EMBEDDING_MODEL="synthetic")
    client = app.test_client()
    _login(client)
    bad = _csv(3).decode("utf-8-sig").replace("IJ-0001,青稞精酿1号,企业组", "IJ-0001,青稞精酿1号,大企业组")
    admin = _user_id(app, "admin")
    job_id = queue_import(app, "projects", "bad.csv", bad.encode("utf-8"), user_id=admin)
    job = wait_for(app, job_id, timeout=60)
    assert job.status is JobStatus.FAILED and job.error is not None
    assert job.error.startswith("1 行有误，未导入任何数据（第 3 行：组别") and job.done == 0
    page = client.get(f"/imports/jobs/{job_id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 422 and "第 3 行" in text and "修改文件后重新上传" in text
    assert _count(app) == 0 and _audits(app) == []
    with app.app_context():
        assert db.session.scalar(select(func.count(JobFile.id))) == 1, "kept for a retry"


def test_a_job_page_of_another_kind_or_a_missing_file_is_handled(make_app: Any) -> None:
    from app.intake.importjob import queue_import

    app = make_app(EMBEDDING_MODEL="synthetic")
    client = app.test_client()
    _login(client)
    from app.jobs import start_job

    other = start_job(JobKind.ENCODE, {"only": {"project": []}}, app=app)
    wait_for(app, other)
    assert client.get(f"/imports/jobs/{other}").status_code == 404
    job_id = queue_import(app, "projects", "gone.csv", _csv(2), dispatch=False)
    with app.app_context():
        db.session.execute(JobFile.__table__.delete().where(JobFile.job_id == job_id))
        db.session.commit()
    run = run_job(app, job_id)
    assert run is not None and run.status is JobStatus.FAILED
    assert "请重新上传文件" in (_row(app, job_id).error or "")


def test_the_command_runs_the_same_job_in_the_foreground(app: Flask, runner: Any, tmp_path: Any) -> None:
    path = tmp_path / "cli.csv"
    path.write_bytes(_csv(6))
    r = runner.invoke(args=["import", "projects", str(path)])
    assert r.exit_code == 0, r.output
    assert "imported 6 rows: 6 new, 0 changed, 0 unchanged" in r.output and "encoded project 6" in r.output
    with app.app_context():
        job = db.session.scalars(select(Job).where(Job.kind == JobKind.IMPORT)).one()
        assert (job.status, job.params["via"]) == (JobStatus.DONE, "cli")
    [line] = _audits(app)
    assert line.detail["via"] == "cli" and line.detail["created"] == 6
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv(2).replace(b"7-R25", b"7-R99"))
    r = runner.invoke(args=["import", "projects", str(bad)])
    assert r.exit_code == 1 and "第 2 行" in r.output and "找不到赛事" in r.output
    assert _count(app) == 6
