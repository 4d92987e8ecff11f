"""The follow-up pipeline's tables and vocabulary: a connection and the append-only history of it.

A `Connection` holds where a project and an institution stand now; every change to it is one
`ConnectionEvent` row, written once and never changed or deleted through the ORM. Both live here, and
the relationships to models/core.py point one way (a connection knows its project, institution and
need), so there is no import cycle. Stage changes go through app/pipeline/states.py.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_column, utcnow
from models.core import Institution, Need, Project, Timestamped
from models.enums import ConnectionStage, FundingRound, LabelEnum, ServiceKind


class Party(LabelEnum):
    """Who acts on a connection (or initiated it)."""

    INSTITUTION = "机构"
    PROJECT = "项目"
    SECRETARIAT = "大赛秘书处"
    ORGANISER = "赛事组织方"
    SYSTEM = "系统"


class OutcomeKind(LabelEnum):
    """What a signed connection achieved, by the institution's side of the market."""

    FINANCING = "融资"
    LANDING = "落地"
    SERVICE = "服务"


#: The institution's side -> the outcome a signature records.
SIDE_OUTCOME: dict[str, OutcomeKind] = {
    "fund": OutcomeKind.FINANCING,
    "base": OutcomeKind.LANDING,
    "platform": OutcomeKind.SERVICE,
}


class EventAction(LabelEnum):
    """What one history row records."""

    CREATED = "创建"
    MOVED = "阶段变更"
    SHORTLISTED = "加入候选"
    UNSHORTLISTED = "移出候选"
    NOTED = "备注"


class Connection(Timestamped, Base):
    """A project and an institution (optionally through a need) put in touch, and how far they got.

    The stage and outcome columns say where the pair stands now; `events` is the append-only history of
    how it got there. Stage changes go through app/pipeline/states.py, never by assigning `stage`.
    A connection and its history outlive any edit of either side: the foreign keys refuse to delete a
    project or institution that has connections (app/services.py archives it instead), and a deleted
    need leaves its connections without one (SET NULL).
    """

    __tablename__ = "connection"
    __table_args__ = (
        UniqueConstraint("project_id", "institution_id", name="uq_connection_pair"),
        Index("ix_connection_last_activity_id", "last_activity_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    need_id: Mapped[int | None] = mapped_column(ForeignKey("need.id", ondelete="SET NULL"))
    stage: Mapped[ConnectionStage] = mapped_column(
        enum_column(ConnectionStage), default=ConnectionStage.RECOMMENDED, index=True
    )
    # The institution's private notes on the project (shortlist notes); never shown to the project.
    note: Mapped[str | None] = mapped_column(Text)
    shortlisted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Who asked for the introduction (set when the connection reaches 已申请对接).
    initiated_by: Mapped[Party | None] = mapped_column(enum_column(Party))
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    closed_reason: Mapped[str | None] = mapped_column(Text)  # why it was refused or terminated
    # The outcome recorded on signing, by kind: financing, landing or service delivered.
    outcome_kind: Mapped[OutcomeKind | None] = mapped_column(enum_column(OutcomeKind))
    outcome_amount_wan: Mapped[float | None] = mapped_column(Float)
    outcome_round: Mapped[FundingRound | None] = mapped_column(enum_column(FundingRound))
    outcome_base: Mapped[str | None] = mapped_column(String(200))
    outcome_area_m2: Mapped[float | None] = mapped_column(Float)
    outcome_service: Mapped[ServiceKind | None] = mapped_column(enum_column(ServiceKind))
    outcome_date: Mapped[date | None] = mapped_column(Date)

    # One-way: the ORM never loads or cascades a record's connections from the record's side.
    project: Mapped[Project] = relationship()
    institution: Mapped[Institution] = relationship()
    need: Mapped[Need | None] = relationship()
    # The database removes the history with its connection; the ORM never deletes history rows itself.
    events: Mapped[list[ConnectionEvent]] = relationship(
        back_populates="connection",
        order_by="(ConnectionEvent.at, ConnectionEvent.id)",
        cascade="save-update, merge",
        passive_deletes="all",
    )


class ConnectionEvent(Base):
    """One change to a connection: who, when, from which stage to which, and why. Append-only."""

    __tablename__ = "connection_event"
    # A connection's history in order (figures, report list); a stage's moves in a period (figures).
    __table_args__ = (
        Index("ix_connection_event_connection_at", "connection_id", "at", "id"),
        Index("ix_connection_event_stage_at", "to_stage", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[EventAction] = mapped_column(enum_column(EventAction))
    from_stage: Mapped[ConnectionStage | None] = mapped_column(enum_column(ConnectionStage))
    to_stage: Mapped[ConnectionStage] = mapped_column(enum_column(ConnectionStage), index=True)
    actor_kind: Mapped[Party] = mapped_column(enum_column(Party))
    # No foreign key: accounts live in their own migration branch, and history must outlive an account.
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    # Shortlist flags and private notes are the institution's own: never shown to the project.
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    # The outcome recorded on signing, the reason of a termination, ...
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    connection: Mapped[Connection] = relationship(back_populates="events")

    def __repr__(self) -> str:
        frm = self.from_stage.value if self.from_stage else "—"
        return f"<ConnectionEvent {self.id} c={self.connection_id} {frm}→{self.to_stage.value}>"


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete a history row."""


@event.listens_for(ConnectionEvent, "before_update")
def _refuse_update(_mapper: Mapper[Any], _conn: Any, target: ConnectionEvent) -> None:
    raise AppendOnlyError(f"connection history is append-only: event {target.id} cannot be changed")


@event.listens_for(ConnectionEvent, "before_delete")
def _refuse_delete(_mapper: Mapper[Any], _conn: Any, target: ConnectionEvent) -> None:
    raise AppendOnlyError(f"connection history is append-only: event {target.id} cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk(state: ORMExecuteState) -> None:
    """Refuse ORM-enabled UPDATE/DELETE statements on the history (they bypass the mapper events)."""
    if not (state.is_update or state.is_delete):
        return
    if any(m.class_ is ConnectionEvent for m in state.all_mappers):
        raise AppendOnlyError("connection history is append-only: bulk UPDATE/DELETE refused")
