"""The JSON API: paged lists, CRUD that keeps the index in step, ranked matches, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from models import EmbeddingRecord, Institution, Need, Project

NEW_PROJECT = {
    "name": "秸秆生物基可降解餐盒",
    "group": "企业组",
    "contest_id": 11,
    "award": "500强",
    "industry": "新材料",
    "province": "浙江省",
    "city": "湖州市",
    "stage": "成长期",
    "amount_wan": 1500,
    "funding_round": "A轮",
    "description": "以农作物秸秆为原料，通过改性与模压工艺制成可完全降解的餐盒与托盘，已进入连锁餐饮供应链。",
    "needs": ["融资", "检验检测"],
}


@pytest.fixture(autouse=True)
def _logged_in(auth):
    """These tests act as the secretariat, who may do everything; access rules have their own tests."""
    auth.login("admin")


def counts(app: Any) -> tuple[int, int, int, int]:
    from app.extensions import db

    with app.app_context():
        s = db.session
        return (
            s.scalar(select(func.count(Project.id))),
            s.scalar(select(func.count(Institution.id))),
            s.scalar(select(func.count(Need.id))),
            s.scalar(select(func.count(EmbeddingRecord.id))),
        )


def test_project_list_is_paged_and_filtered(client):
    r = client.get("/api/projects?per_page=7&page=2")
    assert r.status_code == 200
    body = r.get_json()
    assert body["page"] == 2 and body["per_page"] == 7 and len(body["items"]) == 7
    assert body["total"] >= 300 and body["pages"] == -(-body["total"] // 7)

    makers = client.get("/api/projects?group=创客组&per_page=100").get_json()
    assert makers["total"] > 0 and all(p["group"] == "创客组" for p in makers["items"])
    regional = client.get("/api/projects?contest_kind=专题赛&per_page=100").get_json()
    assert regional["total"] > 0 and all(p["contest_kind"] == "专题赛" for p in regional["items"])


def test_institution_list_filters_by_kind_and_industry(client):
    banks = client.get("/api/institutions?kind=银行&per_page=100").get_json()
    assert banks["total"] >= 1 and all(i["kind"] == "银行" for i in banks["items"])
    funds = client.get("/api/institutions?side=fund&industry=新材料&per_page=100").get_json()
    assert funds["total"] >= 1
    assert all(i["side"] == "fund" and "新材料" in i["industries"] for i in funds["items"])


@pytest.mark.parametrize(
    "side,kinds",
    [
        ("fund", {"政府投资基金", "创业投资机构", "银行"}),
        ("base", {"小微企业创业创新基地", "产业示范基地/园区", "中外中小企业合作区"}),
        ("platform", {"中小企业公共服务平台"}),
    ],
)
def test_project_matches_have_scores_and_reasons(client, side, kinds):
    r = client.get(f"/api/projects/1/matches?kind={side}&k=10")
    assert r.status_code == 200
    items = r.get_json()["items"]
    assert len(items) == 10
    assert {i["kind"] for i in items} <= kinds
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    for item in items:
        assert set(item) >= {"id", "name", "score", "reasons"}
        assert item["reasons"] and all(isinstance(x["text"], str) and x["text"] for x in item["reasons"])


def test_institution_matches_respect_filters(client):
    inst = client.get("/api/institutions?side=fund&per_page=1").get_json()["items"][0]
    r = client.get(f"/api/institutions/{inst['id']}/matches?k=15&group=创客组")
    assert r.status_code == 200
    ids = [i["id"] for i in r.get_json()["items"]]
    assert ids
    for pid in ids:
        assert client.get(f"/api/projects/{pid}").get_json()["group"] == "创客组"


def test_created_project_is_ranked_and_deleted_project_is_gone(client):
    r = client.post("/api/projects", json=NEW_PROJECT)
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["id"]
    # a fund focused on new materials should now be able to see the project among its candidates
    funds = client.get("/api/institutions?side=fund&industry=新材料&per_page=100").get_json()["items"]
    seen = False
    for f in funds:
        items = client.get(f"/api/institutions/{f['id']}/matches?k=100&industry=新材料").get_json()["items"]
        if any(i["id"] == pid for i in items):
            seen = True
            break
    assert seen, "a new project must be indexed without a rebuild"
    assert client.get(f"/api/projects/{pid}/matches?kind=fund&k=5").status_code == 200

    assert client.delete(f"/api/projects/{pid}").status_code == 204
    assert client.get(f"/api/projects/{pid}").status_code == 404
    for f in funds[:3]:
        items = client.get(f"/api/institutions/{f['id']}/matches?k=100").get_json()["items"]
        assert all(i["id"] != pid for i in items)


def test_patch_updates_only_given_fields(client):
    before = client.get("/api/projects/2").get_json()
    r = client.patch("/api/projects/2", json={"stage": "扩张期", "amount_wan": 3200})
    assert r.status_code == 200, r.get_json()
    after = r.get_json()
    assert after["stage"] == "扩张期" and after["amount_wan"] == 3200
    assert after["name"] == before["name"] and after["description"] == before["description"]


def test_unchanged_text_is_not_reencoded(app, client):
    from app.extensions import db

    with app.app_context():
        before = db.session.scalar(
            select(EmbeddingRecord.updated_at).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id == 3
            )
        )
    assert client.patch("/api/projects/3", json={"amount_wan": 999}).status_code == 200  # not in the text
    with app.app_context():
        after = db.session.scalar(
            select(EmbeddingRecord.updated_at).where(
                EmbeddingRecord.owner_kind == "project", EmbeddingRecord.owner_id == 3
            )
        )
    assert before == after


def test_institution_and_need_crud(client):
    inst = client.post(
        "/api/institutions",
        json={
            "name": "测试产业园",
            "kind": "产业示范基地/园区",
            "province": "江苏省",
            "industries": ["智能装备"],
            "space_m2": 12000,
            "capacity": 40,
            "description": "面向智能装备企业的标准厂房与中试平台，提供租金减免。",
        },
    )
    assert inst.status_code == 201, inst.get_json()
    iid = inst.get_json()["id"]
    need = client.post(
        "/api/needs",
        json={
            "institution_id": iid,
            "title": "招引智能装备企业入驻",
            "description": "诚邀工业机器人、数控装备企业入驻园区，提供三年租金优惠。",
            "industries": ["智能装备"],
            "quota": 5,
            "deadline": "2027-03-31",
        },
    )
    assert need.status_code == 201, need.get_json()
    nid = need.get_json()["id"]
    m = client.get(f"/api/needs/{nid}/matches?k=5")
    assert m.status_code == 200 and len(m.get_json()["items"]) == 5
    assert client.delete(f"/api/institutions/{iid}").status_code == 204
    assert client.get(f"/api/needs/{nid}").status_code == 404


@pytest.mark.parametrize(
    "method,url,kwargs,status,field",
    [
        ("post", "/api/projects", {"data": "{not json", "content_type": "application/json"}, 422, "_body"),
        ("post", "/api/projects", {"data": "name=x", "content_type": "text/plain"}, 415, None),
        ("post", "/api/projects", {"json": [1, 2]}, 422, "_body"),
        ("post", "/api/projects", {"json": {**NEW_PROJECT, "amount_wan": -5}}, 422, "amount_wan"),
        ("post", "/api/projects", {"json": {**NEW_PROJECT, "amount_wan": "lots"}}, 422, "amount_wan"),
        ("post", "/api/projects", {"json": {**NEW_PROJECT, "colour": "red"}}, 422, "colour"),
        ("post", "/api/projects", {"json": {**NEW_PROJECT, "group": "大企业组"}}, 422, "group"),
        # A well-formed id naming no record: 404 (as for a path), naming the field.
        ("post", "/api/projects", {"json": {**NEW_PROJECT, "contest_id": 99999}}, 404, "contest_id"),
        (
            "post",
            "/api/projects",
            {"json": {k: v for k, v in NEW_PROJECT.items() if k != "contest_id"}},
            422,
            "contest_id",
        ),
        ("post", "/api/projects", {"json": {**NEW_PROJECT, "needs": ["融资", "买房"]}}, 422, "needs"),
        (
            "post",
            "/api/institutions",
            {"json": {"name": "某机构", "kind": "银行", "description": "短"}},
            422,
            "description",
        ),
        ("get", "/api/projects/1/matches?kind=fund&k=100000", {}, 422, "k"),
        ("get", "/api/projects/1/matches?kind=fund&k=abc", {}, 422, "k"),
        ("get", "/api/projects/1/matches?kind=moon", {}, 422, "kind"),
        ("get", "/api/projects?per_page=0", {}, 422, "per_page"),
        ("get", "/api/projects?award=特等奖", {}, 422, "award"),
        ("get", "/api/projects/999999", {}, 404, None),
        ("get", "/api/projects/999999/matches", {}, 404, None),
        ("get", "/api/nowhere", {}, 404, None),
        ("delete", "/api/projects", {}, 405, None),
    ],
)
def test_bad_input_gets_a_structured_4xx_and_changes_nothing(app, client, method, url, kwargs, status, field):
    before = counts(app)
    r = getattr(client, method)(url, **kwargs)
    assert r.status_code == status
    assert r.is_json
    err = r.get_json()["error"]
    assert err["status"] == status and err["message"]
    if field:
        assert field in err["fields"], err
        assert any("\u4e00" <= ch <= "\u9fff" for ch in err["fields"][field]), "messages are in Chinese"
    assert counts(app) == before


def test_the_api_takes_a_ticket_range_in_either_order(client):
    """The two bounds are stored smaller first (no schema can state their order; the form refuses it)."""
    body = {"name": "某银行", "kind": "银行", "description": "科技支行，服务科技型中小企业贷款。"}
    r = client.post("/api/institutions", json={**body, "ticket_min_wan": 900, "ticket_max_wan": 100})
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["ticket_min_wan"], r.get_json()["ticket_max_wan"]) == (100, 900)
    r = client.patch(f"/api/institutions/{r.get_json()['id']}", json={"ticket_min_wan": 2000})
    assert r.status_code == 200 and (r.get_json()["ticket_min_wan"], r.get_json()["ticket_max_wan"]) == (
        900,
        2000,
    )


def test_failed_update_keeps_the_stored_record(client):
    before = client.get("/api/projects/4").get_json()
    r = client.put("/api/projects/4", json={**NEW_PROJECT, "description": "短"})
    assert r.status_code == 422
    assert client.get("/api/projects/4").get_json() == before


def test_contests_catalogue(client):
    body = client.get("/api/contests").get_json()
    assert body["total"] == 48
    kinds = [c["kind"] for c in body["items"]]
    assert kinds.count("总决赛") == 1 and kinds.count("区域赛") == 35 and kinds.count("专题赛") == 5
    assert kinds.count("赛道赛") == 6 and kinds.count("境外区域赛") == 1
