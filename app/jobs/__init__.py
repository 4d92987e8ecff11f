"""Background jobs: on RQ (Redis) when MATCH_REDIS_URL is set, in a thread of this process otherwise.

Every job has one row in the database (models.jobs.Job) whatever runs it, so pages, the JSON endpoint
and the commands show its progress the same way. A run first *claims* the row (queued -> running,
attempt + 1) and then writes progress only while the row still carries its attempt number; each batch
of work commits together with its progress. A worker killed mid-job therefore leaves whole batches;
its row stops beating, and :func:`requeue_abandoned` (run by every `flask worker`) queues it again,
where the next run skips what is already stored.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.extensions import db
from app.schemas import InputError
from models.base import utcnow
from models.db import rowcount
from models.jobs import Job, JobKind, JobStatus

log = logging.getLogger(__name__)

#: kind -> the job's body, body(run, session); filled by app.jobs.tasks.
TASKS: dict[JobKind, Callable[[JobRun, Session], None]] = {}


class JobError(Exception):
    """A failure whose message (Chinese) is shown to the secretariat as it is."""


class JobLost(Exception):
    """The row was taken over by another run (this one was thought dead): stop without writing."""


@dataclass
class JobRun:
    """One run of a job: its parameters, and the progress it writes into the job's row."""

    app: Flask
    job_id: int
    attempt: int
    params: Mapping[str, Any]
    #: Called as on_progress(done, total, message) after every update (the CLI's progress bar).
    on_progress: Callable[[int, int | None, str | None], None] | None = None
    done: int = 0
    total: int | None = None
    #: What the body returns to a foreground caller (e.g. the encoding's SyncReport).
    outcome: Any = None
    #: The run's final status: DONE or FAILED (None while it runs, or when it lost its row).
    status: JobStatus | None = None

    def _update(self, session: Session, **values: Any) -> None:
        stmt = (
            update(Job)
            .where(Job.id == self.job_id, Job.attempt == self.attempt, Job.status == JobStatus.RUNNING)
            .values(heartbeat_at=utcnow(), **values)
        )
        if rowcount(session.execute(stmt)) != 1:
            session.rollback()
            raise JobLost(f"job {self.job_id} attempt {self.attempt} was taken over")
        if self.on_progress is not None:
            self.on_progress(self.done, self.total, values.get("message"))

    def begin(self, session: Session, remaining: int, message: str | None = None) -> None:
        """Set the total to what is done already plus what remains, and commit."""
        self.total = self.done + remaining
        self._update(session, total=self.total, message=message)
        session.commit()

    def advance(self, session: Session, n: int, message: str | None = None) -> None:
        """Count n more units done, inside the caller's transaction (the caller commits its batch with it)."""
        self.done += n
        self._update(session, done=self.done, message=message)

    def beat(self, session: Session, message: str | None = None) -> None:
        """Say this run is alive (and what it does now), and commit."""
        self._update(session, **({"message": message} if message else {}))
        session.commit()

    def save_result(self, session: Session, name: str, data: bytes) -> None:
        """Keep a file the job produced (served by any web host); committed with the job's end."""
        self._update(session, result_name=name, result=data)


# --- starting and dispatching -----------------------------------------------------------------------


def redis_url(app: Flask) -> str | None:
    """Return the Redis of the job queue, or None: jobs then run in a thread of this process."""
    return app.config.get("REDIS_URL") or None


def rq_queue(app: Flask, name: str | None = None) -> Any:
    """Return the RQ queue of the app's jobs."""
    from redis import Redis
    from rq import Queue

    connection = Redis.from_url(redis_url(app) or "", socket_connect_timeout=5)
    return Queue(name or app.config["JOB_QUEUE"], connection=connection)


def start_job(
    kind: JobKind,
    params: Mapping[str, Any] | None = None,
    *,
    user_id: int | None = None,
    app: Flask | None = None,
    dispatch: bool = True,
    attach: Callable[[Session, Job], None] | None = None,
) -> int:
    """Record a queued job and send it to a worker (or a thread here); return its id.

    Args:
        dispatch: False only records it, for a command that runs it in the foreground (:func:`run_job`).
        attach: stores what the job needs with it, in the same transaction (the job row has its id).
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    session = db.new_session(app)
    try:
        job = Job(kind=kind, status=JobStatus.QUEUED, params=dict(params or {}), started_by_id=user_id)
        session.add(job)
        if attach is not None:
            session.flush()
            attach(session, job)
        session.commit()
        job_id = job.id
    finally:
        session.close()
    if dispatch:
        send(app, job_id)
    return job_id


def send(app: Flask, job_id: int) -> None:
    """Hand a queued job to RQ, or to a new thread of this process without Redis."""
    if redis_url(app) is None:
        thread = threading.Thread(target=run_job, args=(app, job_id), name=f"job-{job_id}", daemon=True)
        app.extensions.setdefault("job_threads", {})[job_id] = thread
        thread.start()
        return
    try:
        queue = rq_queue(app)
        rq_id = f"{queue.name}-{job_id}-{uuid.uuid4().hex[:8]}"
        queue.enqueue(
            "app.jobs.perform",
            job_id,
            job_id=rq_id,
            job_timeout=int(app.config["JOB_TIMEOUT"]),
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
            description=f"job {job_id}",
        )
    except Exception as exc:
        log.exception("could not enqueue job %s", job_id)
        error = f"无法提交到后台任务队列（Redis）：{exc.__class__.__name__}，请稍后重试"
        _finish(app, job_id, None, JobStatus.FAILED, error)
        return
    _set(app, job_id, rq_id=rq_id)


def perform(job_id: int) -> str:
    """The RQ entry point: run the job in the worker's app (`flask worker` pushes its context)."""
    run = run_job(current_app._get_current_object(), job_id)  # type: ignore[attr-defined]
    return run.status.name if run is not None and run.status is not None else "SKIPPED"


# --- running --------------------------------------------------------------------------------------


def _claim(session: Session, job_id: int) -> Job | None:
    """Take a queued job (queued -> running, attempt + 1); None when it is not queued (taken or done)."""
    now = utcnow()
    claimed = rowcount(
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING, attempt=Job.attempt + 1, heartbeat_at=now, error=None)
        )
    )
    if claimed != 1:
        session.rollback()
        return None
    job = session.get(Job, job_id)
    assert job is not None
    if job.started_at is None:
        job.started_at = now
    session.commit()
    return job


def run_job(
    app: Flask, job_id: int, on_progress: Callable[[int, int | None, str | None], None] | None = None
) -> JobRun | None:
    """Claim and run one job to its end; return the run (its .status DONE or FAILED), None when not queued.

    Never raises for a failure of the job: the row records it (in Chinese) and the log the details.
    """
    importlib.import_module("app.jobs.tasks")  # registers the bodies in TASKS

    with app.app_context():
        session = db.new_session(app)
        try:
            job = _claim(session, job_id)
            if job is None:
                return None
            run = JobRun(
                app, job.id, job.attempt, dict(job.params), on_progress, done=job.done, total=job.total
            )
            kind = job.kind
            stop = threading.Event()
            pulse = threading.Thread(
                target=_pulse, args=(app, job.id, job.attempt, stop), name=f"job-{job.id}-pulse", daemon=True
            )
            pulse.start()
            try:
                TASKS[kind](run, session)
                run._update(session, status=JobStatus.DONE, finished_at=utcnow(), message="完成")
                session.commit()
                run.status = JobStatus.DONE
            except JobLost:
                log.warning("job %s: attempt %s lost its row to another run; stopped", job_id, run.attempt)
            except Exception as exc:
                session.rollback()
                log.exception("job %s (%s) failed", job_id, kind.name)
                _finish(app, job_id, run.attempt, JobStatus.FAILED, describe(exc))
                run.status = JobStatus.FAILED
            finally:
                stop.set()
                pulse.join()
            return run
        finally:
            session.close()


def _pulse(app: Flask, job_id: int, attempt: int, stop: threading.Event) -> None:
    """Keep a run's heartbeat while it lives, also through a long step without batches (an index build).

    A process killed with -9 stops beating with it, which is how its job is known to be abandoned.
    """
    every = max(0.5, float(app.config["JOB_STALE_SECONDS"]) / 4)
    while not stop.wait(every):
        session = db.new_session(app)
        try:
            mine = (Job.id == job_id) & (Job.attempt == attempt) & (Job.status == JobStatus.RUNNING)
            if rowcount(session.execute(update(Job).where(mine).values(heartbeat_at=utcnow()))) != 1:
                return  # taken over or finished: the run's own next write notices
            session.commit()
        except Exception:  # a busy or absent database: try again at the next beat
            log.warning("job %s: heartbeat not written", job_id, exc_info=True)
        finally:
            session.close()


def describe(exc: BaseException) -> str:
    """Return what the secretariat reads about a failure: Chinese, no stack trace."""
    if isinstance(exc, JobError):
        return str(exc)
    if isinstance(exc, InputError):
        return "参数有误：" + "；".join(exc.fields.values())
    if isinstance(exc, OperationalError):
        return "数据库暂时无法访问，任务中断；已保存的批次不会重复处理，请稍后重试"
    if exc.__class__.__name__ == "JobTimeoutException":  # rq's, raised in the job when its time is up
        return "运行时间超过上限（MATCH_JOB_TIMEOUT），已停止；已保存的批次不会重复处理，可重试"
    if isinstance(exc, MemoryError):
        return "内存不足，任务中断；请减小批量或在内存更大的机器上运行"
    return f"任务执行出错（{exc.__class__.__name__}），详情见服务日志；已保存的批次不会重复处理，可重试"


def _set(app: Flask, job_id: int, **values: Any) -> None:
    session = db.new_session(app)
    try:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        session.commit()
    finally:
        session.close()


def _finish(app: Flask, job_id: int, attempt: int | None, status: JobStatus, error: str | None) -> None:
    session = db.new_session(app)
    try:
        stmt = update(Job).where(Job.id == job_id)
        if attempt is not None:
            stmt = stmt.where(Job.attempt == attempt)
        session.execute(stmt.values(status=status, error=error, finished_at=utcnow(), message=None))
        session.commit()
    finally:
        session.close()


# --- failures, retries, abandoned runs ------------------------------------------------------------


def abandoned_cutoff(app: Flask) -> Any:
    """Return the heartbeat time before which a running job counts as abandoned."""
    return utcnow() - timedelta(seconds=float(app.config["JOB_STALE_SECONDS"]))


def is_abandoned(app: Flask, job: Job) -> bool:
    """Return True for a running job whose run stopped beating (its worker died)."""
    beat = job.heartbeat_at or job.started_at or job.created_at
    return job.status is JobStatus.RUNNING and beat < abandoned_cutoff(app)


def retry_job(app: Flask, job_id: int) -> bool:
    """Queue a failed or abandoned job again and dispatch it; False when it is neither."""
    session = db.new_session(app)
    try:
        retried = rowcount(
            session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    (Job.status == JobStatus.FAILED)
                    | ((Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < abandoned_cutoff(app))),
                )
                .values(status=JobStatus.QUEUED, error=None, finished_at=None, message="等待重试")
                .values(heartbeat_at=utcnow())
            )
        )
        session.commit()
    finally:
        session.close()
    if retried == 1:
        send(app, job_id)
    return retried == 1


def requeue_abandoned(app: Flask) -> list[int]:
    """Queue again every running job whose heartbeat stopped (and, on RQ, every lost queued one); return ids.

    Safe with several workers on several hosts: each row goes back to the queue once (a conditional
    update), and the run that lost it can no longer write (its attempt number is stale).
    """
    session = db.new_session(app)
    try:
        cutoff = abandoned_cutoff(app)
        stale = (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < cutoff)
        ids = session.scalars(select(Job.id).where(stale)).all()
        taken = []
        for job_id in ids:
            n = rowcount(
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, stale)
                    .values(status=JobStatus.QUEUED, message="运行中断，已重新排队", heartbeat_at=utcnow())
                )
            )
            session.commit()
            if n == 1:
                taken.append(job_id)
        if redis_url(app) is not None:
            taken += _lost_in_queue(app, session, cutoff)
    finally:
        session.close()
    for job_id in taken:
        log.warning("job %s was abandoned by its worker or lost by the queue: queued again", job_id)
        send(app, job_id)
    return taken


def _lost_in_queue(app: Flask, session: Session, cutoff: Any) -> list[int]:
    """Claim the rows queued for longer than the stale time whose RQ message is gone or was taken
    by a worker that died before it could start the job (Redis lost its data, a kill -9 at dequeue)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job as RQJob
    from rq.job import JobStatus as RQStatus

    waiting = (RQStatus.QUEUED, RQStatus.DEFERRED, RQStatus.SCHEDULED)
    old = (Job.status == JobStatus.QUEUED) & (func.coalesce(Job.heartbeat_at, Job.created_at) < cutoff)
    connection = rq_queue(app).connection
    lost = []
    for job_id, rq_id in session.execute(select(Job.id, Job.rq_id).where(old)).all():
        try:
            status = RQJob.fetch(rq_id, connection=connection).get_status() if rq_id else None
        except NoSuchJobError:
            status = None
        if status in waiting:
            continue  # a backlog, not a loss
        same = Job.rq_id.is_(None) if rq_id is None else Job.rq_id == rq_id
        n = rowcount(
            session.execute(
                update(Job)
                .where(Job.id == job_id, old, same)
                .values(heartbeat_at=utcnow(), message="已重新排队")
            )
        )
        session.commit()
        if n == 1:
            lost.append(job_id)
    return lost


def watch_abandoned(app: Flask, stop: threading.Event) -> threading.Thread:
    """Start a daemon thread that requeues abandoned jobs until stop is set (run by `flask worker`)."""
    interval = max(1.0, float(app.config["JOB_STALE_SECONDS"]) / 3)

    def loop() -> None:
        while not stop.is_set():
            try:
                requeue_abandoned(app)
            except Exception:
                log.exception("could not check for abandoned jobs")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="job-watch", daemon=True)
    thread.start()
    return thread


def wait_all(app: Flask, timeout: float = 120.0) -> None:
    """Wait for the jobs this process runs in its own threads (no Redis) to end (tests, commands)."""
    deadline = time.monotonic() + timeout
    for thread in list(app.extensions.get("job_threads", {}).values()):
        thread.join(max(0.0, deadline - time.monotonic()))


def wait_for(app: Flask, job_id: int, timeout: float = 60.0, poll: float = 0.2) -> Job:
    """Return the job once it is done or failed (tests, and `flask embed --enqueue`); TimeoutError else."""
    deadline = time.monotonic() + timeout
    while True:
        thread = app.extensions.get("job_threads", {}).get(job_id)
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        session = db.new_session(app)
        try:
            job = session.get(Job, job_id)
            if job is not None and job.finished:
                session.expunge(job)
                return job
        finally:
            session.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} not finished after {timeout} s")
        time.sleep(poll)
