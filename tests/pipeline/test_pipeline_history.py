"""The history is append-only: nothing in it can be changed or deleted through the ORM; the migration runs."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from app.extensions import db
from models import Connection, Project
from models.pipeline import AppendOnlyError, ConnectionEvent


def test_history_rows_cannot_be_changed_or_deleted(app) -> None:
    with app.app_context():
        s = db.session
        ev = s.scalar(select(ConnectionEvent).order_by(ConnectionEvent.id))
        original = ev.note
        ev.note = "篡改"
        with pytest.raises(AppendOnlyError):
            s.flush()
        s.rollback()
        s.delete(s.get(ConnectionEvent, ev.id))
        with pytest.raises(AppendOnlyError):
            s.flush()
        s.rollback()
        with pytest.raises(AppendOnlyError):
            s.execute(update(ConnectionEvent).values(note="x"))
        with pytest.raises(AppendOnlyError):
            s.execute(delete(ConnectionEvent).where(ConnectionEvent.id == ev.id))
        s.rollback()
        assert s.get(ConnectionEvent, ev.id).note == original


def test_moving_appends_and_keeps_what_was_there(app, world, as_user) -> None:
    fund = as_user("fund")
    cid = fund.post(
        "/api/connections",
        json={
            "project_id": world.project_id,
            "institution_id": world.fund_id,
            "action": "shortlist",
            "note": "第一版备注",
        },
    ).json["id"]
    fund.post(f"/api/connections/{cid}/shortlist", json={"shortlisted": True, "note": "第二版备注"})
    fund.post(
        "/api/connections",
        json={"project_id": world.project_id, "institution_id": world.fund_id, "action": "request"},
    )
    with app.app_context():
        events = db.session.scalars(
            select(ConnectionEvent).where(ConnectionEvent.connection_id == cid).order_by(ConnectionEvent.id)
        ).all()
        assert [e.note for e in events] == [None, "第一版备注", "第二版备注", None]
        assert [e.to_stage.value for e in events] == ["推荐", "推荐", "推荐", "已申请对接"]
        assert events[-1].from_stage.value == "推荐" and events[-1].actor_name == "测试fund"
        assert db.session.get(Connection, cid).note == "第二版备注"


def test_deleting_a_project_archives_it_and_keeps_its_connections_and_their_history(
    app, world, as_user
) -> None:
    from app import services

    cid = (
        as_user("proj")
        .post("/api/connections", json={"project_id": world.project_id, "institution_id": world.fund_id})
        .json["id"]
    )
    with app.app_context():
        assert services.delete_project(db.session, db.session.get(Project, world.project_id)) == "archived"
        assert db.session.get(Project, world.project_id).archived_at is not None
        assert db.session.get(Connection, cid) is not None
        assert (
            db.session.scalar(select(ConnectionEvent).where(ConnectionEvent.connection_id == cid)) is not None
        )


def test_pipeline_migration_goes_down_and_up_on_sqlite(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from app.cli import alembic_config

    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "heads")
    engine = create_engine(url)
    assert "connection_event" in inspect(engine).get_table_names()
    assert "last_activity_at" in {c["name"] for c in inspect(engine).get_columns("connection")}
    command.downgrade(cfg, "0003@0001")
    insp = inspect(engine)
    assert "connection_event" not in insp.get_table_names()
    assert "last_activity_at" not in {c["name"] for c in insp.get_columns("connection")}
    command.upgrade(cfg, "heads")
    assert "connection_event" in inspect(engine).get_table_names()
    engine.dispose()
