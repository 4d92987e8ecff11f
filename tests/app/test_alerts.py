"""Saved searches and alerts end to end: a real SMTP server (aiosmtpd) receives the Chinese digests.

Projects are added through app.services (as pages, the API and imports add them); the saved searches
re-run synchronously here (run_and_mail), as the background thread or `flask alerts run` would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import services
from app.alerts import run_and_mail
from app.alerts.mail import send_digests
from app.alerts.service import run_searches
from app.extensions import db
from app.serialize import form_values
from models import Connection, Institution, Need, Project
from models.accounts import User
from models.alerts import AlertFrequency, Notification, SavedSearch
from models.base import utcnow

PASSWORDS = {
    "admin": "demo-admin-2026",
    "fund": "demo-fund-2026",
    "base": "demo-base-2026",
    "project": "demo-project-2026",
}


# --- a real SMTP server process ------------------------------------------------------------------------


class _Inbox:
    """The aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def smtp() -> Iterator[tuple[int, _Inbox]]:
    """A local SMTP server (aiosmtpd's Controller, its own thread and event loop) on a free port."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture()
def alerts_app(make_app: Any, smtp: tuple[int, _Inbox]) -> Flask:
    port, _ = smtp
    app = make_app(
        SMTP_URL=f"smtp://127.0.0.1:{port}", SITE_URL="http://match.example", ALERTS_DAILY_LIMIT=30
    )
    with app.app_context():
        for name in ("fund", "base", "admin"):
            user = db.session.scalar(select(User).where(User.username == name))
            user.email = f"{name}@example.com"  # type: ignore[union-attr]
        db.session.commit()
    return app


def _login(app: Flask, name: str) -> Any:
    client = app.test_client()
    r = client.post("/login", data={"username": name, "password": PASSWORDS[name]})
    assert r.status_code == 302
    return client


def _user(name: str) -> User:
    user = db.session.scalar(select(User).where(User.username == name))
    assert user is not None
    return user


def _ranked_ids(app: Flask, institution_id: int, k: int = 30) -> list[int]:
    with app.app_context():
        return [
            r.row.id for r in services.matches_for_institution(db.session, institution_id, k, private=True)
        ]


#: What a clone copies of its source project (its form values: what makes it rank alike; then its figures).
_CLONED_FIELDS = ["group", "contest_id", "award", "industry", "province", "city", "description", "needs"]
_CLONED_FIELDS += ["stage", "amount_wan", "funding_round"]


def _clone(app: Flask, source_id: int, name: str) -> int:
    """Add a project that reads like another (so it ranks near it) through the service every write uses."""
    with app.test_request_context():
        p = db.session.get(Project, source_id)
        assert p is not None
        values = {**form_values(p, _CLONED_FIELDS), "name": name}
        return services.save_project(db.session, values).id


def _save(client: Any, **data: Any) -> Any:
    return client.post("/api/alerts/searches", json=data)


def _notifications(app: Flask, **where: Any) -> list[Notification]:
    with app.app_context():
        stmt = select(Notification).filter_by(**where).order_by(Notification.id)
        rows = list(db.session.scalars(stmt))
        db.session.expunge_all()
        return rows


# --- the whole path: save, a project arrives, notified once, mailed in Chinese, unsubscribed ------------


def test_saved_search_alerts_once_and_mails_a_chinese_digest(alerts_app: Flask, smtp: Any) -> None:
    app, (_, inbox) = alerts_app, smtp
    fund = _login(app, "fund")
    with app.app_context():
        inst_id = _user("fund").institution_id
    before = _ranked_ids(app, inst_id)
    r = _save(
        fund, name="人工智能前十", kind="institution", target_id=inst_id, rank_threshold=10, frequency="即时"
    )
    assert r.status_code == 201, r.get_json()
    search = r.get_json()
    assert search["rank_threshold"] == 10 and search["frequency"] == "即时"

    run_and_mail(app)  # nothing new yet: today's list is the baseline
    assert _notifications(app) == [] and inbox.messages == []

    new_id = _clone(app, before[0], "星火智能质检平台（新）")
    position = _ranked_ids(app, inst_id).index(new_id) + 1
    assert position <= 10
    _, mailed = run_and_mail(app)
    notes = _notifications(app, search_id=search["id"])
    assert [n.project_id for n in notes] == [new_id]
    assert notes[0].rank == position and notes[0].reasons  # the matching service's reasons for the pair
    assert mailed.sent == 1 and len(inbox.messages) == 1

    msg = inbox.messages[0]
    assert msg["To"] == "fund@example.com"
    assert msg["Subject"].startswith("【创客中国对接服务】1 个新进入前列的匹配项目")
    body = msg.get_content()
    assert "星火智能质检平台（新）" in body
    assert f"第 {position} 名（提醒名次：前 10 名）" in body
    assert "匹配理由：" + "；".join(notes[0].reasons) in body
    assert "来自订阅「人工智能前十」" in body
    assert f"http://match.example/alerts/notifications/{notes[0].id}/open" in body

    # Re-running, or changing the project, never alerts twice for the same project and search.
    run_and_mail(app)
    with app.test_request_context():
        p = db.session.get(Project, new_id)
        assert p is not None
        values = {
            k: getattr(p, k) for k in ("name", "contest_id", "industry", "province", "city", "amount_wan")
        }
        values.update(group=p.group.value, award=p.award.value, description=p.description + " 已量产。")
        services.save_project(db.session, values, p)
    run_and_mail(app)
    assert len(_notifications(app, search_id=search["id"])) == 1
    assert len(inbox.messages) == 1

    # The notification centre shows it with its reasons; the top bar counts it unread.
    page = fund.get("/alerts/").get_data(as_text=True)
    assert "星火智能质检平台（新）" in page and notes[0].reasons[0] in page
    assert 'id="alerts-link"' in page and "1 条未读" in page
    api = fund.get("/api/alerts/notifications?unread=1").get_json()
    assert api["unread"] == 1 and api["items"][0]["reasons"] == notes[0].reasons

    # One-click unsubscribe from the e-mail: the header and the body carry the same signed link.
    link = msg["List-Unsubscribe"].strip("<>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in body
    path = urlsplit(link).path
    anonymous = app.test_client()
    confirm = anonymous.get(path)
    assert confirm.status_code == 200 and "确认退订" in confirm.get_data(as_text=True)
    done = anonymous.post(path, data={"List-Unsubscribe": "One-Click"})  # what a mail client sends
    assert done.status_code == 200 and "已退订" in done.get_data(as_text=True)
    assert anonymous.get(path.rsplit("/", 1)[0] + "/forged.token").status_code == 400

    other = _clone(app, before[1], "星火智能质检平台（二期）")
    run_and_mail(app)
    assert [n.project_id for n in _notifications(app, search_id=search["id"])] == [new_id, other]
    assert len(inbox.messages) == 1  # unsubscribed: in the centre only

    # Opening the alert counts as a view; a request and a signature after it complete the funnel.
    assert (
        fund.get(f"/alerts/notifications/{notes[0].id}/open")
        .headers["Location"]
        .endswith(f"/projects/{new_id}")
    )
    r = fund.post(
        "/api/connections", json={"project_id": new_id, "institution_id": inst_id, "action": "request"}
    )
    assert r.status_code == 201, r.get_json()
    with app.app_context():
        from app.pipeline.states import SYSTEM, transition
        from models.enums import ConnectionStage as S

        c = db.session.scalar(select(Connection).where(Connection.project_id == new_id))
        assert c is not None
        kind = c.institution.kind.side
        for stage in (S.ACCEPTED, S.MET, *((S.DUE_DILIGENCE,) if kind == "fund" else ())):
            transition(c, stage, SYSTEM)
        outcome = {"date": utcnow().date().isoformat()}
        if kind == "fund":
            outcome.update(amount_wan="500", round="天使轮")
        transition(c, S.SIGNED, SYSTEM, outcome=outcome)
        db.session.commit()
    admin = _login(app, "admin")
    funnel = admin.get("/alerts/funnel")
    assert funnel.status_code == 200
    text = funnel.get_data(as_text=True)
    assert '<td data-step="alerts">2</td>' in text
    assert '<td data-step="viewed">1 ' in text
    assert '<td data-step="requested">1 ' in text
    assert '<td data-step="signed">1 ' in text
    assert fund.get("/alerts/funnel").status_code == 403


def test_threshold_is_a_rank_not_a_score(alerts_app: Flask) -> None:
    app = alerts_app
    fund = _login(app, "fund")
    with app.app_context():
        inst_id = _user("fund").institution_id
    before = _ranked_ids(app, inst_id)
    # A project like the 6th: it lands a few places down the list, not at the top.
    ids = {}
    for top in (1, 2, 30):
        r = _save(fund, name=f"前 {top} 名", kind="institution", target_id=inst_id, rank_threshold=top)
        assert r.status_code == 201
        ids[top] = r.get_json()["id"]
    new_id = _clone(app, before[5], "中游新项目")
    position = _ranked_ids(app, inst_id).index(new_id) + 1
    assert 2 < position <= 30, position
    run_searches_now(app)
    assert [n.project_id for n in _notifications(app, search_id=ids[30])] == [new_id]
    assert _notifications(app, search_id=ids[1]) == [] and _notifications(app, search_id=ids[2]) == []


def run_searches_now(app: Flask, **kw: Any) -> Any:
    with app.app_context():
        return run_searches(db.session, **kw)


def test_daily_rate_limit_defers_the_rest_to_the_next_day(make_app: Any) -> None:
    app = make_app(ALERTS_DAILY_LIMIT=1)
    fund = _login(app, "fund")
    with app.app_context():
        inst_id = _user("fund").institution_id
    before = _ranked_ids(app, inst_id)
    sid = _save(fund, name="前 20", kind="institution", target_id=inst_id, rank_threshold=20).get_json()["id"]
    a = _clone(app, before[0], "新项目甲")
    b = _clone(app, before[1], "新项目乙")
    now = utcnow()
    first = run_searches_now(app, now=now)
    assert first.notified == 1 and first.deferred == 1
    assert run_searches_now(app, now=now + timedelta(minutes=5)).notified == 0  # same day: still held back
    nxt = run_searches_now(app, now=now + timedelta(days=1))
    assert nxt.notified == 1
    assert sorted(n.project_id for n in _notifications(app, search_id=sid)) == sorted([a, b])
    assert run_searches_now(app, now=now + timedelta(days=2)).notified == 0


def test_a_posted_need_is_watched_and_digests_follow_the_frequency(alerts_app: Flask, smtp: Any) -> None:
    app, (_, inbox) = alerts_app, smtp
    with app.test_request_context():
        fund = _user("fund")
        need = services.save_need(
            db.session,
            {
                "institution_id": fund.institution_id,
                "title": "寻找智能装备项目",
                "industries": ["智能装备"],
                "description": "寻找智能装备方向、已有产品和客户的早期项目，单笔投资五百万元左右。",
            },
        )
        need_id = need.id
        top = [r.row.id for r in services.matches_for_need(db.session, need, 5, private=True)]
    run_and_mail(app)  # the need gets a saved search for the member, with today's list as baseline
    with app.app_context():
        auto = db.session.scalar(select(SavedSearch).where(SavedSearch.need_id == need_id))
        assert auto is not None and auto.auto_key and auto.frequency is AlertFrequency.DAILY
        assert auto.user_id == _user("fund").id
    new_id = _clone(app, top[0], "智能制造新项目")
    _, mailed = run_and_mail(app)
    notes = _notifications(app, need_id=need_id)
    assert [n.project_id for n in notes] == [new_id]
    assert mailed.sent == 0 and inbox.messages == []  # daily: waits for the digest
    with app.app_context():
        report = send_digests(app, db.session, AlertFrequency.DAILY)
        assert report.sent == 1
        again = send_digests(app, db.session)  # nothing left, and the daily one is not due again
        assert again.sent == 0
    msg = inbox.messages[0]
    assert "每日摘要" in msg["Subject"] and "对接需求：寻找智能装备项目" in msg.get_content()


def test_send_digests_command(alerts_app: Flask, smtp: Any) -> None:
    app, (_, inbox) = alerts_app, smtp
    fund = _login(app, "fund")
    with app.app_context():
        inst_id = _user("fund").institution_id
    before = _ranked_ids(app, inst_id)
    r = _save(
        fund, name="每周看看", kind="institution", target_id=inst_id, rank_threshold=10, frequency="每周"
    )
    assert r.status_code == 201
    runner = app.test_cli_runner()
    assert runner.invoke(args=["alerts", "run"]).exit_code == 0
    _clone(app, before[0], "周报新项目")
    result = runner.invoke(args=["alerts", "run"])
    assert result.exit_code == 0 and "1 notifications" in result.output, result.output
    assert runner.invoke(args=["alerts", "send-digests", "--frequency", "daily"]).output.startswith(
        "digests: 0"
    )
    result = runner.invoke(args=["alerts", "send-digests", "--frequency", "weekly"])
    assert result.exit_code == 0 and "1 e-mails with 1 notifications" in result.output, result.output
    assert len(inbox.messages) == 1 and "每周摘要" in inbox.messages[0]["Subject"]
    assert "周报新项目" in inbox.messages[0].get_content()
    assert runner.invoke(args=["alerts", "send-digests"]).output.startswith("digests: 0")
    assert runner.invoke(args=["alerts", "send-digests", "--frequency", "monthly"]).exit_code != 0


# --- who may see and change what, and hostile input --------------------------------------------------


@pytest.mark.parametrize("bad", [12.5, "12", True, None, [12], 0, 2**31])
def test_ids_must_be_json_integers(alerts_app: Flask, bad: Any) -> None:
    fund = _login(alerts_app, "fund")
    r = _save(fund, name="x", kind="institution", target_id=bad)
    assert r.status_code == 422
    assert "target_id" in r.get_json()["error"]["fields"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rank_threshold", "10"),
        ("rank_threshold", 10.5),
        ("rank_threshold", True),
        ("rank_threshold", 0),
        ("rank_threshold", 101),
        ("name", "前十\x00名"),
        ("name", "前十\u202e名\x1b"),
        ("name", "x" * 61),
        ("frequency", "每月"),
        ("filters", {"industry": "不存在的行业"}),
        ("filters", {"stage\x07": "种子期"}),
        ("filters", {"industry": "人工\x00智能"}),
        ("filters", {"q": "智能\x1b[2J"}),
        ("filters", {"q": "智能", "contest": "12.0"}),
        ("filters", ["industry"]),
        ("kind", "project"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_saved(alerts_app: Flask, field: str, value: Any) -> None:
    fund = _login(alerts_app, "fund")
    with alerts_app.app_context():
        inst_id = _user("fund").institution_id
    data = {"name": "前十", "kind": "institution", "target_id": inst_id, "rank_threshold": 10, field: value}
    r = _save(fund, **data)
    assert r.status_code == 422, (field, value, r.get_json())
    assert r.get_json()["error"]["fields"]
    with alerts_app.app_context():
        assert db.session.scalar(select(func.count(SavedSearch.id))) == 0


def test_users_see_and_change_only_their_own(alerts_app: Flask) -> None:
    app = alerts_app
    fund, base, project = _login(app, "fund"), _login(app, "base"), _login(app, "project")
    with app.app_context():
        fund_inst, base_inst = _user("fund").institution_id, _user("base").institution_id
        other_need = db.session.scalar(
            select(Need.id).where(Need.institution_id != fund_inst, Need.archived_at.is_(None))
        )
    # Another institution's list or need: refused (and audited), whatever the form.
    assert _save(fund, name="x", kind="institution", target_id=base_inst).status_code == 403
    if other_need is not None:
        assert _save(fund, name="x", kind="need", target_id=other_need).status_code == 403
    assert _save(project, name="x", kind="institution", target_id=fund_inst).status_code == 403
    assert _save(fund, name="x", kind="institution", target_id=999_999).status_code == 404  # no such list
    r = fund.post("/alerts/searches", data={"name": "x", "kind": "institution", "target_id": str(base_inst)})
    assert r.status_code == 403
    mine = _save(fund, name="我的", kind="institution", target_id=fund_inst).get_json()["id"]
    theirs = _save(base, name="他们的", kind="institution", target_id=base_inst).get_json()["id"]

    assert [s["id"] for s in fund.get("/api/alerts/searches").get_json()["items"]] == [mine]
    assert "他们的" not in fund.get("/alerts/searches").get_data(as_text=True)
    # Another account's search answers exactly like a missing one, and is left unchanged.
    for url in (f"/api/alerts/searches/{theirs}", "/api/alerts/searches/999999"):
        assert fund.patch(url, json={"rank_threshold": 5}).status_code == 404
        assert fund.delete(url).status_code == 404
    assert fund.post(f"/alerts/searches/{theirs}", data={"rank_threshold": "5"}).status_code == 404
    assert fund.post(f"/alerts/searches/{theirs}/delete").status_code == 404
    with app.app_context():
        s = db.session.get(SavedSearch, theirs)
        assert s is not None and s.rank_threshold == 10

    ok = fund.patch(f"/api/alerts/searches/{mine}", json={"rank_threshold": 5, "frequency": "每周"})
    assert ok.status_code == 200 and ok.get_json()["rank_threshold"] == 5
    for bad in (
        {"rank_threshold": "5"},
        {"active": "true"},
        {"rank_threshold": None},
        {"name": "\x00"},
        {"filters": {}},
    ):
        assert fund.patch(f"/api/alerts/searches/{mine}", json=bad).status_code == 422, bad

    # Notifications: another account's cannot be read, opened or marked.
    with app.app_context():
        n = Notification(
            user_id=_user("base").id,
            search_id=theirs,
            search_name="他们的",
            kind=db.session.get(SavedSearch, theirs).kind,
            institution_id=base_inst,
            project_id=db.session.scalar(select(Project.id).limit(1)),
            rank=1,
            rank_threshold=10,
            score=90.0,
            reasons=["行业相同"],
            frequency=AlertFrequency.DAILY,
        )
        db.session.add(n)
        db.session.commit()
        nid = n.id
    assert fund.post(f"/api/alerts/notifications/{nid}/read").status_code == 404
    assert fund.get(f"/alerts/notifications/{nid}/open").status_code == 404
    assert fund.post(f"/alerts/notifications/{nid}/read").status_code == 404
    assert fund.get("/api/alerts/notifications").get_json()["items"] == []
    assert base.post(f"/api/alerts/notifications/{nid}/read").get_json()["read"] is True
    assert fund.delete(f"/api/alerts/searches/{mine}").status_code == 204
    assert app.test_client().get("/alerts/").status_code == 302  # the centre needs a login


def test_save_search_form_on_the_ranked_pages(alerts_app: Flask) -> None:
    app = alerts_app
    fund = _login(app, "fund")
    with app.app_context():
        inst_id = _user("fund").institution_id
        inst = db.session.get(Institution, inst_id)
        industry = (inst.industries or ["人工智能"])[0]  # type: ignore[union-attr]
    page = fund.get(f"/institutions/{inst_id}?industry={industry}").get_data(as_text=True)
    assert 'id="save-search"' in page and f'name="filter_industry" value="{industry}"' in page
    r = fund.post(
        "/alerts/searches",
        data={
            "name": "按行业",
            "kind": "institution",
            "target_id": str(inst_id),
            "rank_threshold": "10",
            "frequency": "每周",
            "filter_industry": industry,
            "next": f"/institutions/{inst_id}",
        },
    )
    assert r.status_code == 302
    saved = fund.get("/api/alerts/searches").get_json()["items"][0]
    assert saved["filters"] == {"industry": industry} and saved["frequency"] == "每周"
    # No form on a list the user may not watch, nor for visitors.
    with app.app_context():
        base_inst = _user("base").institution_id
    assert 'id="save-search"' not in fund.get(f"/institutions/{base_inst}").get_data(as_text=True)
    assert 'id="save-search"' not in app.test_client().get(f"/institutions/{inst_id}").get_data(as_text=True)


def test_a_project_added_through_the_site_alerts_in_the_background(make_app: Any) -> None:
    """The write returns at once; the background thread re-runs the searches shortly after the commit."""
    import time

    app = make_app(ALERTS_IN_PROCESS=True, ALERTS_DEBOUNCE_SECONDS=0.1)
    fund = _login(app, "fund")
    with app.app_context():
        inst_id = _user("fund").institution_id
    before = _ranked_ids(app, inst_id)
    sid = _save(fund, name="前十", kind="institution", target_id=inst_id, rank_threshold=10).get_json()["id"]
    new_id = _clone(app, before[0], "后台提醒新项目")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not app.extensions["alerts"].runs:
        time.sleep(0.2)
    assert [n.project_id for n in _notifications(app, search_id=sid)] == [new_id]
    assert app.extensions["alerts"].runs >= 1


def test_save_search_form_on_a_need_page(alerts_app: Flask) -> None:
    app = alerts_app
    fund = _login(app, "fund")
    with app.test_request_context():
        inst_id = _user("fund").institution_id
        need = services.save_need(
            db.session,
            {
                "institution_id": inst_id,
                "title": "寻找新材料项目",
                "industries": ["新材料"],
                "description": "寻找新材料方向、已有中试产线的项目，可提供场地和投资。",
            },
        )
        need_id = need.id
    page = fund.get(f"/needs/{need_id}?province=广东省").get_data(as_text=True)
    assert 'name="kind" value="need"' in page and f'name="target_id" value="{need_id}"' in page
    assert 'name="filter_province" value="广东省"' in page and 'value="寻找新材料项目 · 广东省"' in page
    r = fund.post(
        "/alerts/searches",
        data={
            "name": "新材料·广东",
            "kind": "need",
            "target_id": str(need_id),
            "rank_threshold": "8",
            "frequency": "即时",
            "filter_province": "广东省",
        },
    )
    assert r.status_code == 302
    saved = fund.get("/api/alerts/searches").get_json()["items"][-1]
    assert saved["need_id"] == need_id and saved["filters"] == {"province": "广东省"}
    assert saved["rank_threshold"] == 8 and saved["kind"] == "need"
    assert 'id="save-search"' not in _login(app, "base").get(f"/needs/{need_id}").get_data(as_text=True)
