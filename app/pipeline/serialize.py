"""Connections and their history as plain dicts (the API's bodies and the pages' data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.pipeline.states import OPEN_STAGES, china_date, is_idle, next_stages, outcome_kind_of
from app.serialize import iso
from models import Connection
from models.enums import ConnectionStage
from models.pipeline import ConnectionEvent, EventAction, Party


def outcome_json(c: Connection) -> dict[str, Any] | None:
    if c.outcome_kind is None:
        return None
    return {
        "kind": c.outcome_kind.value,
        "amount_wan": c.outcome_amount_wan,
        "round": c.outcome_round.value if c.outcome_round else None,
        "base": c.outcome_base,
        "area_m2": c.outcome_area_m2,
        "service_kind": c.outcome_service.value if c.outcome_service else None,
        "date": iso(c.outcome_date),
    }


def connection_json(c: Connection, private: bool, now: datetime, follow_up_days: int) -> dict[str, Any]:
    """Return a connection; the shortlist flag and notes only for its institution and the secretariat."""
    # Outside the institution the connection begins with the request, and private notes are no activity.
    last = c.last_activity_at if private else (public_activity(c) or c.last_activity_at)
    idle = is_idle(c, now, follow_up_days) if private else idle_since(c, last, now, follow_up_days)
    out: dict[str, Any] = {
        "id": c.id,
        "project_id": c.project_id,
        "project": c.project.name,
        "institution_id": c.institution_id,
        "institution": c.institution.name,
        "institution_kind": c.institution.kind.value,
        "side": c.institution.kind.side,
        "need_id": c.need_id,
        "stage": c.stage.value,
        "next_stages": [s.value for s in next_stages(c)],
        "outcome_kind": outcome_kind_of(c).value,
        "initiated_by": c.initiated_by.value if c.initiated_by else None,
        "requested_at": iso(c.requested_at),
        "created_at": iso(c.created_at if private else (c.requested_at or c.created_at)),
        "last_activity_at": iso(last),
        "follow_up": idle,
        "signed_at": iso(c.signed_at),
        "closed_reason": c.closed_reason,
        "outcome": outcome_json(c),
    }
    if private:
        out["shortlisted"] = c.shortlisted
        out["note"] = c.note
    return out


def idle_since(c: Connection, last: datetime | None, now: datetime, days: int) -> bool:
    """True when an open connection has had no activity since `last` for more than `days` days."""
    return c.stage in OPEN_STAGES and last is not None and now - _aware(last) > timedelta(days=days)


def event_json(e: ConnectionEvent | ShownEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": iso(e.at),
        "date": china_date(e.at).isoformat(),
        "action": e.action.value,
        "from_stage": e.from_stage.value if e.from_stage else None,
        "to_stage": e.to_stage.value,
        "actor_kind": e.actor_kind.value,
        "actor": e.actor_name,
        "note": e.note,
        "private": e.private,
        "detail": e.detail,
    }


@dataclass(frozen=True)
class ShownEvent:
    """A history event as a viewer outside the institution sees it (never written back)."""

    id: int
    at: datetime
    action: EventAction
    from_stage: ConnectionStage | None
    to_stage: ConnectionStage
    actor_kind: Party
    actor_name: str | None
    note: str | None
    private: bool
    detail: dict[str, Any] | None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def history(c: Connection, private: bool) -> list[Any]:
    """Return the events the viewer may read, oldest first.

    Outside the institution (and the secretariat) the history starts at the first request: what came
    before it (a shortlist, its closing) is the institution's private record, so the request is shown
    without the stage it came from.
    """
    if private:
        return list(c.events)
    if c.requested_at is None:
        return []
    start = _aware(c.requested_at)
    # A shortlist (created at 推荐, flagged or unflagged) is the institution's own record, whenever it was.
    shown: list[Any] = [
        e
        for e in c.events
        if not e.private
        and _aware(e.at) >= start
        and not (e.action is EventAction.CREATED and e.to_stage is ConnectionStage.RECOMMENDED)
        and e.action not in (EventAction.SHORTLISTED, EventAction.UNSHORTLISTED)
    ]
    if shown and shown[0].from_stage is not None:
        first = shown[0]
        shown[0] = ShownEvent(
            first.id,
            first.at,
            first.action,
            None,
            first.to_stage,
            first.actor_kind,
            first.actor_name,
            first.note,
            first.private,
            first.detail,
        )
    return shown


def public_activity(c: Connection) -> datetime | None:
    """Return the latest activity a viewer outside the institution can see (private notes excluded)."""
    times = [_aware(e.at) for e in history(c, False)]
    return max(times) if times else None
