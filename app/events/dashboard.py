"""The dashboard's events figure: per quarter, events held, their meetings, the connections they became
(已会谈) and how many of those went on to 已签约."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Connection
from models.enums import ConnectionStage
from models.events import Event, EventContest, EventStatus, Meeting

#: stages a met connection can have reached afterwards that count as 签约 on the dashboard
SIGNED = (ConnectionStage.SIGNED,)


def _event_day(event: Event) -> date:
    return event.held_on or event.created_at.date()


def quarters_ending(last: Any, n: int = 4) -> list[Any]:
    """Return the n quarters (app.pipeline.figures.Period) ending with `last`, oldest first."""
    out = [last]
    while len(out) < n:
        out.append(out[-1].previous())
    return out[::-1]


def event_quarters(
    session: Session, quarters: Sequence[Any], scope: Iterable[int] | None
) -> list[dict[str, Any]]:
    """Return one row per quarter: events held, meetings, connections (已会谈) and signed among them.

    An event counts in the quarter of its date (its creation day when it has none), for the contests in
    `scope` (None: every contest); only events marked held (已举办) count.
    """
    stmt = select(Event).where(Event.status == EventStatus.HELD)
    if scope is not None:
        stmt = stmt.where(
            Event.id.in_(select(EventContest.event_id).where(EventContest.contest_id.in_(list(scope))))
        )
    events = list(session.scalars(stmt))
    rows = [
        {"label": q.label, "quarter": q.quarter, "events": 0, "meetings": 0, "connections": 0, "signed": 0}
        for q in quarters
    ]
    if not events:
        return rows
    meetings = session.execute(
        select(Meeting.event_id, Meeting.connection_id, Connection.stage)
        .outerjoin(Connection, Connection.id == Meeting.connection_id)
        .where(Meeting.event_id.in_([e.id for e in events]))
    ).all()
    by_event: dict[int, list[tuple[int | None, ConnectionStage | None]]] = {}
    for event_id, connection_id, stage in meetings:
        by_event.setdefault(event_id, []).append((connection_id, stage))
    for event in events:
        day = _event_day(event)
        for q, row in zip(quarters, rows, strict=True):
            if q.start <= day < q.end:
                found = by_event.get(event.id, [])
                row["events"] += 1
                row["meetings"] += len(found)
                row["connections"] += len({c for c, _s in found if c is not None})
                row["signed"] += len({c for c, s in found if c is not None and s in SIGNED})
                break
    return rows
