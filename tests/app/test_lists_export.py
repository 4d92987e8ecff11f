"""Lists people work with: paging, sorting by the columns shown, and xlsx exports of exactly what they see."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import func, select

from app.extensions import db
from models import Connection, Project
from models.accounts import AuditLog, User

HIDDEN = ("联系人", "电话", "邮箱", "团队", "知识产权", "营业收入", "contact")


def _sheet(response) -> list[list]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(response.data)).active
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _table(rows: list[list]) -> tuple[list, list[list]]:
    """Return the heading and the data rows (the filters note after a blank row is left out)."""
    head, body = rows[0], []
    for r in rows[1:]:
        if all(v is None for v in r):
            break
        body.append(r)
    return head, body


def _exports(app) -> list[AuditLog]:  # type: ignore[no-untyped-def]
    with app.app_context():
        return list(db.session.scalars(select(AuditLog).where(AuditLog.action == "export")))


def test_showcase_sorts_pages_and_exports_with_its_filters(app, client, auth) -> None:
    # a visitor sees no funding columns, cannot sort by them, and cannot export
    page = client.get("/projects/").get_data(as_text=True)
    assert "拟融资" not in page and 'id="export-xlsx"' not in page
    r = client.get("/projects/?sort=-amount")
    assert r.status_code == 200 and "排序：应为以下之一" in r.get_data(as_text=True)
    assert client.get("/projects/?format=xlsx").status_code == 302  # to the login page

    auth.login("fund")
    page = client.get("/projects/?sort=-amount").get_data(as_text=True)
    amounts = [float(a) for a in re.findall(r'data-label="拟融资" class="num" data-value="([\d.]+)"', page)]
    assert len(amounts) > 5 and amounts == sorted(amounts, reverse=True)
    assert 'aria-sort="descending"' in page
    page2 = client.get("/projects/?sort=-amount&page=2").get_data(as_text=True)
    assert "第 2 /" in page2
    bad = client.get("/projects/?page=abc")
    assert bad.status_code == 200 and "页码：应为整数" in bad.get_data(as_text=True)

    head, body = _table(_sheet(client.get("/projects/?award=一等奖&sort=-amount&format=xlsx")))
    assert head[:4] == ["项目", "赛事", "组别", "获奖"] and "拟融资（万元）" in head
    assert not any(h in str(head) for h in HIDDEN)
    with app.app_context():
        total = len(db.session.scalars(select(Project.id).where(Project.award == "FIRST")).all())
        live = db.session.scalars(
            select(Project.id).where(Project.award == "FIRST", Project.archived_at.is_(None))
        ).all()
    assert body and len(body) == len(live) <= total
    assert {r[3] for r in body} == {"一等奖"}
    amounts = [r[head.index("拟融资（万元）")] for r in body if r[head.index("拟融资（万元）")] is not None]
    assert amounts == sorted(amounts, reverse=True)
    log = _exports(app)[-1]
    assert log.obj_kind == "projects" and log.detail["rows"] == len(body)
    assert log.detail["filters"]["award"] == "一等奖"


def test_ranked_projects_page_sort_and_export(app, client, auth) -> None:
    auth.login("fund")
    with app.app_context():
        inst = db.session.scalar(select(User.institution_id).where(User.username == "fund"))
    first = client.get(f"/institutions/{inst}").get_data(as_text=True)
    second = client.get(f"/institutions/{inst}?page=2").get_data(as_text=True)
    assert "第 1 名" in first and "第 21 名" in second and "第 1 名" not in second
    by_amount = client.get(f"/institutions/{inst}?sort=-amount").get_data(as_text=True)
    assert 'data-sort="amount"' in by_amount and "拟融资" in by_amount
    head, body = _table(_sheet(client.get(f"/institutions/{inst}?sort=-amount&format=xlsx")))
    assert head[0] == "排名" and head[-1] == "匹配度" and not any(h in str(head) for h in HIDDEN)
    assert len(body) > 20  # the whole ranked list, not one page
    amounts = [r[head.index("拟融资（万元）")] for r in body]
    present = [a for a in amounts if a is not None]
    assert present == sorted(present, reverse=True)
    assert amounts[: len(present)] == present  # empty amounts last
    assert _exports(app)[-1].obj_kind == "ranked_projects"


def test_connection_lists_sort_and_export_only_what_the_viewer_sees(app, client, auth) -> None:
    auth.login("admin")
    listing = client.get("/connections/?stage=已签约&sort=-signed_amount").get_data(as_text=True)
    assert 'aria-sort="descending"' in listing and "签约金额" in listing
    head, body = _table(_sheet(client.get("/connections/?stage=已签约&sort=-signed_amount&format=xlsx")))
    with app.app_context():
        signed = db.session.scalar(select(func.count(Connection.id)).where(Connection.stage == "SIGNED"))
    assert len(body) == signed and {r[head.index("阶段")] for r in body} == {"已签约"}
    assert "候选" not in head and "备注" not in head
    money = [r[head.index("签约金额（万元）")] for r in body if r[head.index("签约金额（万元）")] is not None]
    assert money == sorted(money, reverse=True)
    r = client.get("/connections/?sort=nonsense")
    assert r.status_code == 200 and "排序：应为以下之一" in r.get_data(as_text=True)
    auth.logout()

    # an institution's board, its shortlist: its own notes and flag, nobody else's rows
    auth.login("fund")
    with app.app_context():
        inst = db.session.scalar(select(User.institution_id).where(User.username == "fund"))
        mine = db.session.scalar(select(func.count(Connection.id)).where(Connection.institution_id == inst))
        shortlisted = db.session.scalar(
            select(func.count(Connection.id)).where(
                Connection.institution_id == inst, Connection.shortlisted.is_(True)
            )
        )
    head, body = _table(_sheet(client.get(f"/connections/institution/{inst}?format=xlsx")))
    assert len(body) == mine and "候选" in head and "备注" in head and "机构" not in head
    head, body = _table(_sheet(client.get(f"/connections/institution/{inst}?shortlisted=1&format=xlsx")))
    assert len(body) == shortlisted and {r[head.index("候选")] for r in body} <= {"★"}
    auth.logout()

    # a project: its requests only, without the institution's shortlist flag or notes
    auth.login("project")
    with app.app_context():
        pid = db.session.scalar(select(User.project_id).where(User.username == "project"))
        requested = db.session.scalar(
            select(func.count(Connection.id)).where(
                Connection.project_id == pid, Connection.requested_at.is_not(None)
            )
        )
    head, body = _table(_sheet(client.get(f"/connections/project/{pid}?format=xlsx")))
    assert len(body) == requested and "候选" not in head and "备注" not in head and "项目" not in head


def test_export_cells_are_safe_from_formulas(app, client, auth) -> None:
    with app.app_context():
        p = db.session.scalar(select(Project).where(Project.archived_at.is_(None)).order_by(Project.id))
        p.name = '=HYPERLINK("http://x")'
        db.session.commit()
    auth.login("admin")
    _head, body = _table(_sheet(client.get("/projects/?format=xlsx&sort=name")))
    names = [r[0] for r in body]
    assert '\'=HYPERLINK("http://x")' in names and not any(str(n).startswith("=") for n in names)


def test_need_form_error_uses_the_visible_label(app, client, auth) -> None:
    auth.login("fund")
    r = client.post("/needs/new", data={"title": "寻找智能制造项目", "description": ""})
    text = r.get_data(as_text=True)
    assert r.status_code == 422 and "需求说明：" in text and "简介：" not in text


def test_directory_sorts_and_exports_the_published_profile(app, client, auth) -> None:
    from models import Institution, InstitutionKind

    page = client.get("/institutions/?sort=-space").get_data(as_text=True)
    assert 'id="export-xlsx"' not in page and "排序：" not in page
    auth.login("base")
    head, body = _table(_sheet(client.get("/institutions/?kind=创业投资机构&sort=name&format=xlsx")))
    with app.app_context():
        vcs = db.session.scalars(
            select(Institution.name).where(
                Institution.kind == InstitutionKind.VC, Institution.archived_at.is_(None)
            )
        ).all()
    assert sorted(r[0] for r in body) == sorted(vcs) and {r[1] for r in body} == {"创业投资机构"}
    assert not any(h in str(head) for h in HIDDEN)
    with app.app_context():
        contacts = set(db.session.scalars(select(Institution.contact_name)).all()) - {None}
    assert not contacts & {c for r in body for c in r}


def test_needs_list_sorts_pages_and_exports(app, client, auth) -> None:
    from models import Need

    auth.login("fund")
    page = client.get("/needs/?sort=quota").get_data(as_text=True)
    assert 'id="need-list"' in page and 'aria-sort="ascending"' in page
    bad = client.get("/needs/?sort=contact_phone")
    assert bad.status_code == 200 and "排序：应为以下之一" in bad.get_data(as_text=True)
    head, body = _table(_sheet(client.get("/needs/?sort=-deadline&format=xlsx")))
    assert head == ["需求", "发布机构", "行业 / 服务", "数量", "截止", "状态"]
    with app.app_context():
        live = db.session.scalar(select(func.count(Need.id)).where(Need.archived_at.is_(None)))
    assert len(body) == live
    deadlines = [r[4] for r in body if r[4] is not None]
    assert deadlines == sorted(deadlines, reverse=True)
    assert _exports(app)[-1].obj_kind == "needs"


def test_contests_are_named_with_their_codes(app, client, auth) -> None:
    with app.app_context():
        project = db.session.scalars(select(Project).where(Project.archived_at.is_(None))).first()
        code, pid = project.contest.code, project.id
    assert f"{code} " in client.get(f"/projects/{pid}").get_data(as_text=True)
    assert f"{code} " in client.get("/projects/").get_data(as_text=True)
