"""Who may see and move which connection (on top of app/access.py), shared by the pages and the API.

- an institution's pipeline (its shortlist, notes, every connection) is for its members and the secretariat;
- a project sees the connections that were requested (by either side), never an institution's private
  shortlist, and only the non-private history;
- the dashboard and the report: the secretariat for all contests, an organiser for its own contests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.access import can_view_institution_private, current_user, deny, is_secretariat, organiser_contest_ids
from app.pipeline.states import Actor
from models import Connection
from models.enums import Role
from models.pipeline import Party

ROLE_PARTY = {
    Role.ADMIN: Party.SECRETARIAT,
    Role.ORGANISER: Party.ORGANISER,
    Role.INSTITUTION: Party.INSTITUTION,
    Role.PROJECT: Party.PROJECT,
}


def actor(user: Any) -> Actor:
    """Return the pipeline actor of an account."""
    return Actor(ROLE_PARTY[user.role], user.id, user.display_name or user.username)


def is_project_member(user: Any, project_id: int) -> bool:
    return user is not None and user.role is Role.PROJECT and user.project_id == project_id


def can_view(user: Any, c: Connection) -> bool:
    """The connection's institution (members) and the secretariat; the project once it was requested."""
    if can_view_institution_private(user, c.institution_id):
        return True
    return is_project_member(user, c.project_id) and c.requested_at is not None


def sees_private(user: Any, c: Connection) -> bool:
    """True for whoever may read the institution's shortlist flag, notes and private history."""
    return can_view_institution_private(user, c.institution_id)


def can_move(user: Any, c: Connection) -> bool:
    """The two parties and the secretariat move a connection (an organiser only watches the figures)."""
    return can_view(user, c) and user.role in (Role.ADMIN, Role.INSTITUTION, Role.PROJECT)


def can_connect(user: Any, project_id: int, institution_id: int, action: str) -> bool:
    """Institution members shortlist and request for their institution; a project requests for itself."""
    if is_secretariat(user):
        return True
    if user is None:
        return False
    if user.role is Role.INSTITUTION:
        return bool(user.institution_id == institution_id)
    return action == "request" and is_project_member(user, project_id)


def get_visible(session: Any, ident: int) -> Connection:
    """Return a connection the current user may see, or 404 (its existence is private too)."""
    c = session.get(Connection, ident)
    user = current_user()
    if c is None or not can_view(user, c):
        deny(f"connection {ident} not visible", "对接记录不存在", status=404)
    return c


def visible_query(user: Any) -> Any:
    """Return a select of the connections the user may list (None when the role has no list)."""
    stmt = select(Connection)
    if is_secretariat(user):
        return stmt
    if user is not None and user.role is Role.INSTITUTION and user.institution_id:
        return stmt.where(Connection.institution_id == user.institution_id)
    if user is not None and user.role is Role.PROJECT and user.project_id:
        return stmt.where(Connection.project_id == user.project_id, Connection.requested_at.is_not(None))
    return None


def report_scope(user: Any) -> set[int] | None:
    """Return the contests whose figures the user may see (None = all), or deny."""
    if user is None or user.role not in (Role.ADMIN, Role.ORGANISER):
        deny("dashboard needs secretariat or organiser")
    return organiser_contest_ids(user)
