"""An organiser builds a matchmaking event from the demo data in the browser: creates it, invites projects and
institutions, sees a declared conflict with its cause, runs the plan, opens the timetable and downloads the
Excel export; an infeasible event shows its blockers in Chinese."""

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


def _create_event(page: Any, base: str, name: str, **numbers: str) -> int:
    page.goto(f"{base}/events/new")
    page.fill("input[name=name]", name)
    page.fill("input[name=held_on]", "2026-10-20")
    page.fill("input[name=place]", "杭州")
    for field, value in {
        "slots": "4",
        "institution_capacity": "4",
        "project_min": "1",
        "project_max": "3",
        **numbers,
    }.items():
        page.fill(f"input[name={field}]", value)
    page.locator("input[name=contest_ids]").first.check()
    page.click("form.form button[type=submit]")
    page.wait_for_load_state()
    assert "/events/" in page.url and page.url.rstrip("/").split("/")[-1].isdigit(), page.inner_text("main")[
        :500
    ]
    return int(page.url.rstrip("/").split("/")[-1])


def _invite(page: Any, mode: str, **fields: str) -> None:
    form = page.locator(f"form:has(input[name=mode][value={mode}])")
    for field, value in fields.items():
        form.locator(f"input[name={field}]").fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def _invited(page: Any, kind: str) -> list[int]:
    rows = page.locator("section.card table.table tbody tr", has=page.locator(f"td:text-is('{kind}')"))
    return [int(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(rows.count())]


def test_organiser_builds_plans_and_exports_an_event(live_server: str, page: Any, tmp_path: Any) -> None:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    _login(page, live_server, "organiser", "demo-organiser-2026")
    _create_event(page, live_server, "浏览器产融对接会")
    _invite(page, "contest_projects", limit="12")
    _invite(page, "ranked_institutions", per_project="1")
    projects, institutions = _invited(page, "项目"), _invited(page, "机构")
    assert len(projects) >= 5 and len(institutions) >= 3, page.inner_text("main")[:800]

    # a declared conflict, shown with its cause and source
    form = page.locator("form:has(input[name=cause])")
    form.locator("input[name=project_id]").fill(str(projects[0]))
    form.locator("input[name=institution_id]").fill(str(institutions[0]))
    form.locator("input[name=cause]").fill("持股关系")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    conflicts = page.inner_text("#conflicts")
    assert "持股关系" in conflicts and "申报" in conflicts

    # the plan
    page.click("button:text('运行全局排程')")
    page.wait_for_load_state()
    assert "最优排程" in page.inner_text("#plan-ok")

    # the timetable
    page.click("a:text('查看日程')")
    page.wait_for_load_state()
    table = page.inner_text("#timetable")
    assert "第 1 场" in table
    shown = page.locator("#timetable tbody tr").count()
    assert shown >= len(projects)

    # the Excel export opens and holds every meeting with its reasons
    with page.expect_download() as info:
        page.click("a:text('导出 Excel')")
    path = tmp_path / "plan.xlsx"
    info.value.save_as(path)
    rows = list(load_workbook(path)["日程"].iter_rows(values_only=True))
    assert rows[1][-1] == "匹配理由" and len(rows) == 2 + shown
    assert any(row[-1] for row in rows[2:])
    # no page breaks the content security policy (the printed timetable's style is a static file), and no
    # request of the pages fails (the browser's own favicon probe is not reported as a response)
    assert not [e for e in errors if "Content Security Policy" in e or "violates" in e or e[:1] in "45"], (
        errors
    )


def test_infeasible_event_shows_its_blockers(live_server: str, page: Any) -> None:
    _login(page, live_server, "organiser", "demo-organiser-2026")
    _create_event(
        page, live_server, "容量不足的对接会", institution_capacity="1", project_min="2", project_max="2"
    )
    _invite(page, "contest_projects", limit="10")
    # three institutions at one meeting each cannot give ten projects two meetings each
    _invite(page, "ids", institution_ids="1 2 3")
    assert _invited(page, "机构") == [1, 2, 3]
    page.click("button:text('运行全局排程')")
    page.wait_for_load_state()
    blocked = page.inner_text("#plan-blocked")
    assert "无法排程" in blocked and "机构总容量不足" in blocked and "提高机构容量" in blocked
    assert page.locator("a:text('查看日程')").count() == 0
