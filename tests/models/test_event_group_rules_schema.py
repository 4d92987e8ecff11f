"""The 0008_event_group_rules migration on SQLite and PostgreSQL: existing events get no rules; downgrade."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from models import Event


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("match_event")}


def test_existing_events_get_an_empty_rule_list_and_the_column_downgrades(migrated_db, migrate) -> None:
    engine, url = migrated_db
    migrate(engine, url, "0007_events", down=True)
    assert "group_rules" not in _columns(engine)
    with engine.begin() as con:
        con.execute(
            text(
                "INSERT INTO match_event (name, online, slots, slot_minutes, institution_capacity,"
                " project_min, project_max, required, status, created_at)"
                " VALUES ('旧活动', false, 4, 20, 4, 1, 3, '[]', 'DRAFT', CURRENT_TIMESTAMP)"
            )
        )
    migrate(engine, url, "head")
    assert "group_rules" in _columns(engine)
    with Session(engine) as s:
        old = s.scalar(select(Event).where(Event.name == "旧活动"))
        assert old is not None and old.group_rules == []
        old.group_rules = [
            {"kinds": ["BANK"], "rounds": ["BANK_LOAN"], "needs": [], "at_least": 1, "label": "x"}
        ]
        s.commit()
        s.expire_all()
        assert s.scalar(select(Event)).group_rules[0]["kinds"] == ["BANK"]
        fresh = Event(name="新活动", slots=3)
        s.add(fresh)
        s.commit()
        assert fresh.group_rules == []
    migrate(engine, url, "0007_events", down=True)
    assert "group_rules" not in _columns(engine)
