"""The 0015_impressions migration on SQLite and PostgreSQL: tables, bulk insert, link, downgrade."""

from __future__ import annotations

from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.feedback import ActionKind, FeedbackAction, Impression


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_feedback_tables_round_trip_and_downgrade(migrated_db, migrate) -> None:
    engine, url = migrated_db
    assert {"impression", "feedback_action"} <= _tables(engine)
    now = utcnow()
    rows = [
        {
            "list_id": "00ff00ff00ff00ff",
            "at": now,
            "viewer_user_id": 7,
            "query_kind": "institution",
            "query_id": 3,
            "side": None,
            "project_id": 10 + k,
            "institution_id": 3,
            "position": k,
            "rank": k,
            "score": 90.0 - k,
            "model": "HandWeightedRanker",
            "surface": "page",
            "demo": False,
        }
        for k in range(1, 21)
    ]
    with Session(engine) as s:
        ids = list(s.scalars(insert(Impression).returning(Impression.id, sort_by_parameter_order=True), rows))
        assert len(ids) == 20 and ids == sorted(ids)
        s.add(
            FeedbackAction(
                action=ActionKind.SIGNED,
                project_id=12,
                institution_id=3,
                impression_id=ids[1],
                list_id="00ff00ff00ff00ff",
                position=2,
            )
        )
        s.commit()
        s.expire_all()
        act = s.scalar(select(FeedbackAction))
        assert act is not None and act.action is ActionKind.SIGNED and act.action.grade == 5
        assert act.at.tzinfo is not None and act.demo is False
        shown = s.get(Impression, act.impression_id)
        assert shown is not None and (shown.project_id, shown.position) == (12, 2)
        # Deleting the shown rows keeps the action (its link is cleared).
        s.query(Impression).delete()
        s.commit()
        s.expire_all()
        assert s.scalar(select(FeedbackAction.impression_id)) is None
    migrate(engine, url, "0012_jobs", down=True)
    assert not {"impression", "feedback_action"} & _tables(engine)
    migrate(engine, url, "head")
    assert {"impression", "feedback_action"} <= _tables(engine)
