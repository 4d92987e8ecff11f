"""A new user opens the demo site, follows a project to its ranked funds and reads the reasons."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_project_to_ranked_funds_with_reasons(live_server, page):
    page.goto(live_server + "/")
    assert "创客中国" in page.title()
    page.get_by_role("link", name="项目展示").first.click()
    page.wait_for_url("**/projects/**")
    page.select_option("select[name=award]", "500强")
    page.get_by_role("button", name="筛选").click()
    first = page.locator("table.list tbody tr td a").first
    name = first.inner_text()
    first.click()
    page.wait_for_selector("#matches-fund")
    assert page.locator("h1").first.inner_text() == name
    funds = page.locator("#matches-fund li.match")
    assert funds.count() == 10
    reasons = funds.first.locator("ul.reasons li")
    assert reasons.count() >= 1
    assert any("\u4e00" <= ch <= "\u9fff" for ch in reasons.first.inner_text())
    # follow the top fund: its page ranks projects in turn
    funds.first.locator(".match-head a").first.click()
    page.wait_for_selector("#matches-projects")
    assert page.locator("#matches-projects li.match").count() > 0
