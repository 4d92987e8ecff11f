"""Passwords: one rule for registration, 修改密码 and new accounts; the demo accounts still log in."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.auth import passwords
from app.auth.accounts import DEMO_ACCOUNTS
from app.extensions import db
from models.accounts import User

#: Passwords the review found accepted, and their neighbours; each with the words its message must hold.
WEAK = [
    ("12345678", "10 到 128"),
    ("aaaaaaaa", "10 到 128"),
    ("fundfund", "10 到 128"),
    ("1234567890", "常见密码"),
    ("qwertyuiop", "常见密码"),
    ("password123", "常见密码"),
    ("Password2026!", "常见密码"),  # a common word with digits and a symbol added
    ("woaini1314520", "常见密码"),
    ("sunshine!!2026", "常见密码"),
    ("demo-admin-2026", "常见密码"),  # the published demo passwords can never be chosen
    ("aaaaaaaaaaaa", "两类"),
    ("8264917305", "两类"),
    ("zqxvkwmbnyhl", "两类"),
    ("aaaaaaaaa1", "不同字符"),
    ("abababab12", "不同字符"),
    ("x" * 129 + "1", "10 到 128"),
]


@pytest.mark.parametrize(("password", "words"), WEAK)
def test_weak_passwords_are_refused_naming_the_rule(password: str, words: str) -> None:
    message = passwords.problem(password, "someone")
    assert message is not None and words in message and message.startswith("密码：")


def test_a_password_may_not_contain_the_user_name() -> None:
    assert "用户名" in (passwords.problem("zhangsan", "zhangsan", min_length=8) or "")
    assert "用户名" in (passwords.problem("Zhangsan-Harbour-7", "zhangsan") or "")
    assert passwords.problem("Lantern-harbour-77", "zhangsan") is None


def test_good_passwords_pass() -> None:
    for good in ("Lantern-harbour-77", "青山绿水2026年春天", "correct horse battery", "tq8-mv3-kz9-wp"):
        assert passwords.problem(good, "fund") is None, good


def test_the_list_is_shipped_and_compact() -> None:
    common = passwords.common_passwords()
    assert 3000 < len(common) < 20000
    assert {"123456", "password", "qwertyuiop", "woaini1314"} <= common


def test_registration_refuses_a_weak_password_with_a_chinese_message(client: Any) -> None:
    form = {
        "username": "newfund",
        "display_name": "张三",
        "email": "",
        "name": "测试机构",
        "kind": "创业投资机构",
    }
    for bad, words in (("12345678", "10 到 128"), ("newfund2026", "用户名"), ("1234567890", "常见密码")):
        r = client.post("/register/institution", data={**form, "password": bad, "password2": bad})
        html = r.get_data(as_text=True)
        assert r.status_code == 422 and words in html, bad
    assert "至少 10 个字符" in client.get("/register/institution").get_data(
        as_text=True
    )  # the rule is on the form


def test_changing_to_a_weak_password_is_refused(app: Flask, client: Any, auth: Any) -> None:
    auth.login("fund")
    assert "须包含字母、数字、符号中的至少两类" in client.get("/account").get_data(as_text=True)
    for bad, words in (
        ("12345678", "10 到 128"),
        ("aaaaaaaaaa", "常见密码"),
        ("my-fund-account", "用户名"),
        ("demo-fund-2026", "常见密码"),
    ):
        r = client.post(
            "/account/password", data={"old_password": "demo-fund-2026", "password": bad, "password2": bad}
        )
        assert r.status_code == 422 and words in r.get_data(as_text=True), bad
    assert auth.login("fund", "demo-fund-2026").status_code == 302  # nothing changed


def test_the_secretariat_cannot_create_an_account_with_a_weak_password(
    app: Flask, client: Any, auth: Any
) -> None:
    auth.login("admin")
    for bad in ("12345678", "aaaaaaaaaa", "orgthree-2026"):
        r = client.post(
            "/admin/users/new",
            data={
                "username": "orgthree",
                "password": bad,
                "password2": bad,
                "display_name": "三号组织方",
                "role": "赛事组织方",
                "contest_ids": ["2"],
            },
        )
        assert r.status_code == 422 and "密码：" in r.get_data(as_text=True), bad
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "orgthree")) is None


def test_demo_accounts_keep_their_documented_passwords(app: Flask) -> None:
    # seeding bypasses the rule on purpose: the README documents these passwords for the demo
    for username, password, _role, _what in DEMO_ACCOUNTS:
        r = app.test_client().post("/login", data={"username": username, "password": password})
        assert r.status_code == 302, username
