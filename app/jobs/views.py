"""Job pages and the progress endpoint: a job's starter and the secretariat see it, nobody else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import or_, select

from app.access import audit, current_user, deny, is_secretariat, login_required, roles_required
from app.api.models import JobOut
from app.api.openapi import operation
from app.extensions import db
from app.jobs import is_abandoned, retry_job, start_job
from app.schemas import Id, InputError
from app.serialize import iso
from app.web.lists import send_xlsx
from models.base import utcnow
from models.enums import Role
from models.jobs import Job, JobKind, JobStatus

bp = Blueprint("jobs", __name__)

#: A finished job stays in its starter's progress strip this long.
RECENT = timedelta(minutes=10)
_ID = TypeAdapter(Id)


def _visible_job(job_id: int) -> Job:
    """Return the job when the current user started it or is the secretariat; 404 otherwise."""
    job = db.session.get(Job, job_id)
    user = current_user()
    if job is None:
        abort(404, description="任务不存在")
    if not (is_secretariat(user) or (user is not None and job.started_by_id == user.id)):
        deny(f"job {job_id} belongs to another account", "任务不存在", status=404)
    return job


def job_json(job: Job) -> dict[str, Any]:
    """Return what the progress bar shows of a job."""
    return {
        "id": job.id,
        "kind": job.kind.name.lower(),
        "kind_label": job.kind.value,
        "status": job.status.name.lower(),
        "status_label": "已中断" if is_abandoned(current_app, job) else job.status.value,
        "done": job.done,
        "total": job.total,
        "percent": job.percent,
        "message": job.message,
        "error": job.error,
        "finished": job.finished,
        "result_url": url_for("jobs.result", job_id=job.id) if job.result_name else None,
        "page_url": url_for("jobs.page", job_id=job.id),
        "created_at": job.created_at.isoformat(),
        "finished_at": iso(job.finished_at),
    }


@bp.get("/api/jobs/<int:ident>")
@login_required
@operation("任务进度（任务发起人与秘书处可见，其他人 404）", answers={200: JobOut})
def progress(ident: int) -> Any:
    """A job's progress as JSON (polled by static/jobs/progress.js)."""
    response = current_app.json.response(job_json(_visible_job(ident)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/jobs/<int:job_id>")
@login_required
def page(job_id: int) -> Any:
    job = _visible_job(job_id)
    return render_template("jobs/job.html", job=job, abandoned=is_abandoned(current_app, job))


@bp.get("/jobs/<int:job_id>/result")
@login_required
def result(job_id: int) -> Any:
    """Download the file a job produced (the report workbook)."""
    job = _visible_job(job_id)
    if job.status is not JobStatus.DONE or job.result_name is None or job.result is None:
        abort(404, description="该任务没有可下载的文件")
    audit("export", "job", job.id, kind=job.kind.name, bytes=len(job.result))
    db.session.commit()
    return send_xlsx(job.result, job.result_name)


@bp.post("/jobs/report")
@roles_required(Role.ADMIN, Role.ORGANISER)
def start_report() -> Any:
    """Generate the quarterly report workbook in the background; its page shows the progress."""
    from app.pipeline import rules
    from app.pipeline.figures import period_from_args
    from app.pipeline.views import _scope_label
    from app.services import today

    user = current_user()
    scope = rules.report_scope(user)
    args = {k: request.form[k] for k in ("quarter", "from", "to") if request.form.get(k)}
    period = period_from_args(args, today())  # InputError names a bad field, in Chinese
    params = {
        "period": args,
        "scope": sorted(scope) if scope is not None else None,
        "scope_label": _scope_label(scope),
    }
    job_id = start_job(JobKind.REPORT, params, user_id=user.id if user else None)
    audit("export", "report", None, format="xlsx", period=period.label, job=job_id)
    db.session.commit()
    return redirect(url_for("jobs.page", job_id=job_id))


@bp.get("/admin/jobs")
@roles_required(Role.ADMIN)
def failed() -> Any:
    """The secretariat's list: failed and interrupted jobs (error, retry button), then the latest."""
    stale = utcnow() - timedelta(seconds=float(current_app.config["JOB_STALE_SECONDS"]))
    troubled = db.session.scalars(
        select(Job)
        .where(or_(Job.status == JobStatus.FAILED, Job.status == JobStatus.RUNNING))
        .where(or_(Job.status == JobStatus.FAILED, Job.heartbeat_at < stale))
        .order_by(Job.id.desc())
        .limit(200)
    ).all()
    latest = db.session.scalars(select(Job).order_by(Job.id.desc()).limit(30)).all()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return render_template(
        "jobs/admin.html", troubled=troubled, latest=latest, is_abandoned=lambda job: is_abandoned(app, job)
    )


@bp.post("/admin/jobs/retry")
@roles_required(Role.ADMIN)
def retry() -> Any:
    try:
        job_id = _ID.validate_python(request.form.get("job_id"))
    except ValidationError:
        raise InputError({"job_id": "任务编号：应为整数编号（只含数字）"}) from None
    job = _visible_job(job_id)
    if _retry(job):
        flash(f"任务 {job.id}（{job.kind.value}）已重新排队", "success")
    else:
        flash(f"任务 {job.id} 不是失败或已中断的任务，无需重试", "error")
    return redirect(url_for("jobs.failed"))


@bp.post("/admin/jobs/rebuild")
@roles_required(Role.ADMIN)
def rebuild() -> Any:
    """Rebuild the vector indexes from the stored vectors, in the background."""
    user = current_user()
    job_id = start_job(JobKind.INDEX_REBUILD, {}, user_id=user.id if user else None)
    audit("index.rebuild", "job", job_id)
    db.session.commit()
    return redirect(url_for("jobs.page", job_id=job_id))


def _retry(job: Job) -> bool:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if job.status is not JobStatus.FAILED and not is_abandoned(app, job):
        return False
    audit("job.retry", "job", job.id, kind=job.kind.name)
    db.session.commit()
    return retry_job(app, job.id)


def my_jobs() -> list[Job]:
    """Return the current user's running jobs and those finished lately (every page's progress strip)."""
    user = current_user()
    if user is None:
        return []
    since = utcnow() - RECENT
    return list(
        db.session.scalars(
            select(Job)
            .where(
                Job.started_by_id == user.id,
                or_(Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)), Job.finished_at >= since),
            )
            .order_by(Job.id.desc())
            .limit(5)
        )
    )


def init_app(app: Flask) -> None:
    """Register the job pages and the progress strip's template helper.

    The vectors a worker encodes reach every web process's index through the change log it writes with
    them (app.index_sync), within MATCH_INDEX_SYNC_SECONDS of a batch's commit."""
    app.register_blueprint(bp)
    app.add_template_global(my_jobs, "my_jobs")
