"""Each role's day in chromium: at desktop size (the actions where they look, exports, the dashboard's
drill-down) and on a 390 × 844 phone (a collapsing top bar, nothing wider than the screen) over the main
pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

pytestmark = pytest.mark.e2e

PASSWORDS = {
    "admin": "demo-admin-2026",
    "organiser": "demo-organiser-2026",
    "fund": "demo-fund-2026",
    "base": "demo-base-2026",
    "project": "demo-project-2026",
}
PHONE = {"width": 390, "height": 844}
#: The tallest a collapsed top bar may be on a phone (one line with the brand and the menu button).
TOPBAR_MAX_PX = 90


def _login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("form.form button[type=submit]")
    page.wait_for_load_state()


def _ids(app: Any) -> dict[str, int]:
    from app.extensions import db
    from app.pipeline.states import OPEN_STAGES
    from models import Connection, ConnectionStage, Need
    from models.accounts import User

    with app.app_context():
        s = db.session
        users = {u.username: u for u in s.scalars(select(User))}
        fund, project = users["fund"].institution_id, users["project"].project_id
        return {
            "fund": fund,
            "base": users["base"].institution_id,
            "project": project,
            "need": s.scalar(select(Need.id).where(Need.archived_at.is_(None)).order_by(Need.id)),
            "fund_connection": s.scalar(
                select(Connection.id).where(Connection.institution_id == fund).order_by(Connection.id)
            ),
            # one the project can act on (an open stage past 推荐), a request to answer first
            "project_connection": s.scalar(
                select(Connection.id)
                .where(
                    Connection.project_id == project,
                    Connection.requested_at.is_not(None),
                    Connection.stage.in_(list(OPEN_STAGES - {ConnectionStage.RECOMMENDED})),
                )
                .order_by((Connection.stage == ConnectionStage.REQUESTED).desc(), Connection.id)
            ),
        }


def _pages(ids: dict[str, int]) -> dict[str | None, list[str]]:
    common = [
        "/",
        "/projects/",
        "/institutions/",
        f"/projects/{ids['project']}",
        f"/institutions/{ids['fund']}",
    ]
    return {
        None: [*common, "/login", "/register/institution"],
        "fund": [
            *common,
            f"/connections/institution/{ids['fund']}",
            f"/connections/institution/{ids['fund']}?view=list",
            f"/connections/{ids['fund_connection']}",
            "/needs/",
            f"/needs/{ids['need']}",
            "/account",
        ],
        "base": [
            f"/institutions/{ids['base']}",
            f"/connections/institution/{ids['base']}?view=list",
            "/needs/new",
        ],
        "project": [
            f"/projects/{ids['project']}",
            f"/connections/project/{ids['project']}",
            f"/connections/{ids['project_connection']}",
            f"/needs/{ids['need']}",
        ],
        "organiser": ["/dashboard", "/connections/", "/projects/"],
        "admin": [
            "/connections/",
            "/dashboard",
            "/reports/quarterly",
            "/admin/registrations",
            "/admin/users",
        ],
    }


def _fits(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => ({
            scroll: document.scrollingElement.scrollWidth,
            inner: window.innerWidth,
            topbar: document.querySelector('.topbar')?.getBoundingClientRect().height ?? 0,
            wide: [...document.querySelectorAll('body *')]
              .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1
                            && !el.closest('.table-scroll, table, .board, canvas'))
              .slice(0, 3)
              .map(el => el.tagName + '.' + el.className + ' ' + (el.textContent || '').slice(0, 30)),
        })"""
    )


def test_main_pages_fit_a_phone_for_every_role(app: Any, live_server: str, browser: Any) -> None:
    ids = _ids(app)
    problems: list[str] = []
    checked = 0
    for role, paths in _pages(ids).items():
        context = browser.new_context(locale="zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on(
            "console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None
        )
        try:
            if role:
                _login(page, live_server, role)
            for path in paths:
                response = page.goto(live_server + path)
                assert response is not None and response.status < 400, (
                    f"{role} {path}: {response and response.status}"
                )
                fit = _fits(page)
                checked += 1
                if fit["scroll"] > fit["inner"]:
                    problems.append(
                        f"{role} {path}: scrollWidth {fit['scroll']} > {fit['inner']} {fit['wide']}"
                    )
                if fit["topbar"] > TOPBAR_MAX_PX:
                    problems.append(f"{role} {path}: top bar {fit['topbar']:.0f}px tall")
            # the menu opens (no script: a checkbox and its label) and its links are reachable
            page.goto(live_server + "/")
            assert not page.locator(".topbar nav").is_visible()
            page.click(".nav-toggle-label")
            assert page.locator(".topbar nav a").first.is_visible()
            assert page.locator(".topbar nav").get_by_text("项目展示").is_visible()
            assert _fits(page)["scroll"] <= PHONE["width"]
            assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
        finally:
            context.close()
    assert checked >= 25
    assert not problems, "\n".join(problems)


def test_main_pages_fit_a_tablet(app: Any, live_server: str, browser: Any) -> None:
    ids = _ids(app)
    context = browser.new_context(locale="zh-CN", viewport={"width": 820, "height": 1180})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        _login(page, live_server, "admin")
        for path in ["/", "/projects/", f"/institutions/{ids['fund']}", "/connections/", "/dashboard"]:
            page.goto(live_server + path)
            fit = _fits(page)
            assert fit["scroll"] <= fit["inner"], (path, fit)
            assert fit["topbar"] <= TOPBAR_MAX_PX, (path, fit)
    finally:
        context.close()


def test_favicon_is_served(live_server: str, page: Any) -> None:
    response = page.request.get(f"{live_server}/favicon.ico")
    assert response.status == 200 and response.headers["content-type"].startswith("image/")


def test_a_day_for_each_role_at_desktop_size(app: Any, live_server: str, browser: Any, tmp_path: Any) -> None:
    ids = _ids(app)
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 1280, "height": 800}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        # the fund: its own institution from the top bar, ranked projects by amount, a request with a message
        _login(page, live_server, "fund")
        page.click(".topbar nav a:has-text('我的机构')")
        page.wait_for_load_state()
        page.click(".sort-bar a[data-sort=amount]")
        page.wait_for_load_state()
        assert "sort=-amount" in page.url
        item = page.locator("#matches-projects li.match", has=page.locator("a[data-action=request]")).first
        name = item.locator(".match-head > a").first.inner_text().strip()
        item.locator("a[data-action=request]").click()
        page.wait_for_load_state()
        page.fill("#confirm-connect textarea[name=note]", "我们关注贵公司的扩产计划")
        page.click("#confirm-submit")
        page.wait_for_load_state()
        assert "已发出对接申请" in page.inner_text("main")
        page.click(".topbar nav a:has-text('对接跟进')")
        page.click("a:has-text('列表')")
        page.wait_for_load_state()
        assert name in page.inner_text("#pipeline-list")
        with page.expect_download() as info:
            page.click("#export-xlsx")
        path = tmp_path / "board.xlsx"
        info.value.save_as(path)
        rows = list(load_workbook(path).active.iter_rows(values_only=True))
        assert rows[0][0] == "项目" and any(r[0] == name for r in rows[1:])
        assert not any("联系" in str(h) or "电话" in str(h) for h in rows[0])
        page.click(".account form button[type=submit]")
        page.wait_for_load_state()

        # the base: the need form names its own field in the error
        _login(page, live_server, "base")
        page.goto(f"{live_server}/needs/new")
        page.fill("input[name=title]", "寻找智能制造方向的入驻项目")
        page.fill("textarea[name=description]", "太短")
        page.click("form.form button[type=submit]")
        page.wait_for_load_state()
        assert "需求说明：" in page.inner_text("main") and "简介" not in page.inner_text("main")
        page.click(".account form button[type=submit]")
        page.wait_for_load_state()

        # the project: its requests from the top bar; it answers one with 接受 and a note
        _login(page, live_server, "project")
        assert page.locator(".topbar nav a:has-text('我的项目')").count() == 1
        page.click(".topbar nav a:has-text('我的对接')")
        page.wait_for_load_state()
        page.goto(f"{live_server}/connections/{ids['project_connection']}")
        history = page.inner_text("#history")
        assert "推荐" not in history.replace("已申请对接", "") and "候选" not in history
        buttons = page.locator("#move-form button[name=to_stage]")
        labels = [buttons.nth(i).inner_text() for i in range(buttons.count())]
        assert labels and "确认变更" not in page.inner_text("main")
        if "接受" in labels:  # a request to answer: 接受 with a note, in one click
            page.fill("#move-form textarea[name=note]", "欢迎下周来访")
            page.click("#move-form button[name=to_stage][value='已接受']")
            page.wait_for_load_state()
            assert "已接受" in page.inner_text("#current-stage")
            assert "接受对接" in page.inner_text("#history") and "欢迎下周来访" in page.inner_text("#history")
        page.click(".account form button[type=submit]")
        page.wait_for_load_state()

        # the organiser: its contest from the top bar
        _login(page, live_server, "organiser")
        page.click(".topbar nav a:has-text('我的赛事')")
        page.wait_for_load_state()
        assert "contest=" in page.url
        page.click(".account form button[type=submit]")
        page.wait_for_load_state()

        # the secretariat: this quarter so far, the last full quarter one click away, a figure's connections
        _login(page, live_server, "admin")
        page.goto(f"{live_server}/dashboard")
        assert "本季度至今" in page.inner_text("h1")
        page.click("#period-last")
        page.wait_for_load_state()
        assert "quarter=" in page.url
        signed = int(page.inner_text("[data-kpi='签约']").replace(",", ""))
        assert page.evaluate("() => !!Chart.getChart('chart-funnel')")
        page.click("a.kpi:has([data-kpi='签约'])")
        page.wait_for_load_state()
        assert "本期签约" in page.inner_text("#drill")
        assert f"共 {signed} 条" in page.inner_text("main")
        page.goto(f"{live_server}/reports/quarterly")
        assert page.evaluate("() => ['chart-funnel', 'chart-regions', 'chart-months'].every(Chart.getChart)")
        # printed: a few A4 pages with the charts, not a wall of tables
        pdf = page.pdf(format="A4")
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert 2 <= pages <= 6, pages
        assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    finally:
        context.close()
