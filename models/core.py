"""The contest catalogue, projects, institutions and their needs (and their stored vectors).

Connections between a project and an institution, and their history, live in models/pipeline.py; the
relationships point one way (a Connection knows its project, institution and need), so this module imports
nothing from there. Deleting a project, institution or need that has connections is refused by the
database (the foreign keys); app/services.py archives such a record instead.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, StrList, UTCDateTime, enum_column, utcnow
from models.enums import Award, ContestKind, FundingRound, InstitutionKind, NeedStatus, ProjectGroup, Stage


def keyset_indexes(table: str, *columns: str) -> tuple[Index, ...]:
    """Return the (column, id) indexes `ix_<table>_<column>_id` that a list sorted by each column pages
    through (app.web.lists.keyset_page; migration 0013_list_indexes)."""
    return tuple(Index(f"ix_{table}_{column}_id", column, "id") for column in columns)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Archivable:
    """A record that is archived, never deleted, once it has history (connections).

    An archived record is hidden from lists, search and rankings, but its connections, their history and
    the figures computed from them stay as they were. Only a record without history is ever deleted.
    """

    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # No foreign key: accounts live in their own migration branch, and an archive must outlive an account.
    archived_by_id: Mapped[int | None] = mapped_column(Integer)

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class Contest(Base):
    """One contest of an edition (总决赛, 区域赛, 专题赛, 赛道赛, 境外区域赛)."""

    __tablename__ = "contest"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    edition: Mapped[int] = mapped_column(Integer)
    kind: Mapped[ContestKind] = mapped_column(enum_column(ContestKind))
    name: Mapped[str] = mapped_column(String(200))
    place: Mapped[str | None] = mapped_column(String(100))
    province: Mapped[str | None] = mapped_column(String(32))
    track: Mapped[str | None] = mapped_column(String(32))
    organisers: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(String(300))

    projects: Mapped[list[Project]] = relationship(back_populates="contest")

    @property
    def label(self) -> str:
        """How the contest is named on every page and in files: its code, then its name."""
        return f"{self.code} {self.name}"

    @property
    def short_label(self) -> str:
        """The label without the edition's common words, for narrow table columns and menus."""
        short = self.name.replace("第七届“创客中国”", "").replace("中小企业创新创业大赛", "")
        return f"{self.code} {short or self.name}"


class Project(Timestamped, Archivable, Base):
    """A contest entry (企业组 enterprise or 创客组 maker team)."""

    __tablename__ = "project"
    # Keyset paging: each sortable column with the id as tie-breaker (migration 0013_list_indexes).
    __table_args__ = keyset_indexes("project", "name", "province", "industry", "contest_id")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    group: Mapped[ProjectGroup] = mapped_column(enum_column(ProjectGroup))
    contest_id: Mapped[int] = mapped_column(ForeignKey("contest.id"), index=True)
    award: Mapped[Award] = mapped_column(enum_column(Award), default=Award.NONE)
    industry: Mapped[str] = mapped_column(String(32), index=True)
    track: Mapped[str | None] = mapped_column(String(32))
    province: Mapped[str | None] = mapped_column(String(32), index=True)
    city: Mapped[str | None] = mapped_column(String(32))
    stage: Mapped[Stage | None] = mapped_column(enum_column(Stage))
    amount_wan: Mapped[float | None] = mapped_column(Float)
    funding_round: Mapped[FundingRound | None] = mapped_column(enum_column(FundingRound))
    description: Mapped[str] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(Text)
    needs: Mapped[list[str]] = mapped_column(StrList, default=list)
    contact_name: Mapped[str | None] = mapped_column(String(64))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(120))
    employees: Mapped[int | None] = mapped_column(Integer)
    revenue_wan: Mapped[float | None] = mapped_column(Float)
    # Intake (0010_intake): the organiser's own project number, the company's unified social credit code,
    # the team lead (the import's stable key), total assets and the 划型 industry (eligibility).
    ref: Mapped[str | None] = mapped_column(String(64), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), index=True)
    team_lead: Mapped[str | None] = mapped_column(String(64))
    assets_wan: Mapped[float | None] = mapped_column(Float)
    sme_industry: Mapped[str | None] = mapped_column(String(32))

    contest: Mapped[Contest] = relationship(back_populates="projects")


class Institution(Timestamped, Archivable, Base):
    """A service institution: fund, investment institution, bank, base/park or service platform."""

    __tablename__ = "institution"
    __table_args__ = keyset_indexes("institution", "name", "province")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[InstitutionKind] = mapped_column(enum_column(InstitutionKind), index=True)
    province: Mapped[str | None] = mapped_column(String(32), index=True)
    city: Mapped[str | None] = mapped_column(String(32))
    industries: Mapped[list[str]] = mapped_column(StrList, default=list)
    stages: Mapped[list[str]] = mapped_column(StrList, default=list)
    ticket_min_wan: Mapped[float | None] = mapped_column(Float)
    ticket_max_wan: Mapped[float | None] = mapped_column(Float)
    services: Mapped[list[str]] = mapped_column(StrList, default=list)
    space_m2: Mapped[float | None] = mapped_column(Float)
    capacity: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str | None] = mapped_column(String(64))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    contact_email: Mapped[str | None] = mapped_column(String(120))
    #: What the ranking does with a candidate that nearly copies a project this institution backed:
    #: "avoid" (回避竞争, the default) ranks it below the others, "welcome" (欢迎同类) keeps its rank.
    competitor_policy: Mapped[str] = mapped_column(String(16), default="avoid", server_default="avoid")

    needs: Mapped[list[Need]] = relationship(back_populates="institution", cascade="all, delete-orphan")


class Need(Timestamped, Archivable, Base):
    """A matchmaking need (对接需求) posted by an institution."""

    __tablename__ = "need"
    __table_args__ = keyset_indexes("need", "title", "deadline")

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    industries: Mapped[list[str]] = mapped_column(StrList, default=list)
    stages: Mapped[list[str]] = mapped_column(StrList, default=list)
    services: Mapped[list[str]] = mapped_column(StrList, default=list)
    quota: Mapped[int | None] = mapped_column(Integer)
    deadline: Mapped[date | None] = mapped_column(Date)
    status: Mapped[NeedStatus] = mapped_column(enum_column(NeedStatus), default=NeedStatus.OPEN)

    institution: Mapped[Institution] = relationship(back_populates="needs")


class EmbeddingRecord(Base):
    """A stored vector of one record's text, keyed by model and the text's SHA-256."""

    __tablename__ = "embedding"
    __table_args__ = (UniqueConstraint("owner_kind", "owner_id", name="uq_embedding_owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(16))  # project / institution / need
    owner_id: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
