"""Pipeline operations: what a page and its API route do to a connection, and the steps they are made of.

The actions (`connect_action`, `move_action`, `shortlist_action`, `note_action`) are the one call a page
and its API route make for each thing a person does: check who may, validate the input, change the
connection (app/pipeline/states.py), write the audit line and commit, in that order. A refusal aborts
through `app.access.deny` (audited 403/404, a Chinese page or JSON from the app's error handlers); bad input
or an illegal move raises `InputError` (`TransitionError` for moves) with nothing written, which the page
shows in Chinese and the API answers as structured JSON.

The steps need no request: `connect` opens or requests a connection for an Actor, the moves themselves are
app/pipeline/states.py's (`transition`, `set_shortlist`, `add_note`), and `commit` commits and keeps the
ranking evidence in step; the event planner uses them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import audit, deny
from app.pipeline import rules
from app.pipeline.schemas import ConnectionIn, MoveIn, ShortlistIn, validate_in
from app.pipeline.states import (
    OPEN_STAGES,
    Actor,
    TransitionError,
    add_note,
    changes_evidence,
    open_connection,
    request_after_closed_shortlist,
    set_shortlist,
    transition,
)
from app.schemas import InputError
from models import Connection, Institution, Need, Project
from models.accounts import User
from models.enums import ConnectionStage as S
from models.pipeline import ConnectionEvent


def pair(session: Session, project_id: int, institution_id: int) -> Connection | None:
    """Return the connection of a project and an institution, if any."""
    return session.scalar(
        select(Connection).where(
            Connection.project_id == project_id, Connection.institution_id == institution_id
        )
    )


def connect(
    session: Session,
    project_id: int,
    institution_id: int,
    action: Literal["shortlist", "request"],
    actor: Actor,
    note: str | None = None,
    need_id: int | None = None,
    at: datetime | None = None,
) -> tuple[Connection, ConnectionEvent]:
    """Shortlist a project for an institution, or request an introduction (either side).

    A shortlist creates the connection at 推荐 when there is none. A request creates it at 已申请对接, or
    moves an existing 推荐 (shortlisted), 已拒绝 (asking again) or closed, never-requested shortlist entry
    (终止 without a request) there.

    Raises:
        InputError: the project, institution or need does not exist.
        TransitionError: the pair already has a connection past 推荐 (code "exists"), or the move is refused.
    """
    project = session.get(Project, project_id)
    inst = session.get(Institution, institution_id)
    errors = {}
    # An archived record takes no new connections (its existing ones go on): it answers as a missing one.
    if project is None or project.archived_at is not None:
        errors["project_id"] = "项目：不存在"
    if inst is None or inst.archived_at is not None:
        errors["institution_id"] = "机构：不存在"
    if need_id is not None:
        need = session.get(Need, need_id)
        if need is None or need.archived_at is not None or need.institution_id != institution_id:
            errors["need_id"] = "对接需求：不存在或不属于该机构"
    if errors:  # well-formed ids naming nothing the caller may connect: 404, like a missing path
        raise InputError(errors, "；".join(errors.values()), status=404)
    assert project is not None and inst is not None
    c = pair(session, project_id, institution_id)
    if action == "shortlist":
        if c is None:
            c = open_connection(project, inst, actor, S.RECOMMENDED, at=at, need_id=need_id)
            session.add(c)
        return c, set_shortlist(c, True, actor, note, at=at)
    if c is None:
        c = open_connection(project, inst, actor, S.REQUESTED, note=note, at=at, need_id=need_id)
        session.add(c)
        return c, c.events[-1]
    if c.stage in (S.RECOMMENDED, S.REFUSED):
        return c, transition(c, S.REQUESTED, actor, note, at=at)
    if c.stage is S.TERMINATED and c.requested_at is None:
        # A closed private shortlist entry: the requester may not even know of it (a project never
        # sees an institution's shortlist), so it neither blocks the request nor shows in the answer.
        return c, request_after_closed_shortlist(c, actor, note, at=at)
    # Past 推荐 with a request: both parties can see this connection, so naming its stage leaks nothing.
    raise TransitionError(
        f"该项目与该机构已有对接记录（当前阶段：{c.stage.value}），请在原记录上继续跟进",
        code="exists",
        from_stage=c.stage,
        to_stage=S.REQUESTED,
        field="project_id",
    )


def idle_condition(now: datetime, days: int) -> Any:
    """Return the SQL condition "flagged 待跟进": open and without activity for more than `days` (the
    institution's view; states.is_idle is the same rule on one loaded connection)."""
    return Connection.stage.in_(OPEN_STAGES) & (Connection.last_activity_at < now - timedelta(days=days))


def commit(session: Session, connection: Connection, events: list[ConnectionEvent]) -> None:
    """Commit the change (with its audit line); refresh the ranking evidence when a signature changed."""
    evidence = any(changes_evidence(e) for e in events)
    try:
        if evidence:  # every worker's index learns it from the change log (app.index_sync)
            from app.index_sync import record_changes

            record_changes(session, "institution", [connection.institution_id])
        session.commit()
    except Exception:
        session.rollback()
        raise
    from app.feedback import record_pipeline_actions

    record_pipeline_actions(session, connection, events)  # linked to the list that showed the pair
    if evidence:
        from app.services import refresh_institution

        refresh_institution(session, connection.institution_id)


# --- actions: the one call of a page and its API route ---------------------------------------------------


def connect_action(session: Session, user: User | None, values: ConnectionIn) -> tuple[Connection, bool]:
    """Shortlist or request for an account (see `connect`): check, connect, audit, commit.

    Returns the connection and whether the account could already see it (an API answers 200, not 201;
    a project must not learn of an institution's private shortlist).
    """
    check_connect(user, values)
    prior = pair(session, values.project_id, values.institution_id)
    existed = prior is not None and rules.can_view(user, prior)
    with _undone_on_error(session):
        c, ev = connect(
            session,
            values.project_id,
            values.institution_id,
            values.action,
            rules.actor(user),
            values.note,
            values.need_id,
        )
        session.flush()
        audit(f"connection.{values.action}", "connection", c.id, to_stage=ev.to_stage.value)
        commit(session, c, [ev])
    return c, existed


def check_connect(user: User | None, values: ConnectionIn) -> None:
    """Refuse (audited 403) a shortlist or request the account may not make (also the confirmation page's)."""
    if not rules.can_connect(user, values.project_id, values.institution_id, values.action):
        deny("connect refused", "只能为本机构建立候选或申请对接，项目方只能为本项目申请对接")


#: What an action reads: the values, or a function returning them, called only after the lookup and the
#: access check (so a missing or hidden connection answers 404/403 before its body is judged).
Values = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def _read(data: Values) -> dict[str, Any]:
    return dict(data() if callable(data) else data)


def move_action(session: Session, user: User | None, ident: int, data: Values) -> Connection:
    """Move a connection the account may move ({to_stage, note?, outcome?}, as MoveIn): check, move, audit,
    commit."""
    c = rules.get_visible(session, ident)
    if not rules.can_move(user, c):
        deny(f"move connection {ident} refused", "没有权限变更该对接")
    values = validate_in(MoveIn, _read(data))
    frm = c.stage
    with _undone_on_error(session):
        ev = transition(c, values.to_stage, rules.actor(user), values.note, values.outcome)
        audit("connection.move", "connection", c.id, from_stage=frm.value, to_stage=ev.to_stage.value)
        commit(session, c, [ev])
    return c


def shortlist_action(session: Session, user: User | None, ident: int, data: Values) -> Connection:
    """Flag or unflag a connection on the institution's shortlist ({shortlisted, note?}, as ShortlistIn)."""
    c = rules.get_visible(session, ident)
    if not rules.sees_private(user, c):
        deny(f"shortlist connection {ident} refused", "候选名单是机构的内部记录")
    values = validate_in(ShortlistIn, _read(data))
    with _undone_on_error(session):
        ev = set_shortlist(c, values.shortlisted, rules.actor(user), values.note)
        audit("connection.shortlist", "connection", c.id, shortlisted=values.shortlisted)
        commit(session, c, [ev])
    return c


def note_action(
    session: Session, user: User | None, ident: int, text: str, private: bool = False
) -> Connection:
    """Record a follow-up note; `private` (the institution's own) only for those who see private notes."""
    c = rules.get_visible(session, ident)
    if not rules.can_move(user, c):
        deny(f"note on connection {ident} refused", "没有权限记录该对接")
    private = private and rules.sees_private(user, c)
    with _undone_on_error(session):
        ev = add_note(c, rules.actor(user), text, private)
        audit("connection.note", "connection", c.id, private=private)
        commit(session, c, [ev])
    return c


@contextmanager
def _undone_on_error(session: Session) -> Iterator[None]:
    """Roll back whatever the block wrote when it raises: a refused change leaves nothing behind."""
    try:
        yield
    except Exception:
        session.rollback()
        raise
