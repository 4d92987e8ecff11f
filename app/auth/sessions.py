"""Server-side login sessions: the cookie carries a random key, the row says whether it still counts.

Flask keeps its session in a signed cookie, so "logging out" by clearing the cookie leaves any copy
of it valid. Every login therefore opens a `LoginSession` row and puts only its random key in the
cookie; `app.access._load_user` accepts a cookie only while that row is live. Logout revokes the
row, a password change revokes all of the account's rows (then opens a fresh one for the browser
that made the change), and disabling an account revokes them all.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, has_request_context, request, session
from flask_login import login_user, logout_user
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.access import client_ip
from models.accounts import LoginSession, User, hash_token
from models.base import utcnow
from models.db import rowcount

#: The key of the login-session key in Flask's session cookie.
SESSION_KEY = "sid"

#: How often last_seen_at is written (one UPDATE a minute per session, not one per request).
TOUCH_EVERY = timedelta(minutes=1)

#: How long revoked and expired rows stay listed in the database before they are pruned.
KEEP_ENDED = timedelta(days=30)


def _idle() -> timedelta:
    return timedelta(seconds=int(current_app.config["LOGIN_SESSION_IDLE_SECONDS"]))


def _max_age() -> timedelta:
    return timedelta(seconds=int(current_app.config["LOGIN_SESSION_MAX_SECONDS"]))


def is_live(row: LoginSession) -> bool:
    """Return True if the session is neither revoked, idle too long nor older than the maximum age."""
    now = utcnow()
    return row.revoked_at is None and now - row.last_seen_at <= _idle() and now - row.created_at <= _max_age()


def start(db_session: Session, user: User) -> LoginSession:
    """Log the user in on this browser: a fresh cookie and a new server-side session row; commit."""
    _prune(db_session, user)
    ua = request.user_agent.string if has_request_context() else None
    row, plain = LoginSession.open(user, client_ip(), ua)
    db_session.add(row)
    db_session.flush()
    session.clear()  # nothing from before the login survives
    login_user(user)
    session[SESSION_KEY] = plain
    db_session.commit()
    return row


def current(db_session: Session) -> LoginSession | None:
    """Return the session row this request's cookie names (live or not), or None."""
    plain = session.get(SESSION_KEY)
    if not isinstance(plain, str) or not plain or len(plain) > 128:
        return None
    return db_session.scalar(select(LoginSession).where(LoginSession.key_hash == hash_token(plain)))


def check(db_session: Session, user: User) -> bool:
    """Return True if this request's cookie names a live session of this user; note it was seen.

    Called while the request's account is resolved, before any view runs, so the commit of the
    last-seen time carries nothing else.
    """
    row = current(db_session)
    if row is None or row.user_id != user.id or not is_live(row):
        return False
    now = utcnow()
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
        db_session.commit()
    return True


def end(db_session: Session) -> None:
    """Log this browser out: revoke its session row, clear the cookie; commit."""
    row = current(db_session)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    db_session.commit()
    logout_user()
    session.clear()


def revoke(db_session: Session, row: LoginSession) -> None:
    """Revoke one session (the 退出 button on the account page); the caller commits."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()


def revoke_all(db_session: Session, user: User, keep: LoginSession | None = None) -> int:
    """Revoke every live session of the user except `keep`; return how many; the caller commits."""
    stmt = (
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if keep is not None:
        stmt = stmt.where(LoginSession.id != keep.id)
    result = db_session.execute(stmt, execution_options={"synchronize_session": "fetch"})
    return rowcount(result)


def active(db_session: Session, user: User) -> list[LoginSession]:
    """Return the user's live sessions, the most recently seen first."""
    rows = db_session.scalars(
        select(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .order_by(LoginSession.last_seen_at.desc(), LoginSession.id.desc())
    ).all()
    return [r for r in rows if is_live(r)]


def _prune(db_session: Session, user: User) -> None:
    """Delete the user's sessions that ended more than KEEP_ENDED ago (they can never come back)."""
    cutoff = utcnow() - KEEP_ENDED
    db_session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == user.id,
            or_(LoginSession.revoked_at < cutoff, LoginSession.last_seen_at < cutoff - _idle()),
        ),
        execution_options={"synchronize_session": False},
    )
