"""The 0014_competitor_policy migration on SQLite and PostgreSQL: default avoid, round trip, downgrade."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from models import Institution, InstitutionKind


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("institution")}


def test_competitor_policy_defaults_to_avoid_and_downgrades(migrated_db, migrate) -> None:
    engine, url = migrated_db
    assert "competitor_policy" in _columns(engine)
    with Session(engine) as s:
        s.add(Institution(name="峻禾成长基金", kind=InstitutionKind.VC, description="专注物联网与智能家居"))
        s.commit()
        inst = s.scalar(select(Institution))
        assert inst is not None and inst.competitor_policy == "avoid"
        inst.competitor_policy = "welcome"
        s.commit()
        s.expire_all()
        assert s.scalar(select(Institution.competitor_policy)) == "welcome"
    with engine.begin() as conn:  # a row written without the column (an older writer) reads avoid
        cols = "name, kind, description, industries, stages, services, created_at, updated_at"
        conn.execute(text(f"INSERT INTO institution ({cols}) SELECT {cols} FROM institution"))
        assert conn.execute(text("SELECT min(competitor_policy) FROM institution")).scalar() == "avoid"
    migrate(engine, url, "0012_jobs", down=True)
    assert "competitor_policy" not in _columns(engine)
    migrate(engine, url, "head")
    assert "competitor_policy" in _columns(engine)
