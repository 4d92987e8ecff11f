"""The 0012_jobs migration on SQLite and PostgreSQL: the job table, its round trip, downgrade and upgrade."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from models import Job, JobKind, JobStatus
from models.base import utcnow


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_the_job_table_round_trips_and_downgrades(migrated_db, migrate) -> None:
    engine, url = migrated_db
    assert "background_job" in _tables(engine)
    with Session(engine) as s:
        job = Job(kind=JobKind.REPORT, params={"period": {"quarter": "2026Q3"}, "scope": [1, 2]})
        s.add(job)
        s.commit()
        job.status, job.done, job.total, job.heartbeat_at = JobStatus.RUNNING, 3, 7, utcnow()
        job.result_name, job.result = "赛事专报-2026Q3.xlsx", b"PK\x03\x04"
        s.commit()
        s.expire_all()
        back = s.scalar(select(Job))
        assert back is not None
        assert (back.kind, back.status, back.done, back.total, back.attempt) == (
            JobKind.REPORT,
            JobStatus.RUNNING,
            3,
            7,
            0,
        )
        assert back.params == {"period": {"quarter": "2026Q3"}, "scope": [1, 2]}
        assert back.heartbeat_at is not None and back.heartbeat_at.tzinfo is not None
        assert back.result == b"PK\x03\x04" and back.percent == 42
    migrate(engine, url, "0008_event_group_rules", down=True)
    assert "background_job" not in _tables(engine)
    migrate(engine, url, "head")
    assert "background_job" in _tables(engine)
