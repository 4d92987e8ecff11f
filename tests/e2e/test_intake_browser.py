"""In a real browser: an organiser imports a GBK CSV and an xlsx of its own sheet (variant headers, no contest
column), checks the guessed column mapping, reads the preview, fixes a bad row, commits, and imports the same
file again without creating anything; the secretariat then sees the eligibility of an imported project."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openpyxl import Workbook
from sqlalchemy import func, select

from app.extensions import db
from models import Project

pytestmark = pytest.mark.e2e

ROW = {
    "项目名称": "雪域牦牛奶酪工坊",
    "参赛组别": "企业组",
    "所属行业": "现代农业",
    "省": "西藏自治区",
    "发展阶段": "成长期",
    "拟融资金额（万元）": "600",
    "项目简介": (
        "以高原牦牛奶为原料制作硬质奶酪和奶片，建有冷链仓和一条半自动产线，产品进入区内连锁超市和景区。"
    ),
    "项目编号": "XZ-B01",
    "从业人员（人）": "28",
    "营业收入（万元）": "900",
}


def _csv(rows: list[dict[str, str]], encoding: str) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def _xlsx(rows: list[dict[str, str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(list(rows[0]))
    for row in rows:
        ws.append(list(row.values()))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _login(page: Any, live_server: str, user: str, password: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.form button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def _import(page: Any, live_server: str, path: Path) -> str:
    """Upload a file, keep the guessed mapping, go to the preview; return the preview's text."""
    page.goto(f"{live_server}/imports/?kind=projects")
    page.set_input_files("input[name=file]", str(path))
    page.click("form[enctype] button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    assert "/mapping" in page.url, page.content()[:500]
    # the organiser's own headers were recognised
    assert page.locator("select[aria-label='「项目名称」对应的字段']").input_value() == "name"
    assert page.locator("select[aria-label='「省」对应的字段']").input_value() == "province"
    page.click("main form button:has-text('下一步：预览')")
    page.wait_for_load_state("domcontentloaded")
    assert "/preview" in page.url, page.content()[:500]
    return " ".join(page.locator("main").inner_text().split())


def _count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Project.id))) or 0


def test_organiser_imports_gbk_csv_and_xlsx_fixes_a_row_and_reimports(
    page: Any, live_server: str, app: Flask, tmp_path: Path
) -> None:
    _login(page, live_server, "organiser", "demo-organiser-2026")
    before = _count(app)
    tabs = page.goto(f"{live_server}/imports/?kind=projects")
    assert tabs is not None and tabs.status == 200
    assert "服务机构" not in page.locator("main nav.filters").last.inner_text()  # institutions are not theirs

    # a GBK file with one bad row: the preview names the row, nothing is imported
    bad = tmp_path / "本赛区项目.csv"
    rows = [ROW, {**ROW, "项目名称": "牦牛酸奶", "项目编号": "XZ-B02", "拟融资金额（万元）": "-5"}]
    bad.write_bytes(_csv(rows, "gbk"))
    text = _import(page, live_server, bad)
    assert "第 3 行" in text and page.locator("button:has-text('确认导入')").count() == 0
    assert _count(app) == before

    # the organiser fixes the row and uploads again: two new projects, written by the import job
    rows[1]["拟融资金额（万元）"] = "300"
    bad.write_bytes(_csv(rows, "gbk"))
    text = _import(page, live_server, bad)
    assert "新增 2 条" in text, text[:600]
    page.click("button:has-text('确认导入')")
    page.wait_for_load_state("domcontentloaded")
    assert "/imports/jobs/" in page.url, page.content()[:500]
    # the job's page shows its progress bar, then reloads itself with the summary once the job is done
    page.wait_for_selector("#import-done", timeout=120_000)
    assert "新增 2 条" in page.locator("#import-done").inner_text()
    assert _count(app) == before + 2

    # the same projects again, now as xlsx, one text changed: nothing new, one changed
    sheet = tmp_path / "本赛区项目.xlsx"
    rows[1]["项目简介"] = rows[1]["项目简介"] + "今年新增了低糖系列。"
    sheet.write_bytes(_xlsx(rows))
    text = _import(page, live_server, sheet)
    assert "新增 0 条" in text and "更新 1 条" in text and "未变化 1 条" in text, text[:600]
    page.click("button:has-text('确认导入')")
    page.wait_for_load_state("domcontentloaded")
    page.wait_for_selector("#import-done", timeout=120_000)
    assert "更新 1 条" in page.locator("#import-done").inner_text()
    assert _count(app) == before + 2

    # the imported project shows its contest code and its entry conditions
    with app.app_context():
        project = db.session.scalar(select(Project).where(Project.ref == "XZ-B01"))
        assert project is not None
        pid, code = project.id, project.contest.code
    page.goto(f"{live_server}/projects/{pid}")
    body = page.locator("main").inner_text()
    assert code in body and "中小企业" in body
