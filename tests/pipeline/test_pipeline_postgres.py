"""The pipeline on SQLite and PostgreSQL: migrate, move a connection to signing, count it, go down."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, event, inspect, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.cli import alembic_config
from app.pipeline.figures import figures, parse_quarter
from app.pipeline.states import Actor, open_connection, transition
from models import Contest, ContestKind, Institution, InstitutionKind, Project, ProjectGroup
from models.db import make_engine
from models.enums import ConnectionStage as S
from models.pipeline import AppendOnlyError, ConnectionEvent, Party

PG_URL = os.environ.get("MATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _migrate(engine: Engine, url: str, target: str = "heads", down: bool = False) -> None:
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[Engine, str]]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'p.db'}"
        eng = make_engine(url)
        _migrate(eng, url)
        yield eng, url
        eng.dispose()
        return
    probe = make_engine(PG_URL)
    try:
        with probe.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL tests skipped: no server at {PG_URL} ({exc.orig.__class__.__name__})")
    schema = f"p_{uuid.uuid4().hex[:10]}"
    with probe.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(PG_URL)

    @event.listens_for(eng, "connect")
    def _search_path(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute(f'SET search_path TO "{schema}"')
        cur.close()
        dbapi_conn.commit()

    try:
        _migrate(eng, PG_URL)
        yield eng, PG_URL
    finally:
        eng.dispose()
        with probe.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        probe.dispose()


def test_pipeline_round_trip_on_the_database(engine: tuple[Engine, str]) -> None:
    eng, url = engine
    t0 = datetime(2026, 7, 2, 2, 0, tzinfo=UTC)
    actor = Actor(Party.SECRETARIAT, None, "秘书处")
    with Session(eng) as s:
        contest = Contest(code="T-01", edition=7, kind=ContestKind.REGIONAL, name="测试赛")
        p = Project(
            name="测试项目",
            group=ProjectGroup.ENTERPRISE,
            contest=contest,
            industry="人工智能",
            description="测试项目的简介文字",
        )
        fund = Institution(name="测试基金", kind=InstitutionKind.VC, description="测试基金的简介文字")
        s.add_all([contest, p, fund])
        s.flush()
        c = open_connection(p, fund, actor, S.REQUESTED, at=t0)
        s.add(c)
        for n, stage in enumerate([S.ACCEPTED, S.MET, S.DUE_DILIGENCE], start=1):
            transition(c, stage, actor, at=t0 + timedelta(days=n))
        transition(
            c,
            S.SIGNED,
            actor,
            outcome={"amount_wan": 880, "round": "A轮", "date": "2026-07-20"},
            at=t0 + timedelta(days=30),
        )
        s.commit()
        cid = c.id

    with Session(eng) as s:
        fig = figures(s, parse_quarter("2026Q3"), now=t0 + timedelta(days=100)).as_json()
        assert fig["totals"]["signed"] == 1 and fig["totals"]["financing_wan"] == 880
        assert [x["count"] for x in fig["funnel"]] == [1, 1, 1, 1, 1, 1]
        assert fig["success_cases"][0]["summary"] == "A轮融资 880 万元"
        with pytest.raises(AppendOnlyError):
            s.execute(update(ConnectionEvent).values(note="x"))
        s.rollback()
        stages = s.scalars(
            select(ConnectionEvent.to_stage)
            .where(ConnectionEvent.connection_id == cid)
            .order_by(ConnectionEvent.at)
        ).all()
        assert stages == [S.REQUESTED, S.ACCEPTED, S.MET, S.DUE_DILIGENCE, S.SIGNED]

    _migrate(eng, url, "0003@0001", down=True)
    assert "connection_event" not in inspect(eng).get_table_names()
    _migrate(eng, url)
    assert "connection_event" in inspect(eng).get_table_names()
