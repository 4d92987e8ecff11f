"""Pipeline operations on a session: open, request, shortlist, move; commit and keep the ranking in step.

Views and the API call these with an Actor; each returns the connection and the event it recorded. The
caller audits and then calls `commit()`, so the change and its audit line land in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.pipeline.states import (
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
    if errors:
        raise InputError(errors)
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


def move(
    session: Session,
    connection: Connection,
    to_stage: S | str,
    actor: Actor,
    note: str | None = None,
    outcome: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> ConnectionEvent:
    """Move a connection (see states.transition); nothing is written when it is refused."""
    return transition(connection, to_stage, actor, note, outcome, at)


def shortlist(
    session: Session, connection: Connection, flag: bool, actor: Actor, note: str | None = None
) -> ConnectionEvent:
    """Flag or unflag a connection on the institution's shortlist, with its private note."""
    return set_shortlist(connection, flag, actor, note)


def note(
    session: Session, connection: Connection, actor: Actor, text: str, private: bool = False
) -> ConnectionEvent:
    """Record a note; it counts as activity (clears 待跟进)."""
    return add_note(connection, actor, text, private)


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
