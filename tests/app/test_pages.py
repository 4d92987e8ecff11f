"""Pages (zh-CN): lists and search, a project with its three ranked lists, forms with Chinese messages."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import Contest, Institution, Need, Project, ProjectGroup
from models.base import utcnow


@pytest.fixture(autouse=True)
def _logged_in(auth):
    """These tests act as the secretariat, who may do everything; access rules have their own tests."""
    auth.login("admin")


def text(resp) -> str:
    return resp.get_data(as_text=True)


def _home_counts(client) -> dict[str, int]:
    r = client.get("/")
    assert r.status_code == 200
    body = text(r)
    assert 'lang="zh-CN"' in body
    found = dict(re.findall(r"<strong>(\d+)</strong>(参赛项目|服务机构|对接需求|场赛事)", body))
    return {label: int(n) for n, label in found.items()}


def test_home_shows_counts_and_links(client, session):
    live = {"参赛项目": Project, "服务机构": Institution, "对接需求": Need}
    expected = {
        label: session.scalar(select(func.count(m.id)).where(m.archived_at.is_(None)))
        for label, m in live.items()
    }
    expected["场赛事"] = session.scalar(select(func.count(Contest.id)))
    assert min(expected.values()) > 0  # the demo has some of each
    assert _home_counts(client) == expected
    body = text(client.get("/"))
    assert 'href="/projects/"' in body and 'href="/institutions/"' in body and 'href="/needs/"' in body
    # an archived project (kept for its history) no longer counts
    p = session.scalars(select(Project).where(Project.archived_at.is_(None))).first()
    p.archived_at = utcnow()
    session.commit()
    assert _home_counts(client)["参赛项目"] == expected["参赛项目"] - 1


def test_project_list_search_and_filters(client, session):
    p = session.scalars(select(Project).where(Project.group == ProjectGroup.MAKER)).first()
    r = client.get("/projects/?group=创客组")
    assert r.status_code == 200
    body = text(r)
    assert "创客组" in body and "企业组</td>" not in body
    word = p.name[:4]
    r = client.get(f"/projects/?q={word}")
    assert p.name in text(r)


def test_bad_filter_shows_a_chinese_message(client):
    r = client.get("/projects/?award=特等奖")
    assert r.status_code == 200
    assert "获奖等级：应为以下之一" in text(r)


def test_project_page_has_three_ranked_lists_with_reasons(client, session):
    p = session.scalars(select(Project).where(Project.needs.is_not(None))).first()
    r = client.get(f"/projects/{p.id}")
    assert r.status_code == 200
    body = text(r)
    for side in ("fund", "base", "platform"):
        section = body.split(f'id="matches-{side}"', 1)[1].split("</ol>", 1)[0]
        assert section.count('class="match"') == 10, side
        assert section.count('<li class="pos">') + section.count('<li class="neg">') >= 10
    assert p.description[:20] in body


def test_institution_and_need_pages_rank_projects(client, session):
    inst = session.scalars(select(Institution)).first()
    r = client.get(f"/institutions/{inst.id}")
    assert r.status_code == 200
    assert text(r).count('class="match"') == 20
    r = client.get("/needs/")
    assert r.status_code == 200
    need_link = re.search(r'href="/needs/(\d+)"', text(r))
    assert need_link
    r = client.get(f"/needs/{need_link.group(1)}")
    assert r.status_code == 200 and "符合需求的项目" in text(r)
    assert text(r).count('class="match"') > 0


def test_project_form_validates_in_chinese_and_keeps_input(client):
    r = client.post(
        "/projects/new", data={"name": "智", "group": "企业组", "description": "太短", "amount_wan": "-3"}
    )
    assert r.status_code == 422
    body = text(r)
    assert "名称：至少 2 个字符" in body
    assert "所属赛事" in body and "必填" in body
    assert "拟融资金额（万元）：不能小于" in body
    assert 'value="智"' in body  # what the user typed is kept


def test_project_form_creates_and_edits(client, session):
    data = {
        "name": "丘陵山区电动微耕机",
        "group": "创客组",
        "contest_id": "48",
        "award": "无",
        "industry": "现代农业",
        "province": "河南省",
        "city": "洛阳市",
        "stage": "研发样机",
        "amount_wan": "300",
        "funding_round": "天使轮",
        "description": "为丘陵山区小地块设计的锂电微耕机，整机不到六十公斤，可一人搬运，已在三个县试用。",
        "needs": ["融资", "工业设计", "检验检测"],
    }
    r = client.post("/projects/new", data=data)
    assert r.status_code == 302
    r = client.get(r.headers["Location"])
    body = text(r)
    assert "丘陵山区电动微耕机" in body and "推荐公共服务平台" in body
    pid = session.scalar(select(Project.id).where(Project.name == "丘陵山区电动微耕机"))
    r = client.post(f"/projects/{pid}/edit", data={**data, "stage": "初创期"})
    assert r.status_code == 302
    assert "初创期" in text(client.get(f"/projects/{pid}"))


def test_institution_form_rejects_inverted_ticket_range(client):
    r = client.post(
        "/institutions/new",
        data={
            "name": "某某创投",
            "kind": "创业投资机构",
            "ticket_min_wan": "5000",
            "ticket_max_wan": "100",
            "description": "专注早期硬科技项目投资的机构。",
        },
    )
    assert r.status_code == 422
    assert "单笔金额上限不能小于下限" in text(r)


def test_missing_record_is_a_chinese_404(client):
    r = client.get("/projects/999999")
    assert r.status_code == 404
    assert "不存在" in text(r) and "Traceback" not in text(r)
