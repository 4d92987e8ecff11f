"""A fund requests an introduction from its ranked list; the secretariat takes it to signing, sees it on the
dashboard (charts drawn, no CSP errors) and downloads the quarter's report holding the new success case."""

from __future__ import annotations

from typing import Any

import pytest
from openpyxl import load_workbook

pytestmark = pytest.mark.e2e


def _login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form.form button[type=submit]")
    page.wait_for_load_state()


def _logout(page: Any) -> None:
    page.click(".account form button[type=submit]")
    page.wait_for_load_state()


def _move(page: Any, stage: str, **fields: str) -> None:
    for name, value in fields.items():
        selector = f"#move-form [name={name}]"
        if page.locator(selector).evaluate("el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click(f"#move-form button[name=to_stage][value='{stage}']")
    page.wait_for_load_state()
    assert stage in page.inner_text("#current-stage"), page.inner_text("main")[:500]


def test_connection_from_request_to_signing_and_the_report(
    app: Any, live_server: str, page: Any, tmp_path: Any
) -> None:
    from sqlalchemy import select

    from app.extensions import db
    from models import Project
    from models.accounts import User

    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    with app.app_context():
        fund_inst = db.session.scalar(select(User.institution_id).where(User.username == "fund"))

    # the fund asks for an introduction to a ranked project it has no connection with yet
    _login(page, live_server, "fund", "demo-fund-2026")
    page.goto(f"{live_server}/institutions/{fund_inst}")
    button = page.locator("#matches-projects li.match a[data-action=request]").first
    item = page.locator("#matches-projects li.match", has=page.locator("a[data-action=request]")).first
    project_name = item.locator(".match-head > a").first.inner_text().strip()
    button.click()
    page.wait_for_load_state()
    # a confirmation step with a message to the project; nothing is sent before it
    assert project_name in page.inner_text("#confirm-connect")
    page.fill("#confirm-connect textarea[name=note]", "希望了解贵方的订单与融资安排")
    page.click("#confirm-submit")
    page.wait_for_load_state()
    assert "已发出对接申请" in page.inner_text("main")
    page.goto(f"{live_server}/connections/institution/{fund_inst}?view=list")
    page.click(f"#pipeline-list a:has-text('{project_name}')")
    page.wait_for_load_state()
    url = page.url
    assert "已申请对接" in page.inner_text("#current-stage")
    # the fund cannot accept its own request: it is offered no such button and waits for the project
    assert page.locator("#move-form button[name=to_stage][value='已接受']").count() == 0
    assert "须由项目方接受或拒绝" in page.inner_text("#waiting")
    assert "希望了解贵方的订单与融资安排" in page.inner_text("#history")
    _logout(page)

    # the secretariat moves it through every stage of a fund's path
    _login(page, live_server, "admin", "demo-admin-2026")
    page.goto(url)
    _move(page, "已接受")
    _move(page, "已会谈", note="线上会谈，项目方介绍了订单情况")
    _move(page, "尽职调查")
    page.click("#move-form button[name=to_stage][value='已签约']")
    page.wait_for_load_state()
    assert "融资金额（万元）" in page.inner_text(".error-summary")
    _move(page, "已签约", amount_wan="600", round="A轮", date="2026-11-20")
    history = page.inner_text("#history")
    for stage in ("已申请对接", "已接受", "已会谈", "尽职调查", "已签约"):
        assert stage in history

    # the dashboard of this quarter counts it; charts are drawn without a CSP error
    page.goto(f"{live_server}/dashboard")
    page.select_option("#period-form select[name=quarter]", "2026Q4")
    page.click("#period-form button[type=submit]")
    page.wait_for_load_state()
    assert "2026年第4季度" in page.inner_text("h1")
    assert page.evaluate(
        "() => ['chart-funnel', 'chart-regions', 'chart-months'].every(id => !!Chart.getChart(id))"
    )
    assert project_name in page.inner_text("#success-cases")
    signed = int(page.inner_text("[data-kpi='签约']").replace(",", ""))

    with page.expect_download() as info:
        page.click("#download-report")
    path = tmp_path / "report.xlsx"
    info.value.save_as(path)
    assert info.value.suggested_filename.endswith("2026Q4.xlsx")
    wb = load_workbook(path)
    summary = {r[0]: r[1] for r in wb["汇总"].iter_rows(values_only=True) if r and r[0]}
    assert summary["签约"] == signed
    cases = [r for r in wb["成功案例"].iter_rows(values_only=True)]
    ours = [r for r in cases if r[1] == project_name]
    assert ours and ours[0][cases[0].index("融资金额（万元）")] == 600
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    with app.app_context():
        assert db.session.scalar(select(Project.id).where(Project.name == project_name)) is not None
