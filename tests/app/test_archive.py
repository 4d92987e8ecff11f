"""Outcomes are never destroyed: a record with connections is archived on delete, not deleted.

Archived: hidden from lists, search, the showcase and the rankings (also after an index rebuild or
`flask embed`), kept in the figures, the quarterly report and the connection history; readable by the
secretariat only, who can restore it. A record without history is deleted, audited either way.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.pipeline.figures import Period, figures, parse_quarter
from models import Connection, ConnectionStage, Institution, Need, Project
from models.accounts import AuditLog
from models.pipeline import ConnectionEvent

QUARTERS = ("2025Q4", "2026Q1", "2026Q2", "2026Q3")
NEW_PROJECT = {
    "name": "秸秆生物基可降解餐盒",
    "group": "企业组",
    "contest_id": 11,
    "award": "500强",
    "industry": "新材料",
    "province": "浙江省",
    "description": "以农作物秸秆为原料，通过改性与模压工艺制成可完全降解的餐盒与托盘，已进入连锁餐饮供应链。",
}


def _signed_in(app: Flask, quarter: str) -> list[Connection]:
    """Return the connections signed during a quarter (demo data)."""
    period = parse_quarter(quarter)
    with app.app_context():
        rows = db.session.scalars(
            select(Connection).where(Connection.stage == ConnectionStage.SIGNED).order_by(Connection.id)
        ).all()
        return [c for c in rows if c.signed_at is not None and period.contains(c.signed_at)]


def _all_figures(app: Flask) -> dict[str, Any]:
    with app.app_context():
        s = db.session
        out = {q: figures(s, parse_quarter(q)).as_json() for q in QUARTERS}
        year = Period(parse_quarter("2025Q4").start, parse_quarter("2026Q3").end, "year")
        out["year"] = figures(s, year).as_json()
        return out


def _audit(app: Flask, action: str) -> list[AuditLog]:
    with app.app_context():
        return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def _matching(app: Flask) -> Any:
    from app.services import get_matching

    with app.test_request_context():
        return get_matching()


@pytest.fixture()
def signed(app: Flask) -> tuple[int, int]:
    """Return (a project, an institution of another project) with connections signed in 2026Q3."""
    q3 = _signed_in(app, "2026Q3")
    assert len(q3) >= 2, "the demo has signed connections in 2026Q3"
    project_id = q3[0].project_id
    inst_id = next(c.institution_id for c in q3 if c.project_id != project_id)
    return project_id, inst_id


def test_deleting_records_with_signed_connections_leaves_past_figures_unchanged(
    app: Flask, client: Any, auth: Any, signed: tuple[int, int]
) -> None:
    project_id, inst_id = signed
    auth.login("admin")
    before = _all_figures(app)
    dashboard = client.get("/api/dashboard?quarter=2026Q3").get_json()
    assert before["2026Q3"]["totals"]["signed"] > 0

    r = client.delete(f"/api/projects/{project_id}")
    assert r.status_code == 200 and r.get_json()["archived"] is True and r.get_json()["id"] == project_id
    r = client.delete(f"/api/institutions/{inst_id}")
    assert r.status_code == 200 and r.get_json()["archived"] is True

    assert _all_figures(app) == before
    assert client.get("/api/dashboard?quarter=2026Q3").get_json() == dashboard
    with app.app_context():
        s = db.session
        kept = s.scalars(select(Connection).where(Connection.project_id == project_id)).all()
        assert kept and all(c.events for c in kept)
        assert s.scalars(select(Connection).where(Connection.institution_id == inst_id)).all()
    # the quarterly report still builds and names the archived project's outcome
    report = client.get("/reports/quarterly.xlsx?quarter=2026Q3")
    assert report.status_code == 200 and report.data[:2] == b"PK"


def test_an_archived_project_is_hidden_but_its_history_is_kept(
    app: Flask, client: Any, auth: Any, runner: Any, signed: tuple[int, int]
) -> None:
    project_id, _ = signed
    with app.app_context():
        p = db.session.get(Project, project_id)
        name, contest_id = p.name, p.contest_id  # type: ignore[union-attr]
        cid = db.session.scalar(select(Connection.id).where(Connection.project_id == project_id))
    assert client.get(f"/api/projects?q={name}").get_json()["total"] == 1
    _matching(app)  # the index is built before the delete: the delete must take the project out of it
    auth.login("admin")
    assert client.delete(f"/api/projects/{project_id}").status_code == 200

    (line,) = _audit(app, "project.archive")
    assert line.obj_id == project_id and line.username == "admin"
    with app.app_context():
        p = db.session.get(Project, project_id)
        assert p.archived_at is not None and p.archived_by_id == line.user_id  # type: ignore[union-attr]

    # the secretariat still reads it, marked; its connection page still names it, marked 已归档
    got = client.get(f"/api/projects/{project_id}")
    assert got.status_code == 200 and got.get_json()["archived_at"]
    assert "已归档" in client.get(f"/projects/{project_id}").get_data(as_text=True)
    page = client.get(f"/connections/{cid}").get_data(as_text=True)
    assert name in page and "已归档" in page
    # nobody edits or ranks it until it is restored
    assert client.patch(f"/api/projects/{project_id}", json={"amount_wan": 1}).status_code == 404
    assert client.get(f"/api/projects/{project_id}/matches?kind=fund").status_code == 404
    assert client.get(f"/projects/{project_id}/edit").status_code == 404

    # lists, search, the showcase: gone, for everyone
    assert client.get(f"/api/projects?q={name}").get_json()["total"] == 0
    listed = client.get(f"/api/projects?contest_id={contest_id}&per_page=100").get_json()["items"]
    ids = [i["id"] for i in listed]
    assert project_id not in ids
    assert f'href="/projects/{project_id}"' not in client.get(f"/projects/?q={name}").get_data(as_text=True)
    auth.logout()
    assert f'href="/projects/{project_id}"' not in client.get("/").get_data(as_text=True)
    assert client.get(f"/api/projects/{project_id}").status_code == 404
    assert client.get(f"/projects/{project_id}").status_code == 404
    for who in ("fund", "organiser", "project"):
        auth.login(who)
        assert client.get(f"/api/projects/{project_id}").status_code == 404, who
        auth.logout()

    # rankings: out of the live index, and it stays out after a rebuild and after `flask embed`
    from app.services import build_matching

    assert project_id not in _matching(app).project_ids()
    assert project_id not in build_matching(app, rebuild=True).project_ids()
    result = runner.invoke(args=["embed"])
    assert result.exit_code == 0, result.output
    assert project_id not in build_matching(app).project_ids()


def test_the_secretariat_restores_an_archived_project(
    app: Flask, client: Any, auth: Any, signed: tuple[int, int]
) -> None:
    project_id, _ = signed
    auth.login("admin")
    assert client.delete(f"/api/projects/{project_id}").status_code == 200
    assert project_id not in _matching(app).project_ids()
    auth.logout()
    auth.login("organiser")
    assert client.post(f"/api/projects/{project_id}/restore").status_code == 403
    auth.logout()
    auth.login("admin")
    r = client.post(f"/api/projects/{project_id}/restore")
    assert r.status_code == 200 and "archived_at" not in r.get_json()
    assert _audit(app, "project.restore")[0].obj_id == project_id
    assert project_id in _matching(app).project_ids()
    auth.logout()
    assert client.get(f"/api/projects/{project_id}").status_code == 200


def test_a_project_without_history_is_deleted_and_audited(app: Flask, client: Any, auth: Any) -> None:
    auth.login("admin")
    pid = client.post("/api/projects", json=NEW_PROJECT).get_json()["id"]
    r = client.delete(f"/api/projects/{pid}")
    assert r.status_code == 204 and r.data == b""
    assert [a.obj_id for a in _audit(app, "project.delete")] == [pid]
    assert not _audit(app, "project.archive")
    with app.app_context():
        assert db.session.get(Project, pid) is None


def test_the_delete_button_says_which_happened(
    app: Flask, client: Any, auth: Any, signed: tuple[int, int]
) -> None:
    project_id, _ = signed
    auth.login("admin")
    pid = client.post("/api/projects", json=NEW_PROJECT).get_json()["id"]
    form = client.get(f"/projects/{pid}/edit").get_data(as_text=True)
    assert "归档" in form  # the danger zone explains what a delete does to a project with history
    page = client.post(f"/projects/{pid}/delete", follow_redirects=True).get_data(as_text=True)
    assert "已删除" in page
    page = client.post(f"/projects/{project_id}/delete", follow_redirects=True).get_data(as_text=True)
    assert "已归档" in page
    page = client.post(f"/projects/{project_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "已恢复" in page


def test_an_archived_institution_takes_its_needs_out_and_comes_back(
    app: Flask, client: Any, auth: Any, signed: tuple[int, int]
) -> None:
    _, inst_id = signed
    auth.login("admin")
    need = client.post(
        "/api/needs",
        json={
            "institution_id": inst_id,
            "title": "寻找新材料项目",
            "description": "关注新材料方向的成长期项目。",
        },
    ).get_json()
    _matching(app)
    page = client.post(f"/institutions/{inst_id}/delete", follow_redirects=True).get_data(as_text=True)
    assert "已归档" in page
    assert _audit(app, "institution.archive")[0].obj_id == inst_id
    assert inst_id not in _matching(app).institution_ids()
    with app.app_context():
        assert db.session.get(Need, need["id"]).archived_at is not None  # type: ignore[union-attr]
        name = db.session.get(Institution, inst_id).name  # type: ignore[union-attr]
    needs = client.get("/api/needs?per_page=100&institution_id=" + str(inst_id)).get_json()
    assert need["id"] not in [n["id"] for n in needs["items"]]
    assert client.get(f"/api/institutions?q={name}").get_json()["total"] == 0
    assert client.get(f"/api/institutions/{inst_id}").get_json()["archived_at"]
    # a new connection to an archived institution is refused like one to a missing institution (404)
    r = client.post(
        "/api/connections", json={"project_id": 1, "institution_id": inst_id, "action": "shortlist"}
    )
    assert r.status_code == 404 and "institution_id" in r.get_json()["error"]["fields"]
    auth.logout()
    auth.login("fund")
    assert client.get(f"/api/institutions/{inst_id}").status_code == 404
    assert client.get(f"/api/needs/{need['id']}").status_code == 404
    auth.logout()

    auth.login("admin")
    assert client.post(f"/api/needs/{need['id']}/restore").status_code == 409  # its institution first
    assert client.post(f"/api/institutions/{inst_id}/restore").status_code == 200
    assert inst_id in _matching(app).institution_ids()
    assert client.get(f"/api/institutions?q={name}").get_json()["total"] == 1
    assert client.post(f"/api/needs/{need['id']}/restore").status_code == 200
    assert [a.obj_id for a in _audit(app, "institution.restore")] == [inst_id]


def test_an_institution_without_history_is_deleted_with_its_needs(app: Flask, client: Any, auth: Any) -> None:
    auth.login("admin")
    inst = client.post(
        "/api/institutions",
        json={
            "name": "归档测试基金",
            "kind": "创业投资机构",
            "description": "投早期硬科技项目的创业投资机构。",
        },
    ).get_json()
    need = client.post(
        "/api/needs",
        json={
            "institution_id": inst["id"],
            "title": "寻找项目",
            "description": "关注成长期项目，提供资金与资源。",
        },
    ).get_json()
    assert "id" in need, need
    assert client.delete(f"/api/institutions/{inst['id']}").status_code == 204
    assert [a.obj_id for a in _audit(app, "institution.delete")] == [inst["id"]]
    with app.app_context():
        assert db.session.get(Need, need["id"]) is None


def test_a_need_with_connections_is_archived_one_without_is_deleted(
    app: Flask, client: Any, auth: Any, signed: tuple[int, int]
) -> None:
    _, inst_id = signed
    auth.login("admin")
    body = {"institution_id": inst_id, "title": "寻找项目", "description": "关注成长期项目，提供资金与资源。"}
    used = client.post("/api/needs", json=body).get_json()["id"]
    unused = client.post("/api/needs", json=body).get_json()["id"]
    with app.app_context():
        free = db.session.scalar(
            select(Project.id)
            .where(~Project.id.in_(select(Connection.project_id).where(Connection.institution_id == inst_id)))
            .order_by(Project.id)
        )
    r = client.post(
        "/api/connections",
        json={"project_id": free, "institution_id": inst_id, "need_id": used, "action": "shortlist"},
    )
    assert r.status_code in (200, 201), r.get_json()
    r = client.delete(f"/api/needs/{used}")
    assert r.status_code == 200 and r.get_json()["archived"] is True
    assert client.delete(f"/api/needs/{unused}").status_code == 204
    assert [a.obj_id for a in _audit(app, "need.archive")] == [used]
    assert [a.obj_id for a in _audit(app, "need.delete")] == [unused]
    with app.app_context():
        c = db.session.scalar(select(Connection).where(Connection.need_id == used))
        assert c is not None and c.project_id == free  # the connection still says which need it came through
    listed = client.get(f"/api/needs?per_page=100&institution_id={inst_id}").get_json()["items"]
    assert used not in [n["id"] for n in listed]
    page = client.post(f"/needs/{used}/delete", follow_redirects=True)
    assert page.status_code == 200  # deleting again is harmless: still archived
    with app.app_context():
        assert db.session.get(Need, used).archived_at is not None  # type: ignore[union-attr]


def test_the_database_refuses_to_delete_a_project_or_institution_with_history(
    app: Flask, signed: tuple[int, int]
) -> None:
    project_id, inst_id = signed
    with app.app_context():
        s = db.session
        for table, ident in (("project", project_id), ("institution", inst_id)):
            with pytest.raises(IntegrityError):
                s.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": ident})
            s.rollback()
        s.delete(s.get(Project, project_id))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        assert s.get(Project, project_id) is not None
        assert s.scalar(
            select(ConnectionEvent.id).join(Connection).where(Connection.project_id == project_id)
        )


def test_the_secretariat_finds_archived_records_on_one_page(
    app: Flask, client: Any, auth: Any, signed: tuple[int, int]
) -> None:
    project_id, inst_id = signed
    with app.app_context():
        p_name = db.session.get(Project, project_id).name  # type: ignore[union-attr]
        i_name = db.session.get(Institution, inst_id).name  # type: ignore[union-attr]
    auth.login("fund")
    assert client.get("/admin/archive").status_code == 403
    auth.logout()
    auth.login("admin")
    assert "没有已归档的项目" in client.get("/admin/archive").get_data(as_text=True)
    client.delete(f"/api/projects/{project_id}")
    client.delete(f"/api/institutions/{inst_id}")
    page = client.get("/admin/archive").get_data(as_text=True)
    assert p_name in page and i_name in page and f"/projects/{project_id}/restore" in page
    page = client.post(f"/institutions/{inst_id}/restore", follow_redirects=True).get_data(as_text=True)
    assert "已恢复" in page
    assert i_name not in client.get("/admin/archive").get_data(as_text=True)


def test_a_connection_made_during_the_delete_makes_it_an_archive(
    app: Flask, client: Any, auth: Any, signed: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The history check and the delete are two statements: if a connection slips in between, the
    database refuses the delete and the record is archived, not lost and not a 500."""
    from app import services

    project_id, inst_id = signed
    monkeypatch.setattr(services, "_has_history", lambda *_a, **_k: False)  # the check saw no connection
    auth.login("admin")
    r = client.delete(f"/api/projects/{project_id}")
    assert r.status_code == 200 and r.get_json()["archived"] is True
    r = client.delete(f"/api/institutions/{inst_id}")
    assert r.status_code == 200 and r.get_json()["archived"] is True
    assert not _audit(app, "project.delete") and not _audit(app, "institution.delete")
    assert [a.obj_id for a in _audit(app, "project.archive")] == [project_id]
    with app.app_context():
        assert db.session.scalar(select(Connection.id).where(Connection.project_id == project_id))
        assert db.session.get(Project, project_id).archived_at is not None  # type: ignore[union-attr]
