"""Accounts, API tokens, self-registrations and the append-only audit log (no Flask here)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base, UTCDateTime, enum_column, utcnow
from models.core import Contest, Institution, Project
from models.enums import AccountStatus, RegistrationStatus, Role

#: Which contests an organiser account runs.
organiser_contest = Table(
    "organiser_contest",
    Base.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("contest_id", ForeignKey("contest.id", ondelete="CASCADE"), primary_key=True),
)


def new_stamp() -> str:
    """Return a fresh session stamp: changing it logs every session of the account out."""
    return secrets.token_hex(8)


class User(Base):
    """A person who logs in: secretariat, contest organiser, institution member or project member.

    Quacks like a Flask-Login user (is_authenticated, is_active, get_id) without importing Flask.
    """

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role), index=True)
    status: Mapped[AccountStatus] = mapped_column(enum_column(AccountStatus), default=AccountStatus.PENDING)
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id", ondelete="SET NULL"), index=True
    )
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="SET NULL"), index=True)
    session_stamp: Mapped[str] = mapped_column(String(32), default=new_stamp)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    institution: Mapped[Institution | None] = relationship()
    project: Mapped[Project | None] = relationship()
    contests: Mapped[list[Contest]] = relationship(secondary=organiser_contest, order_by=Contest.code)
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    # --- the Flask-Login protocol ---
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.status is AccountStatus.APPROVED

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """Return the session id: the primary key plus the stamp, so a password change ends old sessions."""
        return f"{self.id}:{self.session_stamp}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role.name}>"


TOKEN_PREFIX = "cm_"


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored (the token itself never is)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiToken(Base):
    """A bearer token for the JSON API; only its hash is stored, the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # the first characters, so a user can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        """Return a new token row for the user and the plain token (to show once, never stored)."""
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        return cls(user=user, name=name, token_hash=hash_token(plain), hint=plain[:10]), plain

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class LoginSession(Base):
    """One browser login, kept on the server: the cookie only carries its random key.

    Logging out, changing the password or disabling the account revokes the row, so a copied
    cookie stops working at once; only the key's hash is stored.
    """

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    @classmethod
    def open(cls, user: User, ip: str | None, user_agent: str | None) -> tuple[LoginSession, str]:
        """Return a new session row for the user and its plain key (for the cookie, never stored)."""
        plain = secrets.token_urlsafe(32)
        now = utcnow()
        row = cls(
            user=user,
            key_hash=hash_token(plain),
            created_at=now,
            last_seen_at=now,
            ip=ip[:64] if ip else None,
            user_agent=user_agent[:200] if user_agent else None,
        )
        return row, plain

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Registration(Base):
    """A self-registration waiting for the secretariat: an institution (对接服务报名) or a project.

    The submitted profile waits in `data` and becomes a record only on approval, so nothing
    unapproved ever shows in the public directory. A project may instead claim an existing entry.
    """

    __tablename__ = "registration"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "institution" or "project"
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    claim_project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="SET NULL"))
    status: Mapped[RegistrationStatus] = mapped_column(
        enum_column(RegistrationStatus), default=RegistrationStatus.PENDING, index=True
    )
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    claim_project: Mapped[Project | None] = relationship()
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class AuditLog(Base):
    """One line of the append-only audit trail: who did what to which record, from where, when.

    No foreign keys on purpose: deleting a user or a record must never touch its history.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    obj_kind: Mapped[str | None] = mapped_column(String(32), index=True)
    obj_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or remove an audit log row."""


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.dirty:
        if isinstance(obj, AuditLog) and session.is_modified(obj):
            raise AppendOnlyError("the audit log is append-only: rows cannot be changed")
    for obj in session.deleted:
        if isinstance(obj, AuditLog):
            raise AppendOnlyError("the audit log is append-only: rows cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_audit_changes(state: Any) -> None:
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and mapper.class_ is AuditLog:
        raise AppendOnlyError("the audit log is append-only: bulk UPDATE/DELETE refused")


@event.listens_for(AuditLog, "before_update")
def _refuse_update(_mapper: Any, _conn: Any, _target: AuditLog) -> None:
    raise AppendOnlyError("the audit log is append-only: rows cannot be changed")


@event.listens_for(AuditLog, "before_delete")
def _refuse_delete(_mapper: Any, _conn: Any, _target: AuditLog) -> None:
    raise AppendOnlyError("the audit log is append-only: rows cannot be deleted")
