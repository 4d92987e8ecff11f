"""The feedback log: which ranked lists were shown to whom, and what was done with their items.

One :class:`Impression` row per item of a ranked list served to a signed-in user (one bulk insert per
list), one :class:`FeedbackAction` row per thing done with a pair afterwards (opened, shortlisted,
requested, accepted, signed), linked back to the shown row when the pair had been shown. Only ids are
kept: no names, texts or contact data. ``demo`` marks rows generated for the demo's own history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, enum_column, utcnow
from models.enums import LabelEnum


class ActionKind(LabelEnum):
    """What a user did with a shown pair, shallowest first (the order is the label grade)."""

    OPENED = "查看详情"
    SHORTLISTED = "加入候选"
    REQUESTED = "申请对接"
    ACCEPTED = "接受对接"
    SIGNED = "签约"

    @property
    def grade(self) -> int:
        """Return the graded label of the action: 1 (opened) .. 5 (signed); 0 is shown only."""
        return list(ActionKind).index(self) + 1


class Impression(Base):
    """One item of one ranked list as it was shown: where, to whom, with which score and model."""

    __tablename__ = "impression"
    __table_args__ = (Index("ix_impression_pair", "project_id", "institution_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The list's random token (shared by its items; carried by ``?from=`` on the detail links).
    list_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    viewer_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    #: The viewer's institution or project at the time (ids only), when the account is bound to one.
    viewer_institution_id: Mapped[int | None] = mapped_column(Integer)
    viewer_project_id: Mapped[int | None] = mapped_column(Integer)
    #: What the list was ranked for: "project" (institutions of one side), "institution" or "need".
    query_kind: Mapped[str] = mapped_column(String(16))
    query_id: Mapped[int] = mapped_column(Integer)
    side: Mapped[str | None] = mapped_column(String(16))
    #: The pair this row shows (one of them is the query, the other the item).
    project_id: Mapped[int] = mapped_column(Integer)
    institution_id: Mapped[int] = mapped_column(Integer)
    #: Place on the screen, 1-based over the whole list (page offset included).
    position: Mapped[int] = mapped_column(Integer)
    #: The ranker's own rank (differs from position when the viewer sorted by another column).
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(80))
    surface: Mapped[str] = mapped_column(String(8))  # "page" or "api"
    demo: Mapped[bool] = mapped_column(Boolean, default=False)


class FeedbackAction(Base):
    """One thing done with a (project, institution) pair, linked to the impression it came from."""

    __tablename__ = "feedback_action"
    __table_args__ = (Index("ix_feedback_action_pair", "project_id", "institution_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[ActionKind] = mapped_column(enum_column(ActionKind), index=True)
    project_id: Mapped[int] = mapped_column(Integer)
    institution_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    impression_id: Mapped[int | None] = mapped_column(
        ForeignKey("impression.id", ondelete="SET NULL"), index=True
    )
    list_id: Mapped[str | None] = mapped_column(String(32))
    position: Mapped[int | None] = mapped_column(Integer)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
