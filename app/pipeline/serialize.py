"""Connections and their history as plain dicts (the API's bodies and the pages' data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.pipeline.states import china_date, is_idle, next_stages, outcome_kind_of
from models import Connection
from models.pipeline import ConnectionEvent


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


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
        "date": c.outcome_date.isoformat() if c.outcome_date else None,
    }


def connection_json(c: Connection, private: bool, now: datetime, follow_up_days: int) -> dict[str, Any]:
    """Return a connection; the shortlist flag and notes only for its institution and the secretariat."""
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
        "requested_at": _iso(c.requested_at),
        "created_at": _iso(c.created_at),
        "last_activity_at": _iso(c.last_activity_at),
        "follow_up": is_idle(c, now, follow_up_days),
        "signed_at": _iso(c.signed_at),
        "closed_reason": c.closed_reason,
        "outcome": outcome_json(c),
    }
    if private:
        out["shortlisted"] = c.shortlisted
        out["note"] = c.note
    return out


def event_json(e: ConnectionEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": _iso(e.at),
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


def history(c: Connection, private: bool) -> list[ConnectionEvent]:
    """Return the events the viewer may read, oldest first."""
    return [e for e in c.events if private or not e.private]
