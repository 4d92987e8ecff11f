"""Sessions end on the server: a session cookie copied before logout or a password change stops working."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from models.accounts import LoginSession, User
from models.base import utcnow


def _cookie(client: Any) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "logged-in clients carry a session cookie"
    return str(cookie.value)


def _replay(app: Flask, cookie: str) -> Any:
    """Return a fresh client that carries only a copy of the given session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def _logged_in(client: Any) -> bool:
    r = client.get("/account")
    return r.status_code == 200 and "我的账户" in r.get_data(as_text=True)


def _sessions(app: Flask, username: str) -> list[LoginSession]:
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == username))
        rows = db.session.scalars(select(LoginSession).where(LoginSession.user_id == uid)).all()
        db.session.expunge_all()
        return list(rows)


def test_a_cookie_copied_before_logout_no_longer_works(app: Flask, client: Any, auth: Any) -> None:
    assert auth.login("fund").status_code == 302
    copied = _cookie(client)
    assert _logged_in(_replay(app, copied))  # the copy works while the login lasts
    assert auth.logout().status_code == 302
    assert not _logged_in(client)
    thief = _replay(app, copied)
    r = thief.get("/account")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert thief.get("/api/needs").status_code == 401  # the API's cookie path is closed as well
    (row,) = _sessions(app, "fund")
    assert row.revoked_at is not None


def test_a_cookie_copied_before_a_password_change_no_longer_works(app: Flask, client: Any, auth: Any) -> None:
    auth.login("fund")
    copied = _cookie(client)
    other = app.test_client()
    other.post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    r = client.post(
        "/account/password",
        data={
            "old_password": "demo-fund-2026",
            "password": "Lantern-harbour-77",
            "password2": "Lantern-harbour-77",
        },
    )
    assert r.status_code == 302
    assert _logged_in(client)  # the browser that changed it goes on, with a fresh session
    assert _cookie(client) != copied
    assert not _logged_in(_replay(app, copied))
    assert not _logged_in(other)
    rows = _sessions(app, "fund")
    assert len(rows) == 3 and sum(r.revoked_at is None for r in rows) == 1


def test_disabling_an_account_revokes_its_sessions(app: Flask, client: Any, auth: Any) -> None:
    fund = app.test_client()
    fund.post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    auth.login("admin")
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == "fund"))
    client.post(f"/admin/users/{uid}/status", data={"status": "已停用"})
    assert not _logged_in(fund)
    assert all(r.revoked_at is not None for r in _sessions(app, "fund"))


def test_the_account_page_lists_sessions_and_ends_one(app: Flask, client: Any, auth: Any) -> None:
    laptop = app.test_client()
    laptop.post(
        "/login",
        data={"username": "fund", "password": "demo-fund-2026"},
        headers={"User-Agent": "LaptopBrowser/1.0"},
    )
    client.post(
        "/login",
        data={"username": "fund", "password": "demo-fund-2026"},
        headers={"User-Agent": "PhoneBrowser/2.0"},
    )
    html = client.get("/account", headers={"User-Agent": "PhoneBrowser/2.0"}).get_data(as_text=True)
    assert "登录设备" in html and "LaptopBrowser/1.0" in html and "PhoneBrowser/2.0" in html
    assert "本设备" in html and "127.0.0.1" in html
    laptop_row = next(r for r in _sessions(app, "fund") if r.user_agent == "LaptopBrowser/1.0")
    r = client.post(f"/account/sessions/{laptop_row.id}/revoke")
    assert r.status_code == 302
    assert not _logged_in(laptop) and _logged_in(client)
    # somebody else's session id: as if it did not exist, and it stays live
    admin = app.test_client()
    admin.post("/login", data={"username": "admin", "password": "demo-admin-2026"})
    mine = next(r for r in _sessions(app, "fund") if r.revoked_at is None)
    assert admin.post(f"/account/sessions/{mine.id}/revoke").status_code == 404
    assert _logged_in(client)
    # ending this browser's own session logs it out
    assert client.post(f"/account/sessions/{mine.id}/revoke").status_code == 302
    assert not _logged_in(client)


def test_ending_the_other_sessions_keeps_this_one(app: Flask, client: Any, auth: Any) -> None:
    others = [app.test_client() for _ in range(2)]
    for c in others:
        c.post("/login", data={"username": "base", "password": "demo-base-2026"})
    auth.login("base")
    html = client.get("/account").get_data(as_text=True)
    assert len(re.findall(r"/account/sessions/\d+/revoke", html)) == 3
    assert client.post("/account/sessions/revoke-others").status_code == 302
    assert _logged_in(client) and not any(_logged_in(c) for c in others)


def test_an_idle_session_expires_on_the_server(app: Flask, client: Any, auth: Any) -> None:
    auth.login("fund")
    copied = _cookie(client)
    with app.app_context():
        row = db.session.scalar(select(LoginSession))
        assert row is not None
        row.last_seen_at = utcnow() - timedelta(seconds=app.config["LOGIN_SESSION_IDLE_SECONDS"] + 60)
        db.session.commit()
    assert not _logged_in(_replay(app, copied))


def test_the_last_seen_time_is_kept_without_a_write_per_request(app: Flask, client: Any, auth: Any) -> None:
    auth.login("fund")
    (before,) = _sessions(app, "fund")
    for _ in range(3):
        assert _logged_in(client)
    (after,) = _sessions(app, "fund")
    assert after.last_seen_at == before.last_seen_at  # within the minute: no write
    with app.app_context():
        row = db.session.get(LoginSession, before.id)
        row.last_seen_at = utcnow() - timedelta(minutes=5)  # type: ignore[union-attr]
        db.session.commit()
    assert _logged_in(client)
    (touched,) = _sessions(app, "fund")
    assert utcnow() - touched.last_seen_at < timedelta(minutes=1)
