"""The change log the web workers follow to keep their in-memory matching indexes in step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class IndexChange(Base):
    """One ranked record (a project or an institution) created, changed, archived, restored or deleted.

    Written in the same transaction as the change itself; every worker applies the rows after the
    last id it has seen (app/index_sync.py). The id only grows (AUTOINCREMENT on SQLite too, so ids
    of pruned rows are never handed out again); rows older than the retention are pruned.
    """

    __tablename__ = "index_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_kind: Mapped[str] = mapped_column(String(16))  # project / institution
    record_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(16))  # upsert / remove
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
