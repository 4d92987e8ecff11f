"""Web safety: CSRF, cookie flags, security headers, rate limits, escaping, error pages, upload checks."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import FileStorage

from app.access import public
from app.schemas import InputError
from app.uploads import check_upload

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"


def _csrf(client: Any, url: str = "/login") -> str:
    html = client.get(url).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, f"no CSRF token on {url}"
    return m.group(1)


def _login(client: Any, username: str, password: str) -> Any:
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": _csrf(client)}
    )


# --- CSRF --------------------------------------------------------------------------------------------


def test_forms_refuse_a_post_without_the_csrf_token(make_app: Any) -> None:
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    r = client.post("/login", data={"username": "admin", "password": "demo-admin-2026"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert _login(client, "admin", "demo-admin-2026").status_code == 302
    r = client.post("/projects/new", data={"name": "跨站提交的项目"})
    assert r.status_code == 400
    assert client.post("/logout").status_code == 400  # even logging out needs the token


def test_cookie_api_writes_need_the_csrf_header_token_writes_do_not(make_app: Any) -> None:
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    assert _login(client, "admin", "demo-admin-2026").status_code == 302
    r = client.patch("/api/projects/1", json={"amount_wan": 1})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "csrf_failed"
    token = _csrf(client, "/account")
    r = client.patch("/api/projects/1", json={"amount_wan": 1}, headers={"X-CSRFToken": token})
    assert r.status_code == 200
    assert client.get("/api/projects/1").status_code == 200  # reads need no token
    api_token = _api_token(client)
    bare = app.test_client()  # no cookie at all: the bearer token is the credential
    r = bare.patch(
        "/api/projects/1", json={"amount_wan": 2}, headers={"Authorization": f"Bearer {api_token}"}
    )
    assert r.status_code == 200


def _api_token(client: Any) -> str:
    html = client.post(
        "/account/tokens", data={"token_name": "测试", "csrf_token": _csrf(client, "/account")}
    )
    m = re.search(r'id="new-token">([^<]+)<', html.get_data(as_text=True))
    assert m
    return m.group(1)


# --- cookies and headers -------------------------------------------------------------------------------


def test_session_cookie_is_httponly_samesite_and_secure_outside_debug(make_app: Any) -> None:
    client = make_app(TESTING=False).test_client()
    r = client.post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_security_headers_on_every_kind_of_response(client: Any) -> None:
    for url in ("/", "/projects/1", "/api/projects", "/api/needs", "/no-such-page", "/static/style.css"):
        r = client.get(url)
        r.close()  # the static file's handle
        csp = r.headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]+)", csp)
        assert script_src and "unsafe-inline" not in script_src.group(1), url
        assert "frame-ancestors 'none'" in csp
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_templates_hold_no_inline_script_or_event_handler() -> None:
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"inline <script> in {path.name}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {path.name}"
        assert "javascript:" not in text, path.name


def test_pages_of_a_logged_in_account_are_not_cached(client: Any, auth: Any) -> None:
    auth.login("fund")
    assert "no-store" in client.get("/projects/1").headers["Cache-Control"]


# --- rate limits ---------------------------------------------------------------------------------------


def test_failed_logins_are_limited_per_user_and_address(make_app: Any) -> None:
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert client.post("/login", data={"username": "fund", "password": "wrong"}).status_code == 401
    r = client.post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    assert r.status_code == 429 and "请求过于频繁" in r.get_data(as_text=True)
    # another account from the same address, and the same account from another address, still get in
    assert client.post("/login", data={"username": "base", "password": "demo-base-2026"}).status_code == 302
    other = app.test_client()
    r = other.post(
        "/login",
        data={"username": "fund", "password": "demo-fund-2026"},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert r.status_code == 302


def test_successful_logins_do_not_use_up_the_limit(make_app: Any) -> None:
    client = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="2 per minute").test_client()
    for _ in range(4):
        assert (
            client.post("/login", data={"username": "fund", "password": "demo-fund-2026"}).status_code == 302
        )


def test_api_calls_are_limited_per_token_and_address(make_app: Any) -> None:
    app = make_app(RATELIMIT_ENABLED=True, API_RATE_LIMIT="4 per minute")
    tokens = {}
    with app.app_context():
        from app.auth import accounts
        from app.extensions import db

        for name in ("admin", "fund"):
            user = accounts.find_user(db.session, name)
            tokens[name] = accounts.issue_token(db.session, user, "限流测试")[1]  # type: ignore[arg-type]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['admin']}"}
    assert all(client.get("/api/contests", headers=headers).status_code == 200 for _ in range(4))
    r = client.get("/api/contests", headers=headers)
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "rate_limited"
    assert (
        client.get("/api/contests", headers={"Authorization": f"Bearer {tokens['fund']}"}).status_code == 200
    )


# --- escaping --------------------------------------------------------------------------------------------


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_user_text_is_escaped_everywhere_it_shows(client: Any, auth: Any) -> None:
    auth.login("admin")
    project = client.get("/api/projects/1").get_json()
    body = {k: project[k] for k in ("group", "contest_id", "award", "industry", "province")}
    r = client.post(
        "/api/projects", json={**body, "name": f"项目{XSS}", "description": f"简介里有脚本：{XSS}"}
    )
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["id"]
    for url in (f"/projects/{pid}", "/projects/?q=简介里有脚本", f"/projects/{pid}/edit", "/admin/audit"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x onerror" not in html, url
    assert "&lt;script&gt;alert(" in client.get(f"/projects/{pid}").get_data(as_text=True)


# --- error pages --------------------------------------------------------------------------------------------


def test_error_pages_are_generic_and_chinese(make_app: Any) -> None:
    app = make_app(TESTING=False)

    @public
    def boom() -> Any:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_url_rule("/boom", view_func=boom)
    client = app.test_client()
    r = client.get("/boom")
    text = r.get_data(as_text=True)
    assert (
        r.status_code == 500
        and "服务器内部错误" in text
        and "Traceback" not in text
        and "hunter2" not in text
    )
    assert client.get("/api/needs").get_json()["error"]["status"] == 401
    client.post("/login", data={"username": "fund", "password": "demo-fund-2026"})
    r = client.get("/admin/users")
    assert r.status_code == 403 and "没有权限" in r.get_data(as_text=True)
    r = client.get("/projects/999999")
    assert r.status_code == 404 and "不存在" in r.get_data(as_text=True)


# --- uploads -----------------------------------------------------------------------------------------------


def _file(name: str, data: bytes) -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=name)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("projects.exe", b"MZ\x90\x00", "只接受"),
        ("projects.xlsx", "名称,行业\n".encode(), "不符"),  # a CSV renamed to .xlsx
        ("projects.csv", b"a,b\x00c\n", "不是文本"),
        ("projects.csv", b"", "空"),
        ("projects.csv", b"x" * 2048, "过大"),
        ("", b"a,b\n", "请选择"),
    ],
)
def test_uploads_are_checked_by_type_content_and_size(name: str, data: bytes, message: str) -> None:
    with pytest.raises(InputError) as err:
        check_upload(_file(name, data), ("csv", "xlsx"), 1024)
    assert message in next(iter(err.value.fields.values()))


def test_good_uploads_pass_and_gbk_csv_is_text() -> None:
    assert check_upload(_file("a.csv", "名称,行业\n".encode("gbk")), ("csv",), 1024).startswith(b"\xc3")
    assert check_upload(_file("a.xlsx", b"PK\x03\x04rest"), ("xlsx",), 1024)


def test_the_import_page_refuses_a_disguised_file(client: Any, auth: Any) -> None:
    auth.login("organiser")
    r = client.post(
        "/imports/",
        data={"kind": "projects", "file": (io.BytesIO(b"MZ\x90\x00"), "projects.exe")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 422 and "只接受" in r.get_data(as_text=True)
