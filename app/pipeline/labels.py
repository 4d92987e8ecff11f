"""Outcomes of past connections as training labels for the learned ranker.

A pair that reached one of the ACCEPTED_STAGES (app/pipeline/states.py) is a positive; a refused pair is a
negative. Connections that never got an answer (still 推荐 or 已申请对接, or closed before one) say
nothing about fit and are left out.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.pipeline.states import ACCEPTED_STAGES, china_date
from models import Connection
from models.enums import ConnectionStage as S
from models.pipeline import ConnectionEvent, EventAction


def outcome_labels(session: Session) -> list[tuple[int, int, int, date]]:
    """Return (project_id, institution_id, label, date) for every answered pair, oldest first.

    The label is 1 when the pair was accepted or signed, 0 when it was refused; the date is the Beijing
    date of the latest deciding move. A pair refused and later accepted (the project asked again) counts
    as its latest answer.
    """
    rows = session.execute(
        select(Connection.project_id, Connection.institution_id, ConnectionEvent.to_stage, ConnectionEvent.at)
        .join(ConnectionEvent, ConnectionEvent.connection_id == Connection.id)
        .where(
            ConnectionEvent.action == EventAction.MOVED,
            ConnectionEvent.to_stage.in_((*ACCEPTED_STAGES, S.REFUSED)),
        )
        .order_by(ConnectionEvent.at, ConnectionEvent.id)
    ).all()
    latest: dict[tuple[int, int], tuple[int, date]] = {}
    for project_id, institution_id, stage, at in rows:
        latest[(project_id, institution_id)] = (0 if stage is S.REFUSED else 1, china_date(at))
    return sorted(
        ((p, i, label, day) for (p, i), (label, day) in latest.items()), key=lambda r: (r[3], r[0], r[1])
    )
