"""The audit log: logins, refusals, exports and record changes are written; nothing can rewrite them."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, select, update

from app.extensions import db
from models.accounts import AppendOnlyError, AuditLog


def _rows(app: Flask, **where: Any) -> list[AuditLog]:
    with app.app_context():
        stmt = select(AuditLog).order_by(AuditLog.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(AuditLog, key) == value)
        return list(db.session.scalars(stmt))


def test_logins_and_failed_logins_are_written(app: Flask, client: Any, auth: Any) -> None:
    assert auth.login("fund", "not-the-password").status_code == 401
    assert auth.login("nobody-such", "whatever1").status_code == 401
    assert auth.login("fund").status_code == 302
    failed = _rows(app, action="login_failed")
    assert [r.username for r in failed] == ["fund", "nobody-such"]
    assert failed[0].detail["reason"] == "bad_credentials" and failed[0].ip == "127.0.0.1"
    ok = _rows(app, action="login")
    assert len(ok) == 1 and ok[0].username == "fund" and ok[0].obj_kind == "user"


def test_refusals_are_written_with_who_and_where(app: Flask, client: Any, auth: Any) -> None:
    auth.login("fund")
    assert client.get("/admin/audit").status_code == 403
    assert client.patch("/api/projects/1", json={"amount_wan": 1}).status_code == 403
    denied = _rows(app, action="denied")
    assert [(r.username, r.detail["path"]) for r in denied] == [
        ("fund", "/admin/audit"),
        ("fund", "/api/projects/1"),
    ]


def test_record_changes_name_the_fields_not_the_values(app: Flask, client: Any, auth: Any) -> None:
    auth.login("admin")
    assert (
        client.patch("/api/projects/2", json={"contact_phone": "13800000000", "amount_wan": 77}).status_code
        == 200
    )
    assert client.delete("/api/needs/1").status_code == 204
    (change,) = _rows(app, action="project.update")
    assert change.obj_id == 2 and set(change.detail["fields"]) == {"contact_phone", "amount_wan"}
    assert "13800000000" not in str(change.detail)  # contacts never copied into the log
    assert _rows(app, action="need.delete")[0].obj_id == 1


def test_the_secretariat_filters_the_log(app: Flask, client: Any, auth: Any) -> None:
    auth.login("fund", "wrong-password")
    auth.login("admin")
    body = client.get("/admin/audit?action=login_failed").get_data(as_text=True).split("<tbody>")[1]
    assert "login_failed" in body and "<td>login</td>" not in body
    body = client.get("/admin/audit?action=login").get_data(as_text=True).split("<tbody>")[1]
    assert "<td>login</td>" in body and "login_failed" not in body
    html = client.get("/admin/audit?username=admin").get_data(as_text=True)
    assert "login_failed" not in html.split("<tbody>")[1]
    assert client.get("/admin/audit?from=2020-13-01").status_code == 200  # a bad date is named, not a 500


def test_the_log_is_append_only_in_the_orm_and_in_the_database(app: Flask, client: Any, auth: Any) -> None:
    auth.login("admin")
    with app.app_context():
        s = db.session
        row = s.scalars(select(AuditLog)).first()
        assert row is not None
        row.action = "rewritten"
        with pytest.raises(AppendOnlyError):
            s.flush()
        s.rollback()
        with pytest.raises(AppendOnlyError):
            s.execute(update(AuditLog).values(action="rewritten"))
        with pytest.raises(AppendOnlyError):
            s.execute(delete(AuditLog))
        s.delete(s.scalars(select(AuditLog)).first())
        with pytest.raises(AppendOnlyError):
            s.flush()
        s.rollback()
    path = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    try:
        for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                con.execute(sql)
    finally:
        con.close()
    assert _rows(app, action="login")  # still there


def test_tokens_and_registrations_are_written(app: Flask, client: Any, auth: Any) -> None:
    r = client.post(
        "/register/institution",
        data={
            "username": "newfund",
            "password": "new-fund-pass",
            "password2": "new-fund-pass",
            "display_name": "张三",
            "name": "审计测试创投",
            "kind": "创业投资机构",
            "description": "专注早期硬科技项目的创业投资机构。",
        },
    )
    assert r.status_code == 200 and "申请已提交" in r.get_data(as_text=True)
    auth.login("admin")
    client.post("/account/tokens", data={"token_name": "脚本"})
    actions = [r.action for r in _rows(app)]
    assert "registration.create" in actions and "token.create" in actions
