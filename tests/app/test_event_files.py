"""Events from files: invite lists (项目编号 / 机构编号 or names, CSV or XLSX) and the experts import, all
rows or none with per-row Chinese errors; 辅导专家 are assigned like mentors."""

from __future__ import annotations

import io

from openpyxl import Workbook
from sqlalchemy import select

from models import Institution, Project
from models.accounts import User
from models.events import Event, Expert, ExpertAssignment


def _contest(session) -> int:
    return session.scalar(select(User).where(User.username == "organiser")).contests[0].id


def _event(client, contest: int) -> int:
    data = {"name": "文件邀请对接会", "slots": "4", "contest_ids": [str(contest)]}
    r = client.post("/events/new", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)
    return int(r.headers["Location"].rstrip("/").split("/")[-1])


def _csv(text: str, name: str = "list.csv") -> tuple[io.BytesIO, str]:
    return io.BytesIO(text.encode("utf-8")), name


def _xlsx(rows: list[list[object]]) -> tuple[io.BytesIO, str]:
    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf, "list.xlsx"


def _invited(session, event_id: int) -> tuple[list[int], list[int]]:
    session.expire_all()
    invites = session.get(Event, event_id).invites
    return (
        [i.project_id for i in invites if i.project_id],
        [i.institution_id for i in invites if i.institution_id],
    )


def test_invite_from_a_csv_by_number_and_by_name(client, auth, session):
    auth.login("organiser")
    contest = _contest(session)
    event_id = _event(client, contest)
    p1, p2 = session.scalars(
        select(Project).where(Project.contest_id == contest).order_by(Project.id).limit(2)
    )
    i1, i2 = session.scalars(select(Institution).order_by(Institution.id).limit(2))
    text = f"项目编号,项目名称,机构编号,机构名称\n{p1.id},,{i1.id},\n,{p2.name},,{i2.name}\n"
    r = client.post(
        f"/events/{event_id}/invite",
        data={"mode": "file", "file": _csv(text)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "已邀请 2 个项目、2 家机构" in r.get_data(as_text=True)
    assert _invited(session, event_id) == ([p1.id, p2.id], [i1.id, i2.id])


def test_invite_from_an_xlsx_of_institution_numbers(client, auth, session):
    auth.login("organiser")
    event_id = _event(client, _contest(session))
    ids = list(session.scalars(select(Institution.id).order_by(Institution.id).limit(3)))
    upload = _xlsx([["机构编号"], *[[i] for i in ids]])
    r = client.post(
        f"/events/{event_id}/invite",
        data={"mode": "file", "file": upload},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "已邀请 0 个项目、3 家机构" in r.get_data(as_text=True)
    assert _invited(session, event_id) == ([], ids)


def test_a_bad_invite_file_names_its_rows_and_invites_nobody(client, auth, session):
    auth.login("organiser")
    event_id = _event(client, _contest(session))
    first = session.scalar(select(Institution.id).order_by(Institution.id).limit(1))
    text = f"机构编号,机构名称\n{first},\n99999999,\nabc,\n,没有这家机构\n"
    r = client.post(
        f"/events/{event_id}/invite",
        data={"mode": "file", "file": _csv(text)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    page = r.get_data(as_text=True)
    assert "第 3 行：机构编号 99999999 不存在" in page
    assert "第 4 行「机构编号」应为正整数" in page
    assert "第 5 行：没有名为「没有这家机构」的机构" in page
    assert _invited(session, event_id) == ([], [])
    for upload, message in (
        (_csv("姓名\n张三\n"), "文件应有「项目编号」或「项目名称」或「机构编号」或「机构名称」列"),
        (_csv("机构编号,备注\n1,x\n"), "不认识的列「备注」"),
        ((io.BytesIO(b"not a zip"), "list.xlsx"), "文件内容与扩展名 .xlsx 不符"),
        ((io.BytesIO(b"1,2"), "list.txt"), "只接受 csv、xlsx 格式"),
    ):
        r = client.post(
            f"/events/{event_id}/invite",
            data={"mode": "file", "file": upload},
            content_type="multipart/form-data",
            follow_redirects=True,
        )
        assert message in r.get_data(as_text=True), message
    assert _invited(session, event_id) == ([], [])


EXPERTS = (
    "姓名,工作单位,领域,类型,角色,容量\n"
    "周专家,{inst},新材料，智能制造,技术/管理,评委、辅导专家,7\n"
    "吴导师,某大学,生物医药,投资,创业导师,\n"
)


def test_experts_import_binds_employers_and_keeps_every_field(client, auth, session):
    auth.login("organiser")
    inst = session.scalar(select(Institution).order_by(Institution.id).limit(1))
    r = client.post(
        "/events/experts/import",
        data={"file": _csv(EXPERTS.format(inst=inst.name))},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "已导入 2 位专家" in r.get_data(as_text=True)
    zhou, wu = session.scalars(select(Expert).order_by(Expert.id)).all()
    assert (zhou.name, zhou.employer_institution_id, zhou.employer) == ("周专家", inst.id, None)
    assert zhou.fields == ["新材料", "智能制造"] and zhou.kinds == ["TECH", "MANAGEMENT"]
    assert zhou.roles == ["JUDGE", "EXPERT"] and zhou.capacity == 7
    assert (wu.employer_institution_id, wu.employer, wu.roles, wu.capacity) == (None, "某大学", ["MENTOR"], 5)


def test_a_bad_experts_file_stores_nothing_and_names_each_row(client, auth, session):
    auth.login("organiser")
    text = (
        "姓名,工作单位,领域,类型,角色,容量\n"
        "好专家,,新材料,技术,评委,3\n"
        ",,新材料,技术,评委,3\n"
        "坏角色,,新材料,技术,裁判,3\n"
        "坏类型,,新材料,财务,评委,3\n"
        "坏容量,,新材料,技术,评委,0\n"
        "=公式,,新材料,技术,评委,3\n"
    )
    r = client.post(
        "/events/experts/import",
        data={"file": _csv(text)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    page = r.get_data(as_text=True)
    for message in (
        "第 3 行「姓名」：必填",
        "第 4 行「角色」：「裁判」应为 评委、创业导师、辅导专家 之一",
        "第 5 行「类型」：「财务」应为 技术、投资、管理 之一",
        "第 6 行「容量」：应为 1 到 500 之间的整数",
        "第 7 行「姓名」不能以 = + - @ 开头",
        "未导入任何专家",
    ):
        assert message in page, message
    assert session.scalars(select(Expert)).all() == []


def test_tutoring_experts_are_assigned_to_projects_with_needs(client, auth, session):
    auth.login("organiser")
    contest = _contest(session)
    text = "姓名,领域,类型,角色,容量\n" + "".join(
        f"辅导{n},新材料,技术/投资/管理,辅导专家,500\n" for n in range(3)
    )
    client.post("/events/experts/import", data={"file": _csv(text)}, content_type="multipart/form-data")
    assert "辅导专家" in client.get("/events/assign").get_data(as_text=True)
    r = client.post("/events/assign", data={"contest_id": str(contest), "role": "辅导专家", "coverage": "2"})
    assert 'id="assign-ok"' in r.get_data(as_text=True), r.get_data(as_text=True)[:2000]
    rows = session.scalars(select(ExpertAssignment).where(ExpertAssignment.contest_id == contest)).all()
    with_needs = set(
        session.scalars(select(Project.id).where(Project.contest_id == contest, Project.needs != []))
    )
    assert rows and all(a.role.name == "EXPERT" for a in rows)
    assert {a.project_id for a in rows} <= with_needs
    r = client.post("/events/assign", data={"contest_id": str(contest), "role": "顾问", "coverage": "2"})
    assert r.status_code == 400 and "角色：应为 评委、创业导师、辅导专家 之一" in r.get_data(as_text=True)
