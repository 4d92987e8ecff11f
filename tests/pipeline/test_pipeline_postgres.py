"""The pipeline on SQLite and PostgreSQL: migrate, move a connection to signing, count it, go down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, update
from sqlalchemy.orm import Session

from app.pipeline.figures import figures, parse_quarter
from app.pipeline.states import Actor, open_connection, transition
from models import Contest, ContestKind, Institution, InstitutionKind, Project, ProjectGroup
from models.enums import ConnectionStage as S
from models.pipeline import AppendOnlyError, ConnectionEvent, Party


@pytest.fixture()
def engine(migrated_db: tuple[Engine, str]) -> tuple[Engine, str]:
    return migrated_db


def test_pipeline_round_trip_on_the_database(engine: tuple[Engine, str], migrate: Any) -> None:
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

    migrate(eng, url, "0003@0001", down=True)
    assert "connection_event" not in inspect(eng).get_table_names()
    migrate(eng, url)
    assert "connection_event" in inspect(eng).get_table_names()
