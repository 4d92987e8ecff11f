"""The pipeline's pages: buttons on ranked lists, the board and list, moving with forms, the dashboard."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from app.extensions import db
from models import Connection


def _cid(app, world, inst_id) -> int:  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.scalar(
            select(Connection.id).where(
                Connection.project_id == world.project_id, Connection.institution_id == inst_id
            )
        )


def test_fund_shortlists_and_requests_from_its_ranked_list(app, world, as_user) -> None:
    fund = as_user("fund")
    page = fund.get(f"/institutions/{world.fund_id}").get_data(as_text=True)
    assert 'data-action="shortlist"' in page and 'data-action="request"' in page
    # nobody else gets the buttons on this institution's page
    assert 'data-action="shortlist"' not in as_user("other-fund").get(
        f"/institutions/{world.fund_id}"
    ).get_data(as_text=True)
    assert 'data-action="shortlist"' not in app.test_client().get(f"/institutions/{world.fund_id}").get_data(
        as_text=True
    )
    r = fund.post(
        "/connections/new",
        data={
            "project_id": world.project_id,
            "institution_id": world.fund_id,
            "action": "shortlist",
            "next": f"/institutions/{world.fund_id}",
        },
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/institutions/{world.fund_id}")
    board = fund.get(f"/connections/institution/{world.fund_id}").get_data(as_text=True)
    assert 'id="board"' in board and "★" in board
    cid = _cid(app, world, world.fund_id)
    r = fund.post(
        "/connections/new",
        data={"project_id": world.project_id, "institution_id": world.fund_id, "action": "request"},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/connections/{cid}")
    listing = fund.get(f"/connections/institution/{world.fund_id}?view=list").get_data(as_text=True)
    assert 'id="pipeline-list"' in listing and "已申请对接" in listing
    # an off-site `next` is ignored
    r = fund.post(
        "/connections/new",
        data={
            "project_id": world.other_project_id,
            "institution_id": world.fund_id,
            "action": "shortlist",
            "next": "//evil.example/",
        },
    )
    assert r.status_code == 302 and "evil.example" not in r.headers["Location"]


def test_project_requests_and_sees_only_its_requests(app, world, as_user) -> None:
    proj = as_user("proj")
    assert 'data-action="request"' not in app.test_client().get(f"/projects/{world.project_id}").get_data(
        as_text=True
    )
    before = proj.get(f"/connections/project/{world.project_id}").get_data(as_text=True).count(">详情</a>")
    other = as_user("other-fund")
    r = other.post(
        "/connections/new",
        data={"project_id": world.project_id, "institution_id": world.other_fund_id, "action": "shortlist"},
    )
    assert r.status_code == 302
    r = proj.post(
        "/connections/new",
        data={"project_id": world.project_id, "institution_id": world.base_id, "action": "request"},
    )
    assert r.status_code == 302
    page = proj.get(f"/connections/project/{world.project_id}").get_data(as_text=True)
    # the request shows; the other fund's shortlist does not
    assert page.count(">详情</a>") == before + 1 and "已申请对接" in page
    with app.app_context():
        from models import Institution

        assert db.session.get(Institution, world.other_fund_id).name not in page
    assert proj.get(f"/connections/institution/{world.base_id}").status_code == 403
    assert proj.get(f"/connections/project/{world.other_project_id}").status_code == 403
    assert proj.get("/connections/").status_code == 302  # to its own requests
    assert proj.get("/dashboard").status_code == 403


def test_moving_with_forms_shows_clear_errors_and_the_history(app, world, as_user) -> None:
    base, proj = as_user("base"), as_user("proj")
    proj.post(
        "/connections/new",
        data={"project_id": world.project_id, "institution_id": world.base_id, "action": "request"},
    )
    cid = _cid(app, world, world.base_id)
    r = proj.post(f"/connections/{cid}/move", data={"to_stage": "已接受"})
    assert r.status_code == 422 and "只能由机构接受或拒绝" in r.get_data(as_text=True)
    assert base.post(f"/connections/{cid}/move", data={"to_stage": "已接受"}).status_code == 302
    assert (
        base.post(
            f"/connections/{cid}/move", data={"to_stage": "已会谈", "note": "<script>alert(1)</script>"}
        ).status_code
        == 302
    )
    r = base.post(f"/connections/{cid}/move", data={"to_stage": "终止", "note": ""})
    assert r.status_code == 422 and "终止对接须填写原因" in r.get_data(as_text=True)
    r = base.post(
        f"/connections/{cid}/move", data={"to_stage": "已签约", "area_m2": "-3", "date": "2026-11-20"}
    )
    body = r.get_data(as_text=True)
    assert r.status_code == 422 and "落地面积（平方米）" in body and "落地基地" in body
    r = base.post(
        f"/connections/{cid}/move",
        data={"to_stage": "已签约", "base": "二期孵化楼", "area_m2": "260", "date": "2026-11-20"},
    )
    assert r.status_code == 302
    page = proj.get(f"/connections/{cid}").get_data(as_text=True)
    assert "二期孵化楼" in page and "260" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.index("已签约") < page.index("已申请对接")  # newest first
    assert "该对接已结束" not in page  # 已签约 may still be dissolved (终止)


def test_secretariat_list_flags_idle_connections(world, as_user) -> None:
    sec = as_user("sec")
    page = sec.get("/connections/?follow_up=1").get_data(as_text=True)
    assert "待跟进" in page and 'class="idle"' in page
    m = re.search(r"当前共 <strong>(\d+)</strong> 条", page)
    assert m and int(m.group(1)) > 0
    assert sec.get("/connections/?stage=不存在").status_code == 200
    # an organiser reads the list behind its dashboard: its contests only, without the connection pages
    org = as_user("org").get("/connections/")
    table = org.get_data(as_text=True).split('id="connections"')[1]
    assert org.status_code == 200 and not re.search(r"/connections/\d", table)


def test_dashboard_page_has_its_charts_data_and_buttons(world, as_user) -> None:
    sec = as_user("sec")
    r = sec.get("/dashboard")
    page = r.get_data(as_text=True)
    from datetime import date

    from app.pipeline.figures import Period

    # quarter-to-date by default, the last full quarter one click away
    assert r.status_code == 200 and Period.containing(date.today()).label in page
    last = Period.last_full_quarter(date.today())
    assert f'href="/dashboard?quarter={last.quarter}">上一完整季度' in page
    page = sec.get("/dashboard?quarter=2026Q3").get_data(as_text=True)
    assert 'src="/static/vendor/chart.umd.min.js"' in page and "<script>" not in page
    charts = json.loads(
        re.search(r'data-charts="([^"]*)"', page).group(1).replace("&#34;", '"').replace("&quot;", '"')
    )
    assert [s["label"] for s in charts["funnel"]] == [
        "推荐",
        "已申请对接",
        "已接受",
        "已会谈",
        "尽职调查",
        "已签约",
    ]
    assert len(charts["months"]) == 12 and charts["regions"]
    assert "/reports/quarterly.xlsx?quarter=2026Q3" in page and "/reports/quarterly?quarter=2026Q3" in page
    bad = sec.get("/dashboard?quarter=2026Q9")
    assert bad.status_code == 422 and "季度：格式应为" in bad.get_data(as_text=True)
    org = as_user("org").get("/dashboard").get_data(as_text=True)
    assert "范围：全部赛事" not in org
    printable = sec.get("/reports/quarterly?quarter=2026Q3").get_data(as_text=True)
    assert "赛事专报" in printable and 'id="report-cases"' in printable and "print.js" in printable
