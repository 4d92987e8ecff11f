"""Daily work where people look: a request confirmed with a message, accept/refuse buttons, the next stages as
buttons, contacts on the connection page, history wording that hides the shortlist, navigation by role."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from models import Connection, Need, Project


def _cid(app, project_id: int, inst_id: int) -> int | None:  # type: ignore[no-untyped-def]
    with app.app_context():
        return db.session.scalar(
            select(Connection.id).where(
                Connection.project_id == project_id, Connection.institution_id == inst_id
            )
        )


def _stage_buttons(page: str) -> set[str]:
    return set(re.findall(r'name="to_stage" value="[^"]*" data-stage="([A-Z_]+)"', page))


def test_request_is_confirmed_with_a_message_and_answered_with_buttons(app, world, as_user) -> None:
    with app.app_context():
        p = db.session.get(Project, world.project_id)
        p.contact_phone = "13800138000"
        db.session.commit()
    fund, proj = as_user("fund"), as_user("proj")
    ranked = fund.get(f"/institutions/{world.fund_id}").get_data(as_text=True)
    assert re.search(r'data-action="request" href="/connections/new\?[^"]*action=request', ranked)
    # the fund shortlists first (one click, private), then asks: a confirmation page, nothing sent yet
    fund.post(
        "/connections/new",
        data={"project_id": world.project_id, "institution_id": world.fund_id, "action": "shortlist"},
    )
    url = f"/connections/new?project_id={world.project_id}&institution_id={world.fund_id}&action=request"
    confirm = fund.get(url + "&next=/evil.example/x")
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "确认申请对接" in text and "给项目方的留言" in text
    mine = proj.get(f"/connections/project/{world.project_id}").get_data(as_text=True)
    assert f'href="/institutions/{world.fund_id}"' not in mine
    with app.app_context():
        assert db.session.get(Connection, _cid(app, world.project_id, world.fund_id)).requested_at is None
    r = fund.post(
        "/connections/new",
        data={
            "project_id": world.project_id,
            "institution_id": world.fund_id,
            "action": "request",
            "note": "希望了解贵方的融资安排",
        },
    )
    assert r.status_code == 302
    cid = _cid(app, world.project_id, world.fund_id)

    # the project reads the message, answers with 接受 / 拒绝 buttons; no trace of the shortlist
    page = proj.get(f"/connections/{cid}").get_data(as_text=True)
    assert "希望了解贵方的融资安排" in page
    assert _stage_buttons(page) == {"ACCEPTED", "REFUSED", "TERMINATED"}
    assert '<select name="to_stage"' not in page
    history = page[page.index('id="history"') :]
    assert "推荐" not in history and "候选" not in history and "创建" not in history
    assert "申请对接" in history
    # the fund cannot answer its own request: it waits
    fund_page = fund.get(f"/connections/{cid}").get_data(as_text=True)
    assert "ACCEPTED" not in _stage_buttons(fund_page) and 'id="waiting"' in fund_page
    assert 'id="contacts-locked"' in fund_page and "13800138000" not in fund_page
    assert "加入候选" in fund_page  # its own history keeps the shortlist

    r = proj.post(f"/connections/{cid}/move", data={"to_stage": "已接受", "note": "欢迎来访"})
    assert r.status_code == 302
    fund_page = fund.get(f"/connections/{cid}").get_data(as_text=True)
    assert 'id="project-contacts"' in fund_page and "13800138000" in fund_page
    assert _stage_buttons(fund_page) == {"MET", "TERMINATED"}
    assert "接受对接" in fund_page and "项目方" in fund_page


def test_refusal_with_a_reason_and_project_wording(app, world, as_user) -> None:
    base, proj = as_user("base"), as_user("proj")
    base.post(
        "/connections/new",
        data={"project_id": world.project_id, "institution_id": world.base_id, "action": "request"},
    )
    cid = _cid(app, world.project_id, world.base_id)
    r = proj.post(f"/connections/{cid}/move", data={"to_stage": "已拒绝", "note": "已有落地园区"})
    assert r.status_code == 302
    page = base.get(f"/connections/{cid}").get_data(as_text=True)
    assert "拒绝对接" in page and "已有落地园区" in page
    # a project's own request names it 项目方 everywhere (overview, history, lists)
    proj.post(
        "/connections/new",
        data={"project_id": world.project_id, "institution_id": world.platform_id, "action": "request"},
    )
    pid = _cid(app, world.project_id, world.platform_id)
    page = proj.get(f"/connections/{pid}").get_data(as_text=True)
    assert "<dt>发起方</dt><dd>项目方</dd>" in page
    assert re.search(r"· 项目方 测试proj", page)
    listing = proj.get(f"/connections/project/{world.project_id}").get_data(as_text=True)
    assert ">项目方<" in listing and ">项目<" not in listing


def test_buttons_on_project_and_need_pages(app, world, as_user) -> None:
    fund, proj, other = as_user("fund"), as_user("proj"), as_user("proj-other")
    page = fund.get(f"/projects/{world.project_id}").get_data(as_text=True)
    block = page[page.index('id="project-connect"') :][:1500]
    assert 'data-action="shortlist"' in block and 'data-action="request"' in block
    assert 'id="project-connect"' not in other.get(f"/projects/{world.project_id}").get_data(as_text=True)
    with app.app_context():
        need = db.session.scalar(select(Need).where(Need.archived_at.is_(None)).order_by(Need.id))
        need_id, inst_id, title = need.id, need.institution_id, need.title
    page = proj.get(f"/needs/{need_id}").get_data(as_text=True)
    link = re.search(r'id="need-connect".*?href="([^"]+)"', page, re.S)
    assert link and f"need_id={need_id}" in link.group(1).replace("&amp;", "&")
    confirm = proj.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert title in confirm and "给机构的留言" in confirm
    r = proj.post(
        "/connections/new",
        data={
            "project_id": world.project_id,
            "institution_id": inst_id,
            "need_id": need_id,
            "action": "request",
            "note": "我们符合该需求",
        },
    )
    assert r.status_code == 302
    with app.app_context():
        c = db.session.get(Connection, _cid(app, world.project_id, inst_id))
        assert c.need_id == need_id and c.stage.name == "REQUESTED"
    # another project may not request for this one, even by hand
    r = other.get(f"/connections/new?project_id={world.project_id}&institution_id={inst_id}&action=request")
    assert r.status_code == 403
    # hostile ids are refused with a message, nothing is written
    r = proj.get("/connections/new?project_id=12.5&institution_id=true&action=request", follow_redirects=True)
    assert r.status_code == 200 and "项目" in r.get_data(as_text=True)


def test_navigation_names_the_users_own_work(app, world, as_user) -> None:
    with app.app_context():
        from models import Contest, Institution

        inst = db.session.get(Institution, world.fund_id).name
        proj = db.session.get(Project, world.project_id).name
        contest = db.session.get(Contest, world.contest_id)
    page = as_user("fund").get("/").get_data(as_text=True)
    bar = page[: page.index("</header>")]
    assert (
        f'href="/institutions/{world.fund_id}">我的机构</a>' in bar
        and f">{inst}</a>" in bar
        and ">测试fund<" not in bar
    )
    bar = as_user("proj").get("/").get_data(as_text=True)
    bar = bar[: bar.index("</header>")]
    assert f'href="/projects/{world.project_id}">我的项目</a>' in bar and proj in bar
    bar = as_user("org").get("/").get_data(as_text=True)
    bar = bar[: bar.index("</header>")]
    assert f"contest={contest.id}" in bar and "我的赛事" in bar


def test_dashboard_figures_open_the_connections_they_count(app, world, as_user) -> None:
    sec = as_user("sec")
    totals = sec.get("/api/dashboard?quarter=2026Q3").get_json()["totals"]
    page = sec.get("/dashboard?quarter=2026Q3").get_data(as_text=True)
    assert re.search(r'href="/connections/\?event=signed&amp;quarter=2026Q3"', page)
    assert 'id="by-region"' in page and "<details" in page

    def listed(query: str) -> int:
        text = sec.get(f"/connections/?{query}").get_data(as_text=True)
        m = re.search(r"共 (\d+) 条", text)
        assert m, text[:300]
        return int(m.group(1))

    assert listed("event=opened&quarter=2026Q3") == totals["opened"]
    assert listed("event=signed&quarter=2026Q3") == totals["signed"]
    assert listed("event=signed&side=fund&quarter=2026Q3") == totals["financed"]
    assert listed("event=refused&quarter=2026Q3") == totals["refused"]
    assert listed("event=terminated&quarter=2026Q3") == totals["terminated"]
    bad = sec.get("/connections/?event=drop&quarter=2026Q9").get_data(as_text=True)
    assert "统计口径：应为以下之一" in bad and "季度：格式应为" in bad
    # an organiser's figures and list cover its own contests only
    org = as_user("org")
    org_totals = org.get("/api/dashboard?quarter=2026Q3").get_json()["totals"]
    text = org.get("/connections/?event=opened&quarter=2026Q3").get_data(as_text=True)
    assert int(re.search(r"共 (\d+) 条", text).group(1)) == org_totals["opened"]


def test_every_breakdown_row_opens_the_connections_it_counts(app, world, as_user) -> None:
    """Each row of each breakdown (contest, kind, region, industry, award...) links its opened and signed
    counts to the connection list, and the list holds exactly that many connections."""
    sec = as_user("sec")
    data = sec.get("/api/dashboard?quarter=2026Q3").get_json()
    page = sec.get("/dashboard?quarter=2026Q3").get_data(as_text=True)
    checked = 0
    for dim, rows in data["breakdowns"].items():
        for row in rows:
            for event in ("opened", "signed"):
                if not row[event]:
                    continue
                query = {"dim": dim, "key": row["key"], "event": event, "quarter": "2026Q3"}
                assert f"dim={dim}" in page and "drill-link" in page, query
                text = sec.get("/connections/", query_string=query).get_data(as_text=True)
                m = re.search(r"共 (\d+) 条", text)
                assert m and int(m.group(1)) == row[event], (dim, row["key"], event, text[:200])
                checked += 1
    assert checked >= 6
    bad = sec.get("/connections/?dim=colour&key=red").get_data(as_text=True)
    assert "分项：应为以下之一" in bad
    bad = sec.get("/connections/?dim=award&key=金奖").get_data(as_text=True)
    assert "获奖等级：没有“金奖”这一项" in bad
