"""The accounts migration on SQLite and PostgreSQL: tables, the append-only audit trigger, downgrade."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.cli import alembic_config
from models.accounts import ApiToken, AuditLog, User
from models.enums import Role


@pytest.fixture()
def engine(migrated_db: tuple[Engine, str]) -> Engine:
    return migrated_db[0]


def test_accounts_tables_exist_and_the_audit_log_refuses_changes(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"user_account", "organiser_contest", "api_token", "registration", "audit_log"} <= tables
    with Session(engine) as s:
        user = User(username="pg-admin", display_name="管理员", password_hash="x", role=Role.ADMIN)
        token, plain = ApiToken.issue(user, "t")
        s.add_all([user, token, AuditLog(action="login", username="pg-admin", detail={"a": 1})])
        s.commit()
        assert plain.startswith("cm_") and token.token_hash != plain
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 1


def test_the_accounts_migration_downgrades_and_upgrades_again(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)

    def run(step: Any, target: str) -> None:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            step(cfg, target)

    run(command.downgrade, "0003")  # undo the merge: two heads again
    run(command.downgrade, "0002@-1")  # then the accounts branch alone; the pipeline stays
    tables = set(inspect(engine).get_table_names())
    assert not tables & {"user_account", "api_token", "audit_log", "registration", "organiser_contest"}
    assert {"project", "connection", "connection_event"} <= tables
    run(command.upgrade, "heads")
    assert "audit_log" in set(inspect(engine).get_table_names())
