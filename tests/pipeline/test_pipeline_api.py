"""The pipeline's JSON API: a connection's life, validation errors, refusals, access and the audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from models.accounts import AuditLog
from models.pipeline import ConnectionEvent


def _post(client: Any, url: str, body: Any) -> Any:
    return client.post(url, json=body)


def test_fund_and_project_take_a_connection_to_signing(app, world, as_user) -> None:
    fund, proj, sec = as_user("fund"), as_user("proj"), as_user("sec")
    r = _post(
        fund,
        "/api/connections",
        {
            "project_id": world.project_id,
            "institution_id": world.fund_id,
            "action": "shortlist",
            "note": "值得关注",
        },
    )
    assert r.status_code == 201, r.json
    cid = r.json["id"]
    assert r.json["stage"] == "推荐" and r.json["shortlisted"] is True and r.json["note"] == "值得关注"
    # the project does not see an institution's shortlist
    assert proj.get(f"/api/connections/{cid}").status_code == 404
    r = _post(
        fund,
        "/api/connections",
        {"project_id": world.project_id, "institution_id": world.fund_id, "action": "request"},
    )
    assert r.status_code == 200 and r.json["stage"] == "已申请对接" and r.json["initiated_by"] == "机构"
    # now the project sees it, without the fund's private notes and shortlist events
    r = proj.get(f"/api/connections/{cid}")
    assert r.status_code == 200
    assert "note" not in r.json and "shortlisted" not in r.json
    assert all(not e["private"] for e in r.json["history"])
    # the fund cannot answer its own request
    r = _post(fund, f"/api/connections/{cid}/move", {"to_stage": "已接受"})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden_move"
    assert (
        _post(proj, f"/api/connections/{cid}/move", {"to_stage": "已接受", "note": "欢迎来访"}).status_code
        == 200
    )
    assert _post(fund, f"/api/connections/{cid}/move", {"to_stage": "已会谈"}).status_code == 200
    # a fund signs only after due diligence
    r = _post(
        fund,
        f"/api/connections/{cid}/move",
        {"to_stage": "已签约", "outcome": {"amount_wan": 500, "round": "A轮", "date": "2026-11-01"}},
    )
    assert r.status_code == 409
    assert r.json["error"]["code"] == "illegal_transition"
    assert r.json["error"]["from_stage"] == "已会谈" and r.json["error"]["to_stage"] == "已签约"
    assert "须先完成尽职调查" in r.json["error"]["message"]
    assert _post(fund, f"/api/connections/{cid}/move", {"to_stage": "尽职调查"}).status_code == 200
    r = _post(
        sec,
        f"/api/connections/{cid}/move",
        {
            "to_stage": "已签约",
            "note": "签署投资协议",
            "outcome": {"amount_wan": 500, "round": "A轮", "date": "2026-11-01"},
        },
    )
    assert r.status_code == 200, r.json
    assert (
        r.json["stage"] == "已签约"
        and r.json["outcome"]["amount_wan"] == 500
        and r.json["next_stages"] == ["终止"]
    )
    history = sec.get(f"/api/connections/{cid}/history").json["items"]
    assert [e["to_stage"] for e in history if e["action"] != "加入候选"] == [
        "推荐",
        "已申请对接",
        "已接受",
        "已会谈",
        "尽职调查",
        "已签约",
    ]
    with app.app_context():
        actions = db.session.scalars(
            select(AuditLog.action)
            .where(AuditLog.obj_kind == "connection", AuditLog.obj_id == cid)
            .order_by(AuditLog.id)
        ).all()
    assert actions == [
        "connection.shortlist",
        "connection.request",
        "connection.move",
        "connection.move",
        "connection.move",
        "connection.move",
    ]


def test_validation_errors_are_json_and_name_the_field(app, world, as_user) -> None:
    fund = as_user("fund")
    r = _post(fund, "/api/connections", {"project_id": "x", "institution_id": world.fund_id, "colour": "red"})
    assert r.status_code == 422
    fields = r.json["error"]["fields"]
    assert "应为整数" in fields["project_id"] and "不认识的字段" in fields["colour"]
    r = _post(fund, "/api/connections", {"project_id": 99_999_999, "institution_id": world.fund_id})
    assert r.status_code == 404 and r.json["error"]["fields"] == {"project_id": "项目：不存在"}
    r = fund.post("/api/connections", data="not json", content_type="application/json")
    assert r.status_code == 422 and r.json["error"]["code"] == "validation_error"
    cid = _post(
        fund, "/api/connections", {"project_id": world.project_id, "institution_id": world.fund_id}
    ).json["id"]
    r = _post(fund, f"/api/connections/{cid}/move", {"to_stage": "签了"})
    assert r.status_code == 422 and "目标阶段：应为以下之一" in r.json["error"]["message"]
    r = _post(fund, f"/api/connections/{cid}/move", {"to_stage": "终止"})
    assert (
        r.status_code == 422
        and r.json["error"]["code"] == "reason_required"
        and "note" in r.json["error"]["fields"]
    )
    r = _post(fund, f"/api/connections/{cid}/move", {"to_stage": "已接受", "outcome": "lots"})
    assert r.status_code == 422 and "outcome" in r.json["error"]["fields"]
    # a second request for the same pair is a conflict, not a duplicate
    r = _post(
        as_user("proj"), "/api/connections", {"project_id": world.project_id, "institution_id": world.fund_id}
    )
    assert r.status_code == 409 and r.json["error"]["code"] == "exists"
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count(ConnectionEvent.id)).where(ConnectionEvent.connection_id == cid)
            )
            == 1
        )


def test_signing_outcome_errors_name_each_field(world, as_user) -> None:
    base = as_user("base")
    cid = _post(
        as_user("proj"), "/api/connections", {"project_id": world.project_id, "institution_id": world.base_id}
    ).json["id"]
    assert _post(base, f"/api/connections/{cid}/move", {"to_stage": "已接受"}).status_code == 200
    assert _post(base, f"/api/connections/{cid}/move", {"to_stage": "已会谈"}).status_code == 200
    r = _post(base, f"/api/connections/{cid}/move", {"to_stage": "已签约"})
    assert (
        r.status_code == 422
        and r.json["error"]["code"] == "outcome_required"
        and "落地" in r.json["error"]["message"]
    )
    r = _post(
        base,
        f"/api/connections/{cid}/move",
        {"to_stage": "已签约", "outcome": {"amount_wan": 100, "area_m2": -1}},
    )
    fields = r.json["error"]["fields"]
    assert r.status_code == 422
    assert {"outcome", "outcome.area_m2"} <= set(fields) and "落地" in fields["outcome"]
    # A complete outcome of another kind than the institution's (a base records 落地): its state decides.
    r = _post(
        base,
        f"/api/connections/{cid}/move",
        {"to_stage": "已签约", "outcome": {"amount_wan": 100, "round": "A轮", "date": "2026-11-20"}},
    )
    assert r.status_code == 409 and "outcome.amount_wan" in r.json["error"]["fields"]
    r = _post(
        base,
        f"/api/connections/{cid}/move",
        {"to_stage": "已签约", "outcome": {"base": "一号厂房", "area_m2": 300, "date": "2026-11-20"}},
    )
    assert r.status_code == 200 and r.json["outcome"] == {
        "kind": "落地",
        "amount_wan": None,
        "round": None,
        "base": "一号厂房",
        "area_m2": 300.0,
        "service_kind": None,
        "date": "2026-11-20",
    }


def test_nobody_reaches_a_pipeline_that_is_not_theirs(app, world, as_user) -> None:
    cid = _post(
        as_user("fund"),
        "/api/connections",
        {"project_id": world.project_id, "institution_id": world.fund_id, "action": "shortlist"},
    ).json["id"]
    for who in ("other-fund", "base", "proj-other", "org"):
        client = as_user(who)
        assert client.get(f"/api/connections/{cid}").status_code == 404, who
        assert _post(client, f"/api/connections/{cid}/move", {"to_stage": "已申请对接"}).status_code in (
            403,
            404,
        ), who
    # listing never widens: another fund's filter on our institution gives its own (empty) view
    r = as_user("other-fund").get(f"/api/connections?institution_id={world.fund_id}")
    assert r.status_code == 200 and r.json["total"] == 0
    # a fund cannot open connections for another institution, a project only requests for itself
    r = _post(
        as_user("other-fund"),
        "/api/connections",
        {"project_id": world.project_id, "institution_id": world.fund_id},
    )
    assert r.status_code == 403
    r = _post(
        as_user("proj-other"),
        "/api/connections",
        {"project_id": world.project_id, "institution_id": world.fund_id},
    )
    assert r.status_code == 403
    assert app.test_client().get("/api/connections").status_code == 401
    assert as_user("org").get("/api/connections").status_code == 403


def test_dashboard_api_is_for_the_secretariat_and_organisers_of_their_contests(world, as_user) -> None:
    everything = as_user("sec").get("/api/dashboard?quarter=2026Q3")
    assert everything.status_code == 200 and everything.json["scope"] is None
    mine = as_user("org").get("/api/dashboard?quarter=2026Q3")
    assert mine.status_code == 200 and mine.json["scope"] == [world.contest_id]
    assert mine.json["totals"]["opened"] <= everything.json["totals"]["opened"]
    for who in ("fund", "proj"):
        assert as_user(who).get("/api/dashboard").status_code == 403
        assert as_user(who).get("/api/reports/quarterly.xlsx").status_code == 403
    r = as_user("sec").get("/api/dashboard?quarter=2026Q5")
    assert r.status_code == 422 and "quarter" in r.json["error"]["fields"]
    # Every well-formed period parameter set names a period (the document says how): the dates in
    # either order, quarter before from/to, a lone date completed to its quarter.
    ordered = as_user("sec").get("/api/dashboard?from=2026-07-01&to=2026-09-30").json
    for query in ("from=2026-09-30&to=2026-07-01", "quarter=2026Q3&from=2030-01-01", "from=2026-07-01"):
        r = as_user("sec").get(f"/api/dashboard?{query}")
        assert r.status_code == 200, query
        assert r.json["totals"] == ordered["totals"] == everything.json["totals"], query
    r = as_user("sec").get("/api/dashboard?from=2026-7-1")
    assert r.status_code == 422 and "from" in r.json["error"]["fields"]


def test_a_refused_project_is_not_recommended_to_that_fund_until_it_asks_again(app, world, as_user) -> None:
    """In the fund's own (private) view; rankings for others ignore refusals (test_trust_findings.py)."""
    from app import services

    fund, proj = as_user("fund"), as_user("proj")
    with app.app_context():
        ranked = services.matches_for_institution(db.session, world.fund_id, k=400, private=True)
        ranked = [r.row.id for r in ranked]
    assert world.project_id in ranked
    cid = _post(
        proj, "/api/connections", {"project_id": world.project_id, "institution_id": world.fund_id}
    ).json["id"]
    assert (
        _post(
            fund, f"/api/connections/{cid}/move", {"to_stage": "已拒绝", "note": "暂不符合投资方向"}
        ).status_code
        == 200
    )
    with app.app_context():
        assert world.project_id not in [
            r.row.id for r in services.matches_for_institution(db.session, world.fund_id, k=400, private=True)
        ]
        assert world.fund_id not in [
            r.row.id
            for r in services.matches_for_project(db.session, world.project_id, "fund", k=100, private=True)
        ]
    # only the project can ask again; then it is back on the fund's list
    assert _post(fund, f"/api/connections/{cid}/move", {"to_stage": "已申请对接"}).status_code == 403
    assert (
        _post(
            proj, f"/api/connections/{cid}/move", {"to_stage": "已申请对接", "note": "补充了订单数据"}
        ).status_code
        == 200
    )
    with app.app_context():
        assert world.project_id in [
            r.row.id for r in services.matches_for_institution(db.session, world.fund_id, k=400, private=True)
        ]


def test_signing_refreshes_the_institutions_evidence(app, world, as_user) -> None:
    from app.services import get_matching

    plat = as_user("platform")
    cid = _post(
        plat,
        "/api/connections",
        {"project_id": world.project_id, "institution_id": world.platform_id, "action": "request"},
    ).json["id"]
    proj = as_user("proj")
    assert _post(proj, f"/api/connections/{cid}/move", {"to_stage": "已接受"}).status_code == 200
    assert _post(plat, f"/api/connections/{cid}/move", {"to_stage": "已会谈"}).status_code == 200
    with app.app_context():
        before = {i.project_id for i in get_matching().institution(world.platform_id).portfolio}
    assert world.project_id not in before
    r = _post(
        plat,
        f"/api/connections/{cid}/move",
        {"to_stage": "已签约", "outcome": {"service_kind": "检验检测", "date": "2026-11-20"}},
    )
    assert r.status_code == 200, r.json
    with app.app_context():
        after = {i.project_id for i in get_matching().institution(world.platform_id).portfolio}
    assert world.project_id in after
    assert (
        _post(plat, f"/api/connections/{cid}/move", {"to_stage": "终止", "note": "协议解除"}).status_code
        == 200
    )
    with app.app_context():
        assert world.project_id not in {
            i.project_id for i in get_matching().institution(world.platform_id).portfolio
        }


def test_follow_up_filter_lists_idle_open_connections(world, as_user) -> None:
    r = as_user("sec").get("/api/connections?follow_up=1&per_page=100")
    assert r.status_code == 200 and r.json["total"] > 0
    assert all(
        item["follow_up"] and item["stage"] not in ("已签约", "已拒绝", "终止") for item in r.json["items"]
    )
    everything = as_user("sec").get("/api/connections?per_page=1").json["total"]
    assert r.json["total"] < everything
