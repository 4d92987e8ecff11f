"""Background jobs: one row per job, whatever runs it (an RQ worker or a thread of the web process)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_column, utcnow
from models.enums import LabelEnum


class JobStatus(LabelEnum):
    QUEUED = "排队中"
    RUNNING = "进行中"
    DONE = "已完成"
    FAILED = "失败"


class JobKind(LabelEnum):
    ENCODE = "向量编码"
    INDEX_REBUILD = "重建索引"
    REPORT = "赛事专报"
    IMPORT = "批量导入"


class Job(Base):
    """A background job, its progress and its outcome.

    ``attempt`` counts the runs that claimed the job; a run writes progress only while the row still
    carries its attempt number, so a run taken over after a crash can no longer write anything.
    ``heartbeat_at`` moves with every batch: a running job whose heartbeat is too old was abandoned
    (its worker died) and is queued again.
    """

    __tablename__ = "background_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(enum_column(JobKind), index=True)
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus), default=JobStatus.QUEUED, index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(String(200))
    #: Why it failed, in Chinese, for the secretariat (never a stack trace).
    error: Mapped[str | None] = mapped_column(Text)
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    rq_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A file the job produced (e.g. the report workbook), kept in the database so any web host serves it.
    result_name: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    @property
    def percent(self) -> int:
        """Return the progress in whole percent (100 once done)."""
        if self.status is JobStatus.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, int(100 * self.done / self.total))


class JobFile(Base):
    """A file a job reads (an import's uploaded sheet), kept in the database so that a worker on any host
    reads it; deleted by the job once it no longer needs it, and with its job."""

    __tablename__ = "job_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("background_job.id", ondelete="CASCADE"), unique=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
