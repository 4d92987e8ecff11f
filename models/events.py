"""Matchmaking events (对接活动), experts (judges, mentors, 技术/投资/管理 experts) and their assignments.

An `Event` is held for one or more contests (`EventContest`); projects and institutions are invited
(`EventInvite`, each with its own unavailable slots and, for institutions, an optional capacity);
`Conflict` rows are pairs that must never meet (declared by a person, or detected from the data),
each with its cause; the plan is a set of `Meeting` rows (slot, table, score, match reasons).
`InstitutionRegistration` records the institution's 对接服务报名 choices (参加对接活动 / 成为大赛评委 /
发布对接需求) in its own table keyed by institution id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, StrList, UTCDateTime, enum_column, utcnow
from models.enums import LabelEnum


class RegistrationChoice(LabelEnum):
    """What a service institution chose when it registered (对接服务报名)."""

    EVENTS = "参加对接活动"
    JUDGE = "成为大赛评委"
    NEEDS = "发布对接需求"


class ExpertKind(LabelEnum):
    """The contest promises winners technical, investment and management experts."""

    TECH = "技术"
    INVESTMENT = "投资"
    MANAGEMENT = "管理"


class ExpertRole(LabelEnum):
    """What an expert does for the contest."""

    JUDGE = "评委"
    MENTOR = "创业导师"
    EXPERT = "辅导专家"


class EventStatus(LabelEnum):
    DRAFT = "筹备中"
    PLANNED = "已排程"
    HELD = "已举办"


class ConflictSource(LabelEnum):
    DECLARED = "申报"
    DETECTED = "系统发现"


class InstitutionRegistration(Base):
    """An institution's registration choices, kept apart from the institution's profile row."""

    __tablename__ = "institution_registration"

    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), primary_key=True
    )
    choices: Mapped[list[str]] = mapped_column(StrList, default=list)  # RegistrationChoice names
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Expert(Base):
    """A person: judge, mentor or expert, with fields of expertise and a load limit."""

    __tablename__ = "expert"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    employer_institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id", ondelete="SET NULL"), index=True
    )
    employer: Mapped[str | None] = mapped_column(String(200))  # when not an institution of the service
    fields: Mapped[list[str]] = mapped_column(StrList, default=list)  # industries
    kinds: Mapped[list[str]] = mapped_column(StrList, default=list)  # ExpertKind names
    roles: Mapped[list[str]] = mapped_column(StrList, default=list)  # ExpertRole names
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """A matchmaking event: when and where, its slots and tables, and the plan's bounds."""

    __tablename__ = "match_event"
    __table_args__ = (
        CheckConstraint("slots >= 1", name="slots_positive"),
        CheckConstraint("project_min >= 0 AND project_max >= 0", name="bounds_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    held_on: Mapped[date | None] = mapped_column(Date)
    place: Mapped[str | None] = mapped_column(String(200))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    slots: Mapped[int] = mapped_column(Integer, default=6)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=20)
    tables: Mapped[int | None] = mapped_column(Integer)
    institution_capacity: Mapped[int] = mapped_column(Integer, default=6)  # default per institution
    project_min: Mapped[int] = mapped_column(Integer, default=1)
    project_max: Mapped[int] = mapped_column(Integer, default=3)
    required: Mapped[list[list[int]]] = mapped_column(JSON, default=list)  # [[project id, institution id]]
    status: Mapped[EventStatus] = mapped_column(enum_column(EventStatus), default=EventStatus.DRAFT)
    plan_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # status, objective, blocking
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)  # no FK: accounts may go
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contests: Mapped[list[EventContest]] = relationship(cascade="all, delete-orphan")
    invites: Mapped[list[EventInvite]] = relationship(cascade="all, delete-orphan")
    conflicts: Mapped[list[Conflict]] = relationship(cascade="all, delete-orphan")
    meetings: Mapped[list[Meeting]] = relationship(cascade="all, delete-orphan", order_by="Meeting.slot")


class EventContest(Base):
    """An event serves one or more contests."""

    __tablename__ = "match_event_contest"

    event_id: Mapped[int] = mapped_column(ForeignKey("match_event.id", ondelete="CASCADE"), primary_key=True)
    contest_id: Mapped[int] = mapped_column(ForeignKey("contest.id", ondelete="CASCADE"), primary_key=True)


class EventInvite(Base):
    """A project or an institution invited to an event, with its unavailable slots."""

    __tablename__ = "match_event_invite"
    __table_args__ = (
        UniqueConstraint("event_id", "project_id", name="uq_match_event_invite_project"),
        UniqueConstraint("event_id", "institution_id", name="uq_match_event_invite_institution"),
        CheckConstraint("(project_id IS NULL) <> (institution_id IS NULL)", name="one_party"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("match_event.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id", ondelete="CASCADE"))
    capacity: Mapped[int | None] = mapped_column(Integer)  # institutions: meetings at most
    unavailable_slots: Mapped[list[int]] = mapped_column(JSON, default=list)  # 0-based slots


class Conflict(Base):
    """A pair that must never meet or be assigned, and why (declared or detected)."""

    __tablename__ = "match_conflict"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("match_event.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id", ondelete="CASCADE"))
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("expert.id", ondelete="CASCADE"))
    source: Mapped[ConflictSource] = mapped_column(enum_column(ConflictSource))
    cause: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Meeting(Base):
    """One planned meeting: a project and an institution at a slot and a table, with its reasons."""

    __tablename__ = "match_meeting"
    __table_args__ = (
        UniqueConstraint("event_id", "project_id", "institution_id", name="uq_match_meeting_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("match_event.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id", ondelete="CASCADE"), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    table_no: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(StrList, default=list)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connection.id", ondelete="SET NULL"))


class ExpertAssignment(Base):
    """A judge or mentor assigned to a project (for a contest)."""

    __tablename__ = "expert_assignment"
    __table_args__ = (UniqueConstraint("expert_id", "project_id", "role", name="uq_expert_assignment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("expert.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    contest_id: Mapped[int | None] = mapped_column(ForeignKey("contest.id", ondelete="CASCADE"))
    role: Mapped[ExpertRole] = mapped_column(enum_column(ExpertRole))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
