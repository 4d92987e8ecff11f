"""In a real browser: a fund saves a filtered ranked list, a project arrives, the top bar counts it, the
notification centre shows it with its reasons and opens the project; the pages fit a 390 px phone."""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import services
from app.alerts import run_and_mail
from app.extensions import db
from models import Project
from models.accounts import User

pytestmark = pytest.mark.e2e

SHOTS = os.environ.get("MATCH_TEST_SCREENSHOTS")  # a folder to keep screenshots in, when set


def _overflow(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def test_fund_saves_a_search_and_reads_the_alert(page: Any, live_server: str, app: Flask) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", "fund")
    page.fill("input[name=password]", "demo-fund-2026")
    page.click("form.form button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    with app.app_context():
        fund = db.session.scalar(select(User).where(User.username == "fund"))
        assert fund is not None
        inst_id = fund.institution_id
        top = services.matches_for_institution(db.session, inst_id, 5, private=True)[0].row
        industry = top.industry

    page.goto(f"{live_server}/institutions/{inst_id}?industry={industry}")
    page.click("#save-search summary")
    page.fill("#save-search input[name=rank_threshold]", "5")
    page.click("#save-search button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    assert "已保存搜索" in page.locator(".flash").inner_text()
    assert page.locator("#alerts-link .badge").count() == 0

    with app.test_request_context():
        p = db.session.get(Project, top.id)
        assert p is not None
        values = {k: getattr(p, k) for k in ("contest_id", "industry", "province", "city", "description")}
        values.update(
            name="浏览器里的新项目",
            group=p.group.value,
            award=p.award.value,
            stage=p.stage.value if p.stage else None,
            amount_wan=p.amount_wan,
            funding_round=p.funding_round.value if p.funding_round else None,
            needs=list(p.needs or ()),
        )
        new_id = services.save_project(db.session, values).id
    ran, _ = run_and_mail(app)
    assert ran.notified == 1

    page.goto(f"{live_server}/needs/")
    assert page.locator("#alerts-link .badge").inner_text() == "1"
    page.click("#alerts-link")
    page.wait_for_load_state("domcontentloaded")
    item = page.locator(".notification.unread")
    assert item.count() == 1 and "浏览器里的新项目" in item.inner_text() and "匹配理由：" in item.inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/alerts/", "/alerts/searches", f"/institutions/{inst_id}"):
        page.goto(f"{live_server}{path}")
        if SHOTS:
            name = path.strip("/").replace("/", "_") + ".png"
            page.screenshot(path=os.path.join(SHOTS, name), full_page=True)
        assert _overflow(page) <= 0, path
    page.goto(f"{live_server}/alerts/")
    page.click(".notification a")
    page.wait_for_load_state("domcontentloaded")
    assert page.url.endswith(f"/projects/{new_id}")
    assert page.locator("#alerts-link .badge").count() == 0  # read
