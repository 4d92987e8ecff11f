"""Accounts over time: tokens shown once and revocable, sessions that end, organisers and their contests."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from models.accounts import ApiToken, User


def _new_token(client: Any, name: str = "脚本") -> str:
    html = client.post("/account/tokens", data={"token_name": name}).get_data(as_text=True)
    m = re.search(r'id="new-token">([^<]+)<', html)
    assert m, "the new token is shown once on the account page"
    return m.group(1)


def test_a_token_is_stored_hashed_works_once_issued_and_stops_when_revoked(
    app: Flask, client: Any, auth: Any
) -> None:
    auth.login("fund")
    token = _new_token(client)
    with app.app_context():
        row = db.session.scalar(select(ApiToken).where(ApiToken.name == "脚本"))
        assert row is not None and token not in (row.token_hash, row.hint) and row.hint == token[:10]
        token_id = row.id
    assert 'id="new-token"' not in client.get("/account").get_data(as_text=True)  # never shown again
    bare = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert bare.get("/api/needs", headers=headers).status_code == 200
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 302
    r = bare.get("/api/needs", headers=headers)
    assert r.status_code == 401 and "吊销" in r.get_json()["error"]["message"]
    assert bare.get("/api/needs", headers={"Authorization": "Bearer cm_guessed"}).status_code == 401
    # a bad token never falls back to the session cookie
    assert client.get("/api/needs", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_changing_the_password_ends_other_sessions(app: Flask, client: Any, auth: Any) -> None:
    other = app.test_client()
    assert other.post("/login", data={"username": "fund", "password": "demo-fund-2026"}).status_code == 302
    auth.login("fund")
    r = client.post(
        "/account/password",
        data={
            "old_password": "demo-fund-2026",
            "password": "a-new-pass-2026",
            "password2": "a-new-pass-2026",
        },
    )
    assert r.status_code == 302
    assert client.get("/account").status_code == 200  # this session goes on
    assert other.get("/account").status_code == 302  # the other one is logged out
    assert auth.login("fund", "demo-fund-2026").status_code == 401


def test_a_disabled_account_loses_its_sessions_and_tokens(app: Flask, client: Any, auth: Any) -> None:
    fund = app.test_client()
    fund.post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    token = _new_token(fund)
    auth.login("admin")
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == "fund"))
    assert client.post(f"/admin/users/{uid}/status", data={"status": "已停用"}).status_code == 302
    assert fund.get("/account").status_code == 302
    assert (
        app.test_client().get("/api/needs", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    r = app.test_client().post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    assert r.status_code == 401 and "已停用" in r.get_data(as_text=True)


def test_the_secretariat_creates_an_organiser_bound_to_contests(app: Flask, client: Any, auth: Any) -> None:
    auth.login("admin")
    r = client.post(
        "/admin/users/new",
        data={
            "username": "org2",
            "password": "orchid-pass-2026",
            "password2": "orchid-pass-2026",
            "display_name": "二号组织方",
            "role": "赛事组织方",
        },
    )
    assert r.status_code == 422 and "至少负责一个赛事" in r.get_data(as_text=True)
    r = client.post(
        "/admin/users/new",
        data={
            "username": "org2",
            "password": "orchid-pass-2026",
            "password2": "orchid-pass-2026",
            "display_name": "二号组织方",
            "role": "赛事组织方",
            "contest_ids": ["2", "3"],
        },
    )
    assert r.status_code == 302
    org = app.test_client()
    assert org.post("/login", data={"username": "org2", "password": "orchid-pass-2026"}).status_code == 302
    html = org.get("/projects/new").get_data(as_text=True)
    with app.app_context():
        from models import Contest

        names = {c.id: c.name for c in db.session.scalars(select(Contest))}
    options = re.findall(r'<option value="(\d+)"', html.split('name="contest_id"')[1].split("</select>")[0])
    assert sorted(int(o) for o in options) == [2, 3], names  # only its own contests to choose from


def test_login_only_redirects_within_the_site(client: Any) -> None:
    for target, expected in (
        ("/projects/2", "/projects/2"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
    ):
        r = client.post("/login", data={"username": "base", "password": "demo-base-2026", "next": target})
        assert r.status_code == 302 and r.headers["Location"] == expected, target
        client.post("/logout")


def test_pages_that_need_a_login_send_you_there_and_back(client: Any, auth: Any) -> None:
    r = client.get("/needs/?page=2")
    location = urlsplit(r.headers["Location"])
    assert r.status_code == 302 and location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/needs/?page=2"]
    r = client.post(
        "/login", data={"username": "base", "password": "demo-base-2026", "next": "/needs/?page=2"}
    )
    assert r.headers["Location"] == "/needs/?page=2"
