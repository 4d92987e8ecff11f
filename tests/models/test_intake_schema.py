"""The 0010_intake migration on SQLite and PostgreSQL: new project columns and tables, and back down."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import DuplicateKind, DuplicatePair, Project


def test_intake_columns_and_tables_upgrade_and_downgrade(migrated_db, migrate) -> None:
    engine, url = migrated_db
    migrate(engine, url, "0008_event_group_rules", down=True)
    names = inspect(engine).get_table_names()
    assert "duplicate_pair" not in names and "contest_filing" not in names
    assert "credit_code" not in {c["name"] for c in inspect(engine).get_columns("project")}
    with engine.begin() as con:
        con.execute(
            text("INSERT INTO contest (code, edition, kind, name) VALUES ('7-R25', 7, 'REGIONAL', '西藏')")
        )
        con.execute(
            text(
                'INSERT INTO project (name, "group", contest_id, award, industry, description, needs,'
                " created_at,"
                " updated_at) VALUES ('旧项目', 'ENTERPRISE', "
                "1, 'NONE', '现代农业', '已有的项目简介文字', '[]',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    migrate(engine, url, "head")
    inspector = inspect(engine)
    assert {"ref", "credit_code", "team_lead", "assets_wan", "sme_industry"} <= {
        c["name"] for c in inspector.get_columns("project")
    }
    with Session(engine) as s:
        old = s.scalar(select(Project).where(Project.name == "旧项目"))
        assert old is not None and old.credit_code is None
        s.add(DuplicatePair(project_a_id=old.id, project_b_id=old.id + 1, score=0.9, kind=DuplicateKind.SAME))
        with pytest.raises(IntegrityError):  # no such project b, or a >= b: refused by the database
            s.commit()
        s.rollback()
    migrate(engine, url, "0008_event_group_rules", down=True)
    assert "duplicate_pair" not in inspect(engine).get_table_names()
    assert "ref" not in {c["name"] for c in inspect(engine).get_columns("project")}
