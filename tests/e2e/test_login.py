"""In a real browser: a fund logs in and sees what is its own; the secretariat logs in and runs the site."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form.form button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def test_fund_logs_in_and_contacts_stay_closed_until_accepted(page: Any, live_server: str) -> None:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server}/projects/1")
    assert page.locator("#contacts-locked").is_visible()  # anonymous: showcase only
    _login(page, live_server, "fund", "demo-fund-2026")
    assert page.locator(".account").inner_text().count("退出") == 1
    page.goto(f"{live_server}/account")
    page.fill("input[name=token_name]", "浏览器测试")
    page.click("#tokens button[type=submit]")
    token = page.locator("#new-token").inner_text()
    assert token.startswith("cm_")
    page.goto(f"{live_server}/admin/users")
    assert "没有权限" in page.content()  # a fund is not the secretariat
    page.goto(f"{live_server}/account")
    page.click(".account button[type=submit]")  # 退出
    page.wait_for_load_state("domcontentloaded")
    assert page.locator(".account a", has_text="登录").is_visible()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_secretariat_logs_in_and_reads_the_audit_log(page: Any, live_server: str) -> None:
    _login(page, live_server, "admin", "wrong-password")
    assert "用户名或密码不正确" in page.content()
    _login(page, live_server, "admin", "demo-admin-2026")
    page.click("text=秘书处管理")
    page.get_by_text("报名与注册审核").first.wait_for()  # the click navigates: wait for the new page
    assert "报名与注册审核" in page.content()
    page.click("text=审计日志")
    page.select_option("select[name=action]", "login_failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    rows = page.locator("table.audit tbody tr")
    assert rows.count() >= 1 and "login_failed" in rows.first.inner_text()
    page.goto(f"{live_server}/projects/1")
    assert page.locator("#project-contacts").is_visible()  # the secretariat sees every project's contacts
