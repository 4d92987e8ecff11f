"""Organisers' intake: suspected duplicate projects and the contests' filing forms (备案表)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_column, utcnow
from models.core import Contest, Project


class DuplicateKind(StrEnum):
    """How close two projects are: the same entry, or a similar one (both barred by the contest plan)."""

    SAME = "same"
    SIMILAR = "similar"


class DuplicateStatus(StrEnum):
    """The secretariat's decision on a suspected pair."""

    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


DUPLICATE_KIND_LABELS = {DuplicateKind.SAME: "相同项目", DuplicateKind.SIMILAR: "相似项目"}
DUPLICATE_STATUS_LABELS = {
    DuplicateStatus.OPEN: "待审核",
    DuplicateStatus.CONFIRMED: "已确认重复",
    DuplicateStatus.DISMISSED: "已排除",
}


class DuplicatePair(Base):
    """Two projects suspected to be the same or a similar entry; stored once per pair (a < b).

    A dismissed pair stays stored so that it is never flagged again; a confirmed one is reported per contest.
    """

    __tablename__ = "duplicate_pair"
    __table_args__ = (
        UniqueConstraint("project_a_id", "project_b_id", name="uq_duplicate_pair_projects"),
        CheckConstraint("project_a_id < project_b_id", name="ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_a_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    project_b_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    embedding_score: Mapped[float | None] = mapped_column(Float)
    text_score: Mapped[float | None] = mapped_column(Float)
    kind: Mapped[DuplicateKind] = mapped_column(enum_column(DuplicateKind))
    status: Mapped[DuplicateStatus] = mapped_column(
        enum_column(DuplicateStatus), default=DuplicateStatus.OPEN, index=True
    )
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # No foreign key to accounts (their own migration branch), as for Archivable.archived_by_id.
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)

    project_a: Mapped[Project] = relationship(foreign_keys=[project_a_id])
    project_b: Mapped[Project] = relationship(foreign_keys=[project_b_id])


class ContestFiling(Base):
    """A contest's 备案表 (附件4 of the notice), one per contest, filled by its organiser."""

    __tablename__ = "contest_filing"

    id: Mapped[int] = mapped_column(primary_key=True)
    contest_id: Mapped[int] = mapped_column(ForeignKey("contest.id", ondelete="CASCADE"), unique=True)
    filing_unit: Mapped[str] = mapped_column(String(200))  # 填表单位
    filed_on: Mapped[date] = mapped_column(Date)  # 填表日期
    name: Mapped[str] = mapped_column(String(200))  # 赛事名称, as in the contest plan
    kind: Mapped[str] = mapped_column(String(16))  # 赛事类型
    field: Mapped[str | None] = mapped_column(String(100))  # 行业领域 (专题赛) / 产业链 (赛道赛)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    organisers: Mapped[str] = mapped_column(Text)  # 组织机构: 举办、承办、协办、支持单位
    final_venue: Mapped[str] = mapped_column(String(200))  # 决赛地点
    plan: Mapped[str] = mapped_column(Text)  # 赛事方案, at most 500 characters
    declaration: Mapped[bool] = mapped_column(default=False)  # 举办单位声明 accepted
    liaison: Mapped[str] = mapped_column(String(100))  # 联络员及处室（部门）
    liaison_phone: Mapped[str] = mapped_column(String(32))
    liaison_email: Mapped[str] = mapped_column(String(120))
    site_admin: Mapped[str | None] = mapped_column(String(64))  # 大赛官网赛事管理员
    site_admin_phone: Mapped[str | None] = mapped_column(String(32))
    site_admin_email: Mapped[str | None] = mapped_column(String(120))
    filed_by_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contest: Mapped[Contest] = relationship()
