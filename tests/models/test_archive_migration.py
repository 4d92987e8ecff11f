"""The archive migration (0005_archive) on SQLite and PostgreSQL: columns, downgrade, upgrade again,
and a database that refuses to delete a project or an institution that has history."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import (
    Connection,
    ConnectionStage,
    Contest,
    ContestKind,
    Institution,
    InstitutionKind,
    Need,
    Project,
)
from models.base import utcnow
from models.enums import ProjectGroup
from models.pipeline import ConnectionEvent, EventAction, Party

TABLES = ("project", "institution", "need")


@pytest.fixture()
def engine(migrated_db: tuple[Engine, str]) -> Engine:
    return migrated_db[0]


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def _world(engine: Engine) -> dict[str, int]:
    """Store a project and an institution linked by a signed connection with its history; return ids."""
    with Session(engine) as s:
        contest = Contest(code="T-1", edition=11, kind=ContestKind.FINAL, name="总决赛")
        p = Project(
            name="光伏清洗机器人",
            group=ProjectGroup.ENTERPRISE,
            contest=contest,
            industry="新能源",
            description="光伏电站清洗机器人。",
        )
        inst = Institution(name="某创投", kind=InstitutionKind.VC, description="投早期硬科技。")
        need = Need(institution=inst, title="寻找新能源项目", description="关注新能源方向。")
        c = Connection(
            project=p, institution=inst, need=need, stage=ConnectionStage.SIGNED, signed_at=utcnow()
        )
        c.events.append(
            ConnectionEvent(
                action=EventAction.CREATED, to_stage=ConnectionStage.SIGNED, actor_kind=Party.SECRETARIAT
            )
        )
        s.add_all([contest, p, inst, need, c])
        s.commit()
        return {"project": p.id, "institution": inst.id, "need": need.id, "connection": c.id}


def test_archive_columns_exist_and_round_trip(engine: Engine) -> None:
    for table in TABLES:
        assert {"archived_at", "archived_by_id"} <= _columns(engine, table), table
        assert f"ix_{table}_archived_at" in {i["name"] for i in inspect(engine).get_indexes(table)}
    ids = _world(engine)
    at = utcnow()
    with Session(engine) as s:
        p = s.get(Project, ids["project"])
        assert p is not None and p.archived_at is None and not p.is_archived
        p.archived_at, p.archived_by_id = at, 7
        s.commit()
    with Session(engine) as s:
        p = s.get(Project, ids["project"])
        assert p is not None and p.archived_at == at and p.archived_by_id == 7 and p.is_archived


def test_the_database_refuses_to_delete_records_with_history(engine: Engine) -> None:
    ids = _world(engine)
    for table in ("project", "institution"):
        with engine.connect() as conn, pytest.raises(IntegrityError):
            conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": ids[table]})
    with Session(engine) as s:
        s.delete(s.get(Project, ids["project"]))
        with pytest.raises(IntegrityError):  # the ORM no longer cascades to the connection either
            s.commit()
        s.rollback()
        s.delete(s.get(Institution, ids["institution"]))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM connection")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM connection_event")).scalar() == 1


def test_the_archive_migration_downgrades_and_upgrades_again_keeping_the_data(
    engine: Engine, migrate: Any
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    ids = _world(engine)
    migrate(engine, url, "0004", down=True)
    for table in TABLES:
        assert not {"archived_at", "archived_by_id"} & _columns(engine, table), table
    with engine.connect() as conn:
        # nothing pointing at the tables was lost (a table copy on SQLite would have dropped or nulled it)
        assert conn.execute(text("SELECT count(*) FROM connection")).scalar() == 1
        assert conn.execute(text("SELECT need_id FROM connection")).scalar() == ids["need"]
        assert conn.execute(text("SELECT count(*) FROM connection_event")).scalar() == 1
    migrate(engine, url)
    for table in TABLES:
        assert {"archived_at", "archived_by_id"} <= _columns(engine, table), table
    with Session(engine) as s:
        p = s.get(Project, ids["project"])
        assert p is not None and p.archived_at is None and p.name == "光伏清洗机器人"
