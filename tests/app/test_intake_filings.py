"""Contest filings (备案表): organisers file for their own contests, names checked, the report lists plans."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import select

from models import ContestFiling
from models.accounts import User

PLAN = (
    "区域赛分初赛、复赛和决赛三轮，设企业组和创客组；决赛前组织投融资对接会；"
    "赛后建立项目跟踪台账，每季度回访获奖项目并组织对接服务。"
)


def _form(contest, **changes):  # type: ignore[no-untyped-def]
    return {
        "filing_unit": "某省工业和信息化厅",
        "filed_on": "2022-07-20",
        "name": contest.name,
        "kind": "区域赛",
        "field": "",
        "starts_on": "2022-06-01",
        "ends_on": "2022-08-31",
        "organisers": "举办单位：某省工业和信息化厅",
        "final_venue": contest.place or "省会",
        "plan": PLAN,
        "declaration": "1",
        "liaison": "中小企业处 王五",
        "liaison_phone": "010-12345678",
        "liaison_email": "wangwu@example.cn",
        **changes,
    }


def _organiser_contest(app):  # type: ignore[no-untyped-def]
    from app.extensions import db

    with app.app_context():
        contest = db.session.scalar(select(User).where(User.username == "organiser")).contests[0]
        db.session.expunge(contest)
        return contest


def test_an_organiser_files_its_contest_and_the_secretariat_sees_it_in_the_report(app, client, auth) -> None:
    contest = _organiser_contest(app)
    auth.login("organiser")
    assert "未备案" in client.get("/intake/filings").get_data(as_text=True)
    curly = contest.name.replace("“", '"').replace("”", '"')  # straight quotes are the same name
    r = client.post(f"/intake/filings/{contest.code}", data=_form(contest, name=curly))
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    from app.extensions import db

    with app.app_context():
        row = db.session.scalar(select(ContestFiling).where(ContestFiling.contest_id == contest.id))
        assert row is not None and row.name == contest.name and row.plan == PLAN
    auth.logout()
    auth.login("admin")
    listing = client.get("/intake/filings").get_data(as_text=True)
    assert "已备案" in listing and contest.code in listing
    page = client.get("/reports/quarterly").get_data(as_text=True)
    assert 'id="report-filings"' in page and PLAN in page and contest.code in page
    wb = load_workbook(io.BytesIO(client.get("/reports/quarterly.xlsx").data))
    sheet = wb["赛事备案"]
    assert sheet.cell(2, 1).value == contest.code and PLAN in [c.value for c in sheet[2]]


def test_a_filing_is_checked_against_the_contest_plan(app, client, auth) -> None:
    contest = _organiser_contest(app)
    auth.login("organiser")
    cases = {
        "name": ("第七届创客中国某某大赛", "须与赛事计划公布的名称一致"),
        "plan": ("跟踪" + "很" * 500, "最多 500 个字符"),
        "kind": ("境外区域赛决赛", "赛事计划中该赛事为"),
        "ends_on": ("2022-05-01", "不能早于开始日期"),
        "declaration": ("", "举办单位声明：必填"),
        "liaison_email": ("no-at-sign", "邮箱格式不正确"),
        "organisers": ("\x00x", "不能包含控制字符"),
    }
    for field, (value, message) in cases.items():
        r = client.post(f"/intake/filings/{contest.code}", data=_form(contest, **{field: value}))
        assert r.status_code == 422, field
        assert message in r.get_data(as_text=True), (field, r.get_data(as_text=True)[-3000:])
    from app.extensions import db

    with app.app_context():
        assert db.session.scalar(select(ContestFiling).where(ContestFiling.contest_id == contest.id)) is None


def test_an_organiser_cannot_file_for_another_contest(app, client, auth) -> None:
    contest = _organiser_contest(app)
    other = "7-R02" if contest.code == "7-R01" else "7-R01"
    auth.login("organiser")
    assert client.get(f"/intake/filings/{other}").status_code == 403
    assert client.post(f"/intake/filings/{other}", data=_form(contest)).status_code == 403
    assert other not in client.get("/intake/filings").get_data(as_text=True)
    assert client.get("/intake/filings/7-X99").status_code == 404
