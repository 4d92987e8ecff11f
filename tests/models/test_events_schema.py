"""The events migration (0007_events) on SQLite and PostgreSQL: tables, constraints, downgrade."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    Contest,
    ContestKind,
    Event,
    EventContest,
    EventInvite,
    Expert,
    Institution,
    InstitutionKind,
)
from models.events import Conflict, ConflictSource, InstitutionRegistration, Meeting

EVENT_TABLES = {
    "match_event",
    "match_event_contest",
    "match_event_invite",
    "match_conflict",
    "match_meeting",
    "expert",
    "expert_assignment",
    "institution_registration",
}


@pytest.fixture()
def engine(migrated_db: tuple[Engine, str]) -> Engine:
    return migrated_db[0]


def _seed(s: Session) -> tuple[Contest, Institution]:
    contest = Contest(code="T-1", edition=7, kind=next(iter(ContestKind)), name="测试赛")
    inst = Institution(name="测试基金", kind=InstitutionKind.from_label("政府投资基金"), description="测试")
    s.add_all([contest, inst])
    s.flush()
    return contest, inst


def test_event_tables_hold_an_event_and_refuse_bad_rows(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= EVENT_TABLES
    with Session(engine) as s:
        contest, inst = _seed(s)
        event = Event(name="杭州产融对接会", slots=6, project_min=1, project_max=3)
        event.contests.append(EventContest(contest_id=contest.id))
        event.invites.append(EventInvite(institution_id=inst.id, capacity=4, unavailable_slots=[0, 5]))
        expert = Expert(
            name="王工", employer_institution_id=inst.id, fields=["新材料"], kinds=["TECH"], roles=["JUDGE"]
        )
        s.add_all(
            [event, expert, InstitutionRegistration(institution_id=inst.id, choices=["EVENTS", "JUDGE"])]
        )
        s.commit()
        loaded = s.scalar(select(Event))
        assert loaded is not None and loaded.invites[0].unavailable_slots == [0, 5]
        assert s.get(InstitutionRegistration, inst.id).choices == ["EVENTS", "JUDGE"]
        s.add(EventInvite(event_id=loaded.id))  # neither a project nor an institution
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        s.add(EventInvite(event_id=loaded.id, institution_id=inst.id))  # invited twice
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        s.add(Event(name="坏活动", slots=0))
        with pytest.raises(IntegrityError):
            s.commit()


def test_the_events_migration_downgrades_and_upgrades_again(engine: Engine, migrated_db, migrate) -> None:
    url = migrated_db[1]
    migrate(engine, url, "0006_sessions", down=True)
    tables = set(inspect(engine).get_table_names())
    assert not tables & EVENT_TABLES
    assert {"project", "institution", "login_session"} <= tables
    migrate(engine, url, "head")
    assert set(inspect(engine).get_table_names()) >= EVENT_TABLES
    with Session(engine) as s:
        s.add_all([Conflict(project_id=None, source=ConflictSource.DECLARED, cause="x")])
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        assert s.scalar(select(Meeting)) is None
