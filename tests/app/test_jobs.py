"""Background jobs in-process (no Redis): imports, reports, progress, the secretariat's list, dry runs."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import delete, func, select, update

from app.extensions import db
from app.jobs import run_job, start_job, wait_for
from embeddings import text_hash
from models import EmbeddingRecord, Job, JobKind, JobStatus, Project
from models.accounts import User
from models.base import utcnow

ROW = (
    "名称,组别,所属赛事,获奖等级,行业,省份,城市,发展阶段,拟融资金额（万元）,融资轮次,简介,需求\n"
    "青稞酵素饮品{n},企业组,7-R25,无,现代农业,西藏自治区,拉萨市,成长期,800,A轮,"
    "以高原青稞为原料开发酵素饮品第{n}号产线。,融资\n"
)


def _csv(n: int) -> bytes:
    head, line = ROW.split("\n")[0], ROW.split("\n")[1]
    return ("\n".join([head] + [line.format(n=i) for i in range(n)]) + "\n").encode("utf-8-sig")


def _user_id(app: Flask, username: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))  # type: ignore[return-value]


def _job(app: Flask, job_id: int) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        assert job is not None
        db.session.expunge(job)
        return job


def test_an_import_is_encoded_by_a_job_in_a_thread_and_each_new_text_once(
    app: Flask, client: Any, auth: Any
) -> None:
    from app.services import get_matching

    with app.app_context():
        service = get_matching()  # the web process's index, loaded from the saved files
        assert service.wait_until_ready(60) and not service.degraded
    auth.login("admin")
    r = client.post(
        "/api/imports/projects",
        data={"file": (io.BytesIO(_csv(5)), "b.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()
    with app.app_context():
        job_id = db.session.scalar(select(func.max(Job.id)))
        ids = db.session.scalars(select(Project.id).where(Project.name.startswith("青稞酵素饮品"))).all()
    job = wait_for(app, job_id, timeout=120)
    assert job.kind is JobKind.ENCODE and job.status is JobStatus.DONE, job.error
    assert (job.done, job.total, job.percent) == (5, 5, 100)
    assert job.started_by_id == _user_id(app, "admin")
    with app.app_context():
        recs = db.session.scalars(
            select(EmbeddingRecord).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id.in_(ids)
            )
        ).all()
        assert len(recs) == 5
        stamps = {r.owner_id: r.updated_at for r in recs}
    # the same records again: every (model, text) vector is stored, nothing is encoded
    again = start_job(JobKind.ENCODE, {"only": {"project": list(ids)}}, app=app)
    assert wait_for(app, again, timeout=60).total == 0
    with app.app_context():
        after = dict(
            db.session.execute(
                select(EmbeddingRecord.owner_id, EmbeddingRecord.updated_at).where(
                    EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id.in_(ids)
                )
            ).all()
        )
    assert after == stamps
    # the vectors reached this process's index as each batch was committed
    assert all(pid in service._proj_index for pid in ids)
    m = client.get(f"/api/projects/{ids[0]}/matches?kind=fund&k=3").get_json()
    assert len(m["items"]) == 3 and not m.get("degraded")


def test_progress_endpoint_shows_a_job_to_its_starter_and_the_secretariat_only(
    app: Flask, client: Any, auth: Any
) -> None:
    job_id = start_job(JobKind.ENCODE, {"only": {"project": []}}, user_id=_user_id(app, "organiser"), app=app)
    wait_for(app, job_id)
    assert client.get(f"/api/jobs/{job_id}").status_code == 401
    for other in ("fund", "project"):
        auth.login(other)
        r = client.get(f"/api/jobs/{job_id}")
        assert r.status_code == 404 and r.get_json()["error"]["message"] == "任务不存在"
        assert client.get(f"/jobs/{job_id}").status_code == 404
        auth.logout()
    for allowed in ("organiser", "admin"):
        auth.login(allowed)
        body = client.get(f"/api/jobs/{job_id}").get_json()
        assert body["status"] == "done" and body["percent"] == 100 and body["kind_label"] == "向量编码"
        page = client.get(f"/jobs/{job_id}")
        assert page.status_code == 200 and "jobs/progress.js" in page.get_data(as_text=True)
        auth.logout()


@pytest.mark.parametrize("raw", ["12.0", "true", "null", "-1", "1e1", "%20", "99999999999999999999"])
def test_hostile_job_ids_in_paths_are_not_found(client: Any, auth: Any, raw: str) -> None:
    auth.login("admin")
    for path in (f"/api/jobs/{raw}", f"/jobs/{raw}", f"/jobs/{raw}/result"):
        r = client.get(path)
        assert r.status_code == 404, path


@pytest.mark.parametrize("raw", ["12.0", "true", "null", "", "1e1", "0", "１２", "12\x00"])
def test_hostile_job_ids_in_the_retry_form_are_refused_in_chinese(client: Any, auth: Any, raw: str) -> None:
    auth.login("admin")
    r = client.post("/admin/jobs/retry", data={"job_id": raw})
    assert r.status_code == 422
    assert "任务编号" in r.get_data(as_text=True)


def test_failed_jobs_are_listed_for_the_secretariat_in_chinese_and_retried(
    app: Flask, client: Any, auth: Any
) -> None:
    bad = start_job(JobKind.REPORT, {"period": {"quarter": "2026Q9"}}, app=app)
    job = wait_for(app, bad)
    assert job.status is JobStatus.FAILED and "季度" in (job.error or ""), job.error
    # a run whose worker died: running, its heartbeat long gone
    dead = start_job(JobKind.ENCODE, {"only": {"need": []}}, app=app, dispatch=False)
    with app.app_context():
        old = utcnow() - timedelta(hours=1)
        db.session.execute(
            update(Job).where(Job.id == dead).values(status=JobStatus.RUNNING, attempt=1, heartbeat_at=old)
        )
        db.session.commit()
    assert client.get("/admin/jobs").status_code == 302  # to the login page
    for role in ("organiser", "fund", "project"):
        auth.login(role)
        assert client.get("/admin/jobs").status_code == 403
        assert client.post("/admin/jobs/retry", data={"job_id": str(bad)}).status_code == 403
        assert client.post("/admin/jobs/rebuild").status_code == 403
        auth.logout()
    auth.login("admin")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert job.error in page and "已中断" in page and page.count('name="job_id"') == 2
    # "12" (a string of digits, as forms send) is an id
    r = client.post("/admin/jobs/retry", data={"job_id": str(dead)}, follow_redirects=True)
    assert "已重新排队" in r.get_data(as_text=True)
    done = wait_for(app, dead)
    assert done.status is JobStatus.DONE and done.attempt == 2
    # a finished job is not retried
    r = client.post("/admin/jobs/retry", data={"job_id": str(dead)}, follow_redirects=True)
    assert "无需重试" in r.get_data(as_text=True)
    assert client.post("/admin/jobs/retry", data={"job_id": "999999"}).status_code == 404


def test_the_quarterly_report_runs_as_a_job_and_only_its_starter_downloads_it(
    app: Flask, client: Any, auth: Any
) -> None:
    auth.login("organiser")
    r = client.post("/jobs/report", data={"quarter": "2026Q3"})
    assert r.status_code == 302
    job_id = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    job = wait_for(app, job_id, timeout=120)
    assert job.status is JobStatus.DONE, job.error
    assert job.result_name == "赛事专报-2026Q3.xlsx"
    body = client.get(f"/api/jobs/{job_id}").get_json()
    assert body["result_url"] == f"/jobs/{job_id}/result"
    xlsx = client.get(body["result_url"])
    assert xlsx.status_code == 200 and xlsx.headers["Cache-Control"] == "private, no-store"
    wb = load_workbook(io.BytesIO(xlsx.data))
    assert len(wb.sheetnames) >= 5
    # every page of the starter shows the job's bar
    assert f'data-job-url="/api/jobs/{job_id}"' in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.login("fund")
    assert client.get(body["result_url"]).status_code == 404
    assert client.post("/jobs/report", data={"quarter": "2026Q3"}).status_code == 403
    auth.logout()
    auth.login("organiser")
    r = client.post("/jobs/report", data={"quarter": "2026Q9"})
    assert r.status_code == 422 and "季度" in r.get_data(as_text=True)


def test_a_run_that_lost_its_row_writes_nothing(app: Flask) -> None:
    """A run thought dead (its row queued again and claimed by another) cannot commit a batch."""
    from app.jobs import JobLost, JobRun

    job_id = start_job(JobKind.ENCODE, {}, app=app, dispatch=False)
    with app.app_context():
        db.session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.RUNNING, attempt=2))
        db.session.commit()
        stale = JobRun(app, job_id, attempt=1, params={})
        session = db.new_session(app)
        try:
            with pytest.raises(JobLost):
                stale.advance(session, 10)
        finally:
            session.close()
    assert _job(app, job_id).done == 0
    assert run_job(app, job_id) is None  # not queued: nobody runs it twice


def test_embed_dry_run_counts_changed_texts_and_encodes_nothing(app: Flask, runner: Any) -> None:
    with app.app_context():
        s = db.session
        pids = s.scalars(select(Project.id).order_by(Project.id)).all()
        project = EmbeddingRecord.owner_kind == "project"
        s.execute(delete(EmbeddingRecord).where(project, EmbeddingRecord.owner_id.in_(pids[:3])))
        changed = s.get(Project, pids[5])
        changed.description += "（新增：第二条产线已投产）"
        s.commit()
        before = s.execute(select(EmbeddingRecord.id, EmbeddingRecord.text_hash)).all()
    r = runner.invoke(args=["embed", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "to encode: 4" in r.output and "project 4, institution 0, need 0" in r.output
    with app.app_context():
        assert db.session.execute(select(EmbeddingRecord.id, EmbeddingRecord.text_hash)).all() == before
        assert db.session.scalar(select(func.count(Job.id))) == 0
    r = runner.invoke(args=["embed"])
    assert r.exit_code == 0, r.output
    assert "encoded project 4, institution 0, need 0" in r.output
    assert runner.invoke(args=["embed", "--dry-run"]).output.strip().endswith("to encode: 0")
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert (job.status, job.done, job.total) == (JobStatus.DONE, 4, 4)
        from app.services import project_record_text

        rec = db.session.scalar(
            select(EmbeddingRecord).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id == pids[5]
            )
        )
        assert rec.text_hash == text_hash(project_record_text(db.session.get(Project, pids[5])))


def test_index_rebuild_command_runs_as_a_recorded_job(app: Flask, runner: Any) -> None:
    r = runner.invoke(args=["index", "rebuild"])
    assert r.exit_code == 0, r.output
    assert "indexes rebuilt" in r.output
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert job.kind is JobKind.INDEX_REBUILD and job.status is JobStatus.DONE


def test_without_redis_there_is_no_worker_to_start(runner: Any) -> None:
    r = runner.invoke(args=["worker"])
    assert r.exit_code != 0 and "MATCH_REDIS_URL is not set" in r.output


def test_the_report_page_offers_the_background_workbook_and_the_import_page_shows_its_bar(
    app: Flask, client: Any, auth: Any
) -> None:
    auth.login("admin")
    page = client.get("/reports/quarterly?quarter=2026Q3").get_data(as_text=True)
    assert 'action="/jobs/report"' in page and 'name="quarter" value="2026Q3"' in page
    # upload, keep the guessed columns, commit: the import job's page shows its bar, then the summary
    r = client.post("/imports/", data={"kind": "projects", "file": (io.BytesIO(_csv(2)), "c.csv")})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    token = r.headers["Location"].split("/")[-2]
    mapping = client.get(f"/imports/{token}/mapping").get_data(as_text=True)
    chosen = re.findall(r'<select name="(col\d+)"[^>]*>.*?<option value="([^"]*)" selected', mapping, re.S)
    assert client.post(f"/imports/{token}/mapping", data=dict(chosen)).status_code == 302
    r = client.post(f"/imports/{token}/commit")
    assert r.status_code == 302
    job_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert f'data-job-url="/api/jobs/{job_id}"' in page and "imports/job.js" in page
    assert wait_for(app, job_id, timeout=120).status is JobStatus.DONE
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="import-done"' in page and "新增 2 条" in page
