"""The security review's findings on access and privacy, each reproduced against the fixed service.

Parsed-value authorisation (float and string ids, a cleared award), control characters, rankings that
revealed private pipelines to visitors, the connections list's redirect, contacts opened without the
project's consent, and a project's request blocked by (and revealing) a private shortlist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.api import PROJECT_FIELDS
from app.auth.accounts import DEMO_ACCOUNTS
from app.extensions import db
from app.pipeline.states import china_date
from app.serialize import project_json
from models import Connection, ConnectionStage, Contest, Institution, Need, Project
from models.accounts import User

PASSWORDS = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}


def _login(app: Flask, who: str) -> FlaskClient:
    c = app.test_client()
    if who != "anon":
        assert c.post("/login", data={"username": who, "password": PASSWORDS[who]}).status_code == 302
    return c


def _user(who: str) -> User:
    user = db.session.scalar(select(User).where(User.username == who))
    assert user is not None
    return user


def _free_project_for_fund(app: Flask) -> tuple[int, int]:
    """Bind the project account to a project without any connection to the fund's institution."""
    with app.app_context():
        fund_inst = _user("fund").institution_id
        linked = set(
            db.session.scalars(select(Connection.project_id).where(Connection.institution_id == fund_inst))
        )
        pid = db.session.scalar(
            select(Project.id).where(Project.id.not_in(linked)).order_by(Project.id.desc())
        )
        assert pid is not None and fund_inst is not None
        _user("project").project_id = pid
        db.session.commit()
        return pid, fund_inst


def _form(body: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ([str(x) for x in v] if isinstance(v, list) else "" if v is None else str(v))
        for k, v in body.items()
    }


# --- 1. authorise the parsed value ---------------------------------------------------------------------


@pytest.fixture()
def ids(app: Flask) -> dict[str, Any]:
    with app.app_context():
        s = db.session
        org = {c.id for c in _user("organiser").contests}
        other = s.scalar(select(Contest.id).where(Contest.id.not_in(org)).order_by(Contest.id))
        p_org = s.scalar(select(Project).where(Project.contest_id.in_(org)).order_by(Project.id))
        assert p_org is not None and other is not None
        proj = s.get(Project, _user("project").project_id)
        assert proj is not None
        elsewhere = s.scalar(select(Contest.id).where(Contest.id != proj.contest_id).order_by(Contest.id))
        fund_inst = _user("fund").institution_id
        other_inst = s.scalar(
            select(Institution.id).where(Institution.id != fund_inst).order_by(Institution.id)
        )
        need = Need(
            institution_id=fund_inst, title="本机构的需求", description="寻找智能装备方向的早期项目。"
        )
        s.add(need)
        s.commit()
        return {
            "org": org,
            "other_contest": other,
            "p_org": p_org.id,
            "body": {k: v for k, v in project_json(p_org).items() if k in PROJECT_FIELDS},
            "p_own": proj.id,
            "own_contest": proj.contest_id,
            "own_award": proj.award,
            "elsewhere": elsewhere,
            "fund_inst": fund_inst,
            "other_inst": other_inst,
            "need": need.id,
        }


def _contest_of(app: Flask, pid: int) -> int:
    with app.app_context():
        p = db.session.get(Project, pid)
        assert p is not None
        return p.contest_id


def test_organiser_cannot_create_in_or_move_to_another_contest_with_a_float_id(app, ids) -> None:
    """A JSON whole number (12.0) is the id 12, parsed once, so the access rule judges the value stored:
    refused (403) like the integer. A string "12.0" is no id at all (422)."""
    org = _login(app, "organiser")
    other = ids["other_contest"]
    with app.app_context():
        before = db.session.query(Project).filter(Project.contest_id == other).count()
    for value in (float(other), other):
        r = org.post("/api/projects", json={**ids["body"], "name": "越权新增", "contest_id": value})
        assert r.status_code == 403
        assert org.patch(f"/api/projects/{ids['p_org']}", json={"contest_id": value}).status_code == 403
    r = org.post("/api/projects", json={**ids["body"], "name": "越权新增", "contest_id": f"{other}.0"})
    assert r.status_code == 422 and "整数" in r.get_json()["error"]["fields"]["contest_id"]
    assert org.patch(f"/api/projects/{ids['p_org']}", json={"contest_id": f"{other}.0"}).status_code == 422
    for value in (float(other), f"{other}.0"):  # a form field is text: "12.0" is not an id
        r = org.post("/projects/new", data=_form({**ids["body"], "name": "越权新增", "contest_id": value}))
        assert r.status_code == 422 and "整数" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Project).filter(Project.contest_id == other).count() == before
    assert _contest_of(app, ids["p_org"]) in ids["org"]


def test_project_member_keeps_its_contest_and_award(app, ids) -> None:
    me = _login(app, "project")
    url = f"/api/projects/{ids['p_own']}"
    assert me.patch(url, json={"contest_id": f"{ids['elsewhere']}.0"}).status_code == 422
    assert me.patch(url, json={"contest_id": float(ids["elsewhere"])}).status_code == 403  # parsed once: 12
    assert me.patch(url, json={"contest_id": ids["elsewhere"]}).status_code == 403
    assert ids["own_award"].value != "无"  # the demo account's project has an award to lose
    r = me.patch(url, json={"award": None})
    assert r.status_code == 403
    # a PUT replaces the record: the contest is required of every caller (nothing changes without it)
    body = {k: v for k, v in ids["body"].items() if k not in ("contest_id", "award")}
    r = me.put(url, json={**body, "name": "项目成员自己改名"})
    assert r.status_code == 422 and "contest_id" in r.get_json()["error"]["fields"]
    # with its own contest and no award it keeps both
    r = me.put(url, json={**body, "contest_id": ids["own_contest"], "name": "项目成员自己改名"})
    assert r.status_code == 200, r.get_json()
    with app.app_context():
        p = db.session.get(Project, ids["p_own"])
        assert p is not None
        assert (p.contest_id, p.award, p.name) == (ids["own_contest"], ids["own_award"], "项目成员自己改名")


def test_institution_member_cannot_post_or_move_needs_elsewhere(app, ids) -> None:
    fund = _login(app, "fund")
    body = {"title": "越权发布的需求", "description": "寻找智能装备方向的早期项目。"}
    other = ids["other_inst"]
    for value in (f"{other}.0", True):
        assert fund.post("/api/needs", json={**body, "institution_id": value}).status_code == 422
        assert fund.patch(f"/api/needs/{ids['need']}", json={"institution_id": value}).status_code == 422
    for value in (float(other), f"{other}.0", True):
        r = fund.post("/needs/new", data=_form({**body, "institution_id": value}))
        assert r.status_code == 422 and "发布机构" in r.get_data(as_text=True)
    for value in (float(other), other):  # a whole number is that id: the access rule refuses it
        assert fund.post("/api/needs", json={**body, "institution_id": value}).status_code == 403
        assert fund.patch(f"/api/needs/{ids['need']}", json={"institution_id": value}).status_code == 403
    with app.app_context():
        assert db.session.query(Need).filter(Need.title == "越权发布的需求").count() == 0
        need = db.session.get(Need, ids["need"])
        assert need is not None and need.institution_id == ids["fund_inst"]
    # the API asks every caller for the institution (left out: 422, nothing stored); its own is accepted
    r = fund.post("/api/needs", json=body)
    assert r.status_code == 422 and "institution_id" in r.get_json()["error"]["fields"]
    r = fund.post("/api/needs", json={**body, "institution_id": ids["fund_inst"]})
    assert r.status_code == 201 and r.get_json()["institution_id"] == ids["fund_inst"]


@pytest.mark.parametrize("char", ["\u0001", "\u0000", "\u007f", "\u0085", "\u009b"])
def test_control_characters_are_refused_in_every_text_field(app, ids, char) -> None:
    admin = _login(app, "admin")
    r = admin.post("/api/projects", json={**ids["body"], "name": f"控制{char}字符项目"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["name"] == "名称：不能包含控制字符"
    r = admin.patch(f"/api/projects/{ids['p_org']}", json={"description": f"一段很长的项目介绍{char}内容"})
    assert r.status_code == 422 and "控制字符" in r.get_json()["error"]["fields"]["description"]
    r = admin.patch(f"/api/institutions/{ids['fund_inst']}", json={"contact_name": f"张{char}三"})
    assert r.status_code == 422 and "控制字符" in r.get_json()["error"]["fields"]["contact_name"]
    r = admin.post("/projects/new", data=_form({**ids["body"], "name": f"表单{char}项目"}))
    assert r.status_code == 422 and "不能包含控制字符" in r.get_data(as_text=True)
    fund = _login(app, "fund")
    r = fund.post(
        "/api/needs", json={"title": f"需求{char}标题", "description": "寻找智能装备方向的早期项目。"}
    )
    assert r.status_code == 422 and "控制字符" in r.get_json()["error"]["fields"]["title"]
    r = fund.post(
        "/api/connections",
        json={"project_id": ids["p_org"], "institution_id": ids["fund_inst"], "note": f"备注{char}内容"},
    )
    assert r.status_code == 422 and "控制字符" in r.get_json()["error"]["fields"]["note"]
    with app.app_context():
        assert not [p for p in db.session.scalars(select(Project)) if char in p.name + p.description]
        pair = select(Connection).where(
            Connection.project_id == ids["p_org"], Connection.institution_id == ids["fund_inst"]
        )
        assert db.session.scalar(pair) is None


def test_line_breaks_stay_allowed_in_long_texts_only(app, ids) -> None:
    admin = _login(app, "admin")
    r = admin.patch(
        f"/api/projects/{ids['p_org']}", json={"description": "第一段介绍内容。\r\n\t第二段介绍内容。"}
    )
    assert r.status_code == 200
    r = admin.patch(f"/api/projects/{ids['p_org']}", json={"name": "两行\n名称"})
    assert r.status_code == 422 and "控制字符" in r.get_json()["error"]["fields"]["name"]


def test_pipeline_notes_refuse_control_characters(app) -> None:
    with app.app_context():
        c = db.session.scalar(
            select(Connection)
            .where(
                Connection.institution_id == _user("fund").institution_id,
                Connection.stage == ConnectionStage.MET,
            )
            .order_by(Connection.id)
        )
        assert c is not None
        cid = c.id
    fund = _login(app, "fund")
    r = fund.post(f"/api/connections/{cid}/move", json={"to_stage": "终止", "note": "原因\u0001"})
    assert r.status_code == 422 and "控制字符" in r.get_json()["error"]["fields"]["note"]
    r = fund.post(f"/connections/{cid}/note", data={"note": "电话\u0002沟通"})
    assert r.status_code == 422 and "控制字符" in r.get_data(as_text=True)
    with app.app_context():
        c = db.session.get(Connection, cid)
        assert c is not None and c.stage is ConnectionStage.MET
        assert not any("\u0001" in (e.note or "") or "\u0002" in (e.note or "") for e in c.events)


# --- 2. rankings shown outside the pipeline do not depend on it ---------------------------------------


def _pairs(app: Flask, stage: ConnectionStage, n: int = 4) -> list[tuple[int, int, str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(Connection).where(Connection.stage == stage).order_by(Connection.id))
        return [
            (c.project_id, c.institution_id, c.institution.name, c.institution.kind.side, c.project.name)
            for c in list(rows)[:n]
        ]


@pytest.mark.parametrize("stage", [ConnectionStage.SIGNED, ConnectionStage.REFUSED])
def test_public_match_lists_do_not_reveal_signed_or_refused_pairs(app, stage) -> None:
    pairs = _pairs(app, stage)
    assert pairs, f"the demo has {stage.value} connections"
    for who in ("anon", "organiser"):
        c = _login(app, who)
        for pid, iid, inst_name, side, proj_name in pairs:
            r = c.get(f"/api/projects/{pid}/matches", query_string={"kind": side, "q": inst_name, "k": 5})
            assert r.status_code == 200
            assert iid in [i["id"] for i in r.get_json()["items"]], (who, stage.value, pid, iid)
            r = c.get(f"/api/institutions/{iid}/matches", query_string={"q": proj_name, "k": 5})
            assert pid in [i["id"] for i in r.get_json()["items"]], (who, stage.value, pid, iid)
            page = c.get(f"/projects/{pid}", query_string={"q": inst_name})
            assert page.status_code == 200 and inst_name in page.get_data(as_text=True)
    # the secretariat's view still leaves out what is already decided
    admin = _login(app, "admin")
    pid, iid, inst_name, side, _ = pairs[0]
    r = admin.get(f"/api/projects/{pid}/matches", query_string={"kind": side, "q": inst_name, "k": 5})
    assert iid not in [i["id"] for i in r.get_json()["items"]]


def _ranked(c: FlaskClient, url: str) -> list[tuple[int, float]]:
    r = c.get(url)
    assert r.status_code == 200
    return [(i["id"], i["score"]) for i in r.get_json()["items"]]


def test_public_rankings_do_not_move_when_the_pipeline_does(app) -> None:
    with app.app_context():
        dd = db.session.scalar(
            select(Connection)
            .where(Connection.stage == ConnectionStage.DUE_DILIGENCE)
            .order_by(Connection.id)
        )
        assert dd is not None, "the demo has a connection in due diligence"
        cid, pid, fund_inst = dd.id, dd.project_id, dd.institution_id
        other = db.session.scalar(select(Project.id).where(Project.id != pid).order_by(Project.id))
    urls = [
        f"/api/institutions/{fund_inst}/matches?k=30",
        f"/api/projects/{other}/matches?kind=fund&k=30",
        f"/api/projects/{pid}/matches?kind=fund&k=30",
    ]
    viewers = {"anon": _login(app, "anon"), "base": _login(app, "base")}
    before = {(who, u): _ranked(c, u) for who, c in viewers.items() for u in urls}
    day = (china_date(datetime.now(UTC)) - timedelta(days=1)).isoformat()
    r = _login(app, "admin").post(
        f"/api/connections/{cid}/move",
        json={"to_stage": "已签约", "outcome": {"amount_wan": 800, "round": "A轮", "date": day}},
    )
    assert r.status_code == 200, r.get_json()
    after = {(who, u): _ranked(c, u) for who, c in viewers.items() for u in urls}
    assert after == before


# --- 3. low findings --------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["ident=54", "endpoint=x", "_external=1", "view=list&ident=1&_anchor=x"])
def test_connections_redirect_is_built_from_known_parameters(app, query) -> None:
    fund = _login(app, "fund")
    r = fund.get(f"/connections/?{query}")
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith("/connections/institution/"), location  # relative: never from the Host header
    with app.app_context():
        assert location.split("?")[0] == f"/connections/institution/{_user('fund').institution_id}"
    assert ("view=list" in location) == ("view=list" in query)


def test_connections_search_is_literal(app) -> None:
    admin = _login(app, "admin")
    for q in ("%", "_"):
        page = admin.get("/connections/", query_string={"q": q})
        assert page.status_code == 200
        assert "没有符合条件的对接" in page.get_data(as_text=True), q


def test_contacts_open_only_with_the_projects_consent(app) -> None:
    with app.app_context():
        fund_inst = _user("fund").institution_id
        linked = set(
            db.session.scalars(select(Connection.project_id).where(Connection.institution_id == fund_inst))
        )
        pid = db.session.scalar(select(Project.id).where(Project.id.not_in(linked)).order_by(Project.id))
        assert pid is not None
    admin, fund = _login(app, "admin"), _login(app, "fund")
    r = admin.post("/api/connections", json={"project_id": pid, "institution_id": fund_inst})
    assert r.status_code == 201 and r.get_json()["initiated_by"] == "大赛秘书处"
    cid = r.get_json()["id"]
    r = fund.post(f"/api/connections/{cid}/move", json={"to_stage": "已接受"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden_move"
    assert "contact_phone" not in fund.get(f"/api/projects/{pid}").get_json()
    # the secretariat accepting for the project is no consent either
    assert admin.post(f"/api/connections/{cid}/move", json={"to_stage": "已接受"}).status_code == 200
    assert "contact_phone" not in fund.get(f"/api/projects/{pid}").get_json()


def test_contacts_open_when_the_project_accepts(app) -> None:
    pid, fund_inst = _free_project_for_fund(app)
    admin, fund, proj = _login(app, "admin"), _login(app, "fund"), _login(app, "project")
    cid = admin.post("/api/connections", json={"project_id": pid, "institution_id": fund_inst}).get_json()[
        "id"
    ]
    assert "contact_phone" not in fund.get(f"/api/projects/{pid}").get_json()
    assert proj.post(f"/api/connections/{cid}/move", json={"to_stage": "已接受"}).status_code == 200
    assert "contact_phone" in fund.get(f"/api/projects/{pid}").get_json()


@pytest.mark.parametrize("closed", [False, True])
def test_a_private_shortlist_neither_blocks_nor_shows_in_a_projects_request(app, closed) -> None:
    pid, fund_inst = _free_project_for_fund(app)
    fund, proj = _login(app, "fund"), _login(app, "project")
    r = fund.post(
        "/api/connections",
        json={"project_id": pid, "institution_id": fund_inst, "action": "shortlist", "note": "内部备注甲"},
    )
    assert r.status_code == 201
    cid = r.get_json()["id"]
    if closed:
        r = fund.post(f"/api/connections/{cid}/move", json={"to_stage": "终止", "note": "内部评估后暂不跟进"})
        assert r.status_code == 200
    r = proj.post(
        "/api/connections", json={"project_id": pid, "institution_id": fund_inst, "note": "希望对接"}
    )
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    text = r.get_data(as_text=True)
    assert body["stage"] == "已申请对接" and body["initiated_by"] == "项目"
    # (终止 is among the next stages anyone may see; the closed shortlist must not show otherwise)
    for secret in ("推荐", "内部备注甲", "内部评估", "shortlisted"):
        assert secret not in text, secret
    assert [e["to_stage"] for e in body["history"]] == ["已申请对接"]
    assert body["history"][0]["from_stage"] is None
    assert body["created_at"] == body["requested_at"]
    # the institution still has the whole history
    full = fund.get(f"/api/connections/{cid}").get_json()
    assert [e["to_stage"] for e in full["history"]][-1] == "已申请对接"
    assert ("终止" in [e["to_stage"] for e in full["history"]]) == closed
    # the project's view of the connection tells the same story
    page = proj.get(f"/connections/{cid}")
    assert page.status_code == 200 and "已申请对接" in page.get_data(as_text=True)
    assert "内部评估" not in page.get_data(as_text=True) and "内部备注甲" not in page.get_data(as_text=True)
    seen = proj.get(f"/api/connections/{cid}").get_json()
    assert [e["to_stage"] for e in seen["history"]] == ["已申请对接"] and "内部评估" not in str(seen)


def test_private_notes_are_no_activity_the_project_can_see(app) -> None:
    pid, fund_inst = _free_project_for_fund(app)
    fund, proj = _login(app, "fund"), _login(app, "project")
    r = proj.post("/api/connections", json={"project_id": pid, "institution_id": fund_inst})
    assert r.status_code == 201
    cid, seen = r.get_json()["id"], r.get_json()["last_activity_at"]
    later = datetime.now(UTC) + timedelta(days=2)
    with app.app_context():
        from app.pipeline.rules import actor
        from app.pipeline.states import add_note

        c = db.session.get(Connection, cid)
        assert c is not None
        add_note(c, actor(_user("fund")), "内部评估：团队待补强", private=True)
        c.events[-1].at = c.last_activity_at = later  # two days on, so the day shown would change
        db.session.commit()
    assert fund.get(f"/api/connections/{cid}").get_json()["last_activity_at"] == later.isoformat()
    assert proj.get(f"/api/connections/{cid}").get_json()["last_activity_at"] == seen
    day = china_date(later).isoformat()
    assert day in fund.get(f"/connections/{cid}").get_data(as_text=True)
    for url in (f"/connections/{cid}", f"/connections/project/{pid}"):
        page = proj.get(url)
        assert page.status_code == 200 and day not in page.get_data(as_text=True), url
