"""The data layer on SQLite and on the real PostgreSQL: migrations, catalogue, mappings, constraints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.catalog import catalogue_files, load_contests
from models.core import Contest, EmbeddingRecord, Institution, Need, Project
from models.enums import Award, ConnectionStage, ContestKind, InstitutionKind, ProjectGroup, Stage
from models.pipeline import Connection


@pytest.fixture()
def engine(migrated_db: tuple[Engine, str]) -> Engine:
    return migrated_db[0]


@pytest.fixture()
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        for path in catalogue_files():
            load_contests(s, path)
        yield s


def _project(contest: Contest, **kw) -> Project:
    values = dict(
        name="微型光谱仪",
        group=ProjectGroup.ENTERPRISE,
        contest=contest,
        award=Award.TOP500,
        industry="智能装备",
        province="江苏省",
        stage=Stage.GROWTH,
        amount_wan=800.0,
        description="掌上近红外光谱仪，用于农产品快检。",
        needs=["融资", "检验检测"],
    )
    values.update(kw)
    return Project(**values)


def test_migrations_create_every_table(engine):
    tables = set(inspect(engine).get_table_names())
    assert {
        "contest",
        "project",
        "institution",
        "need",
        "connection",
        "embedding",
        "alembic_version",
    } <= tables


def test_catalogue_has_the_48_contests_of_the_7th_edition(session):
    by_kind = dict(session.execute(select(Contest.kind, func.count()).group_by(Contest.kind)).all())
    assert by_kind == {
        ContestKind.FINAL: 1,
        ContestKind.REGIONAL: 35,
        ContestKind.THEMATIC: 5,
        ContestKind.TRACK: 6,
        ContestKind.OVERSEAS: 1,
    }
    tracks = set(session.scalars(select(Contest.track).where(Contest.kind == ContestKind.TRACK)))
    assert tracks == {"人工智能", "卫星", "智能家居", "AI+工业", "光伏新能源", "农业机械"}
    themes = set(session.scalars(select(Contest.track).where(Contest.kind == ContestKind.THEMATIC)))
    assert themes == {"物联网", "区块链", "生物医药", "新材料", "智能装备"}
    # loading again updates in place, it does not duplicate
    load_contests(session, catalogue_files()[0])
    assert session.scalar(select(func.count(Contest.id))) == 48


def test_round_trip_of_enums_lists_and_timestamps(session):
    contest = session.scalar(select(Contest).where(Contest.code == "7-R09"))
    p = _project(contest)
    inst = Institution(
        name="苏州某科创基金",
        kind=InstitutionKind.GOV_FUND,
        province="江苏省",
        industries=["智能装备", "新材料"],
        stages=["成长期"],
        ticket_min_wan=500,
        ticket_max_wan=5000,
        description="政府引导基金，投资本地先进制造。",
    )
    session.add_all([p, inst])
    session.commit()
    session.expunge_all()
    p2 = session.get(Project, p.id)
    assert p2.group is ProjectGroup.ENTERPRISE and p2.award is Award.TOP500 and p2.stage is Stage.GROWTH
    assert p2.needs == ["融资", "检验检测"]
    assert p2.created_at.tzinfo is not None
    assert p2.contest.name.endswith("江苏省中小企业创新创业大赛")
    i2 = session.get(Institution, inst.id)
    assert i2.kind.side == "fund" and i2.industries == ["智能装备", "新材料"]


def test_connections_are_unique_per_pair_and_outlive_any_delete_of_the_project(session):
    contest = session.scalar(select(Contest).limit(1))
    p = _project(contest)
    inst = Institution(
        name="某孵化基地", kind=InstitutionKind.SME_BASE, description="小微企业创业创新示范基地。"
    )
    need = Need(
        institution=inst, title="招引硬科技团队", description="提供两年免租工位。", deadline=date(2027, 1, 31)
    )
    session.add_all([p, inst, need])
    session.flush()
    session.add(Connection(project=p, institution=inst, need=need, stage=ConnectionStage.RECOMMENDED))
    session.commit()
    session.add(Connection(project_id=p.id, institution_id=inst.id))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    # The ORM no longer cascades; the foreign key refuses to orphan the connection (SQLite and PostgreSQL).
    session.delete(session.get(Project, p.id))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert session.scalar(select(func.count(Connection.id))) == 1
    assert session.get(Need, need.id).deadline == date(2027, 1, 31)


def test_one_vector_per_record(session):
    session.add(
        EmbeddingRecord(
            owner_kind="project", owner_id=1, model="e5", dim=2, text_hash="a" * 64, vector=b"\0" * 8
        )
    )
    session.commit()
    session.add(
        EmbeddingRecord(
            owner_kind="project", owner_id=1, model="e5", dim=2, text_hash="b" * 64, vector=b"\0" * 8
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_institution_filters_find_list_members(session):
    from app.services import InstitutionFilter, institution_query

    session.add_all(
        [
            Institution(
                name="新材料基金",
                kind=InstitutionKind.VC,
                industries=["新材料", "人工智能"],
                description="投新材料。",
            ),
            Institution(
                name="农业基金", kind=InstitutionKind.VC, industries=["现代农业"], description="投现代农业。"
            ),
        ]
    )
    session.commit()
    found = session.scalars(institution_query(InstitutionFilter(industry="新材料"))).all()
    assert [i.name for i in found] == ["新材料基金"]
    found = session.scalars(institution_query(InstitutionFilter(industry="人工智能", side="fund"))).all()
    assert [i.name for i in found] == ["新材料基金"]
