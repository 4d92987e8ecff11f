"""The 0011_alerts migration on SQLite and PostgreSQL: tables, no duplicate alerts, down and up again."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Contest, ContestKind, Institution, InstitutionKind, Project, ProjectGroup
from models.accounts import User
from models.alerts import AlertFrequency, Notification, SavedSearch, SearchKind
from models.enums import Role

TABLES = {"saved_search", "alert_notification", "alert_settings"}


def test_alert_tables_refuse_duplicates_and_downgrade(migrated_db, migrate) -> None:
    engine, url = migrated_db
    assert set(inspect(engine).get_table_names()) >= TABLES
    with Session(engine) as s:
        contest = Contest(code="T1", edition=7, kind=ContestKind.FINAL, name="测试赛")
        inst = Institution(name="测试基金", kind=InstitutionKind.VC, description="一家测试用的投资机构。")
        user = User(
            username="u1", display_name="测试", password_hash="x", role=Role.INSTITUTION, institution=inst
        )
        project = Project(
            name="测试项目",
            group=ProjectGroup.ENTERPRISE,
            contest=contest,
            industry="人工智能",
            description="一个测试用的项目简介。",
        )
        s.add_all([contest, inst, user, project])
        s.flush()
        search = SavedSearch(
            user_id=user.id,
            name="前十",
            kind=SearchKind.INSTITUTION,
            institution_id=inst.id,
            filters={"industry": "人工智能"},
            rank_threshold=10,
            baseline=[project.id],
        )
        s.add(search)
        s.flush()

        def note() -> Notification:
            return Notification(
                user_id=user.id,
                search_id=search.id,
                search_name="前十",
                kind=search.kind,
                institution_id=inst.id,
                project_id=project.id,
                rank=1,
                rank_threshold=10,
                score=88.5,
                reasons=["行业相同：人工智能"],
                frequency=AlertFrequency.DAILY,
            )

        s.add(note())
        s.commit()
        s.add(note())
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        # Deleting the search keeps its notification for the funnel.
        s.delete(s.get(SavedSearch, search.id))
        s.commit()
        kept = s.scalar(select(Notification))
        assert kept is not None and kept.search_id is None and kept.reasons == ["行业相同：人工智能"]
    migrate(engine, url, "0008_event_group_rules", down=True)
    assert not TABLES & set(inspect(engine).get_table_names())
    migrate(engine, url, "head")
    assert set(inspect(engine).get_table_names()) >= TABLES
