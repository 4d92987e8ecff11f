"""Saved searches, the notifications they raise, and each account's alert settings (no Flask here).

A `SavedSearch` is a ranked list of projects a user keeps watching: an institution's ranked projects with
filters, or a posted need's ranked projects. When projects change, it re-runs; a project that enters its
top `rank_threshold` for the first time becomes one `Notification` (never two for the same search and
project). Notifications keep a snapshot of what they said, so the funnel outlives a deleted search.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_column, utcnow
from models.core import Institution, Need, Project
from models.enums import LabelEnum


class AlertFrequency(LabelEnum):
    """How often a saved search's news is e-mailed."""

    IMMEDIATE = "即时"
    DAILY = "每日"
    WEEKLY = "每周"


class SearchKind(LabelEnum):
    """Which ranked list a saved search watches."""

    INSTITUTION = "机构推荐项目"
    NEED = "需求匹配项目"


class SavedSearch(Base):
    """A user's watched ranked list: whose list, its filters, the rank that counts, how often to mail."""

    __tablename__ = "saved_search"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[SearchKind] = mapped_column(enum_column(SearchKind))
    # The institution whose ranked projects these are (for a need: the need's institution).
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id", ondelete="CASCADE"), index=True)
    need_id: Mapped[int | None] = mapped_column(ForeignKey("need.id", ondelete="CASCADE"), index=True)
    # The project filter as validated query parameters ({"industry": "人工智能", ...}).
    filters: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Alert when a project enters the top `rank_threshold` (a rank, not a score).
    rank_threshold: Mapped[int] = mapped_column(Integer, default=10)
    frequency: Mapped[AlertFrequency] = mapped_column(
        enum_column(AlertFrequency), default=AlertFrequency.DAILY
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set on the search made automatically for a member of an institution that posted a need, so it is
    # made once (a user who deletes or pauses it is not given a new one).
    auto_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The project ids in the top `rank_threshold` at the last run: the next run's "already seen".
    baseline: Mapped[list[int]] = mapped_column(JSON, default=list)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    institution: Mapped[Institution] = relationship()
    need: Mapped[Need | None] = relationship()

    def __repr__(self) -> str:
        return f"<SavedSearch {self.id} u={self.user_id} {self.kind.name} top {self.rank_threshold}>"


class Notification(Base):
    """One project that entered a saved search's top ranks: shown in the centre, mailed, followed up."""

    __tablename__ = "alert_notification"
    __table_args__ = (
        UniqueConstraint("search_id", "project_id", name="uq_alert_notification_search_project"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    # Kept (as NULL) when the search is deleted: the funnel still counts what it led to.
    search_id: Mapped[int | None] = mapped_column(ForeignKey("saved_search.id", ondelete="SET NULL"))
    search_name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[SearchKind] = mapped_column(enum_column(SearchKind))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id", ondelete="CASCADE"), index=True)
    need_id: Mapped[int | None] = mapped_column(ForeignKey("need.id", ondelete="SET NULL"))
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    rank_threshold: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    # The reasons of the match the user may read, in Chinese, as ranked.
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    frequency: Mapped[AlertFrequency] = mapped_column(enum_column(AlertFrequency))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the user opened the project after this alert (the funnel's second step).
    viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    project: Mapped[Project] = relationship()
    institution: Mapped[Institution] = relationship()

    def __repr__(self) -> str:
        return f"<Notification {self.id} u={self.user_id} s={self.search_id} p={self.project_id}>"


class AlertSettings(Base):
    """An account's e-mail choice (one-click unsubscribe turns it off) and when digests last went out."""

    __tablename__ = "alert_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # {frequency name: ISO timestamp of the last digest of that frequency}
    last_digest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
