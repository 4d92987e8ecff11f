"""The feedback loop: impressions logged for signed-in viewers, actions linked back, training on the logs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sqlalchemy import delete, func, select

from app.extensions import db
from models import Connection, Institution, InstitutionKind
from models.feedback import ActionKind, FeedbackAction, Impression


def _rows(session, **where):
    stmt = select(Impression).where(Impression.demo.is_(False))
    for k, v in where.items():
        stmt = stmt.where(getattr(Impression, k) == v)
    return list(session.scalars(stmt.order_by(Impression.position)))


def _fund_id(session) -> int:
    return session.scalar(
        select(Institution.id).where(Institution.kind == InstitutionKind.VC).order_by(Institution.id)
    )


def test_demo_history_comes_with_marked_logs(session):
    demo = session.scalar(select(func.count(Impression.id)).where(Impression.demo.is_(True)))
    assert demo > 1000
    assert not _rows(session)  # nothing real logged yet
    kinds = Counter(session.scalars(select(FeedbackAction.action).where(FeedbackAction.demo.is_(True))))
    assert kinds[ActionKind.OPENED] > kinds[ActionKind.REQUESTED] > kinds[ActionKind.SIGNED] > 0
    # Every signed demo connection's action points at a shown row of the same pair.
    signed = session.execute(
        select(FeedbackAction, Impression)
        .join(Impression, FeedbackAction.impression_id == Impression.id)
        .where(FeedbackAction.action == ActionKind.SIGNED)
    ).all()
    assert signed and all(
        (a.project_id, a.institution_id, a.position) == (i.project_id, i.institution_id, i.position)
        for a, i in signed
    )


def test_institution_page_logs_the_shown_page_with_positions(app, client, auth, session):
    fund = _fund_id(session)
    auth.login("admin")
    page = client.get(f"/institutions/{fund}")
    assert page.status_code == 200
    rows = _rows(session, query_kind="institution", query_id=fund)
    assert len(rows) == app.config["PAGE_SIZE"]
    assert [r.position for r in rows] == list(range(1, len(rows) + 1))
    assert len({r.list_id for r in rows}) == 1 and all(r.surface == "page" for r in rows)
    assert all(r.institution_id == fund and r.score is not None and r.viewer_user_id for r in rows)
    # The detail links carry the list and the position; following one records an opened action.
    html = page.get_data(as_text=True)
    third = rows[2]
    link = f"/projects/{third.project_id}?from={third.list_id}&amp;pos=3"
    assert link in html
    assert client.get(link.replace("&amp;", "&")).status_code == 200
    client.get(link.replace("&amp;", "&"))  # a reload is not a second open
    opened = list(session.scalars(select(FeedbackAction).where(FeedbackAction.demo.is_(False))))
    assert [(a.action, a.impression_id, a.position) for a in opened] == [(ActionKind.OPENED, third.id, 3)]
    # Page 2 continues the positions.
    client.get(f"/institutions/{fund}?page=2")
    page2 = [r for r in _rows(session, query_kind="institution", query_id=fund) if r.list_id != third.list_id]
    assert page2 and page2[0].position == app.config["PAGE_SIZE"] + 1


def test_api_lists_are_logged_and_return_their_id(client, auth, session):
    auth.login("admin")
    body = client.get("/api/projects/5/matches?kind=fund&k=7").get_json()
    rows = _rows(session, query_kind="project", query_id=5)
    assert body["list_id"] == rows[0].list_id and len(rows) == 7
    assert [r.institution_id for r in rows] == [i["id"] for i in body["items"]]
    assert [r.score for r in rows] == pytest.approx([i["score"] for i in body["items"]])
    assert all(r.side == "fund" and r.surface == "api" for r in rows)
    first = rows[0]
    assert (
        client.get(f"/api/institutions/{first.institution_id}?from={first.list_id}&pos=1").status_code == 200
    )
    assert (
        session.scalar(select(FeedbackAction.impression_id).where(FeedbackAction.demo.is_(False))) == first.id
    )


def test_anonymous_visitors_and_bots_are_not_logged(client, auth, session):
    fund = _fund_id(session)
    assert client.get(f"/institutions/{fund}").status_code == 200
    body = client.get("/api/projects/5/matches?kind=fund&k=5").get_json()
    assert "list_id" not in body
    auth.login("admin")
    client.get(f"/institutions/{fund}", headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"})
    assert not _rows(session)
    # A forged ?from= of an anonymous visitor records nothing either.
    auth.logout()
    client.get("/projects/5?from=0123456789abcdef&pos=1")
    assert not session.scalar(select(func.count(FeedbackAction.id)).where(FeedbackAction.demo.is_(False)))


def test_a_failed_write_never_breaks_the_page(app, client, auth, session, caplog):
    fund = _fund_id(session)
    auth.login("admin")
    session.execute(Impression.__table__.delete())
    session.commit()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE feedback_action")
        conn.exec_driver_sql("ALTER TABLE impression RENAME TO impression_gone")
    assert client.get(f"/institutions/{fund}").status_code == 200
    assert "could not log a ranked list" in caplog.text


def test_pipeline_actions_link_to_the_list_that_showed_the_pair(app, client, auth, session):
    fund = _fund_id(session)
    linked = set(session.scalars(select(Connection.project_id).where(Connection.institution_id == fund)))
    auth.login("admin")
    client.get(f"/institutions/{fund}")
    rows = [r for r in _rows(session, query_kind="institution", query_id=fund) if r.project_id not in linked]
    target = rows[4]
    r = client.post(
        "/api/connections",
        json={"project_id": target.project_id, "institution_id": fund, "action": "request"},
    )
    assert r.status_code == 201, r.get_json()
    acts = list(session.scalars(select(FeedbackAction).where(FeedbackAction.demo.is_(False))))
    assert [(a.action, a.impression_id, a.list_id, a.position) for a in acts] == [
        (ActionKind.REQUESTED, target.id, target.list_id, target.position)
    ]


def test_secretariat_alone_sees_the_aggregate(client, auth):
    auth.login("admin")
    body = client.get("/api/feedback/summary").get_json()
    assert body["impressions"] > 1000 and body["actions"]["signed"] > 0
    assert body["by_position"][0]["rate"] > body["by_position"][9]["rate"]
    auth.logout()
    auth.login("fund")
    assert client.get("/api/feedback/summary").status_code == 403


def test_ranker_train_learns_from_the_demo_logs_and_the_service_uses_it(app, runner, client, auth, session):
    from app.feedback.train import item_features, load_log
    from app.services import ranker_path

    # A clearly preferred item: a project the fund's lists show at the bottom is signed, again and again.
    fund = _fund_id(session)
    auth.login("admin")
    before = [i["id"] for i in client.get(f"/api/institutions/{fund}/matches?k=100").get_json()["items"]]
    assert before
    r = runner.invoke(args=["ranker", "train"])
    assert r.exit_code == 0, r.output
    assert "trained logistic ranker" in r.output and "positive" in r.output
    assert "position bias" in r.output and "held-out replay" in r.output
    assert ranker_path(app).is_file()
    service = app.extensions["matching"]
    assert getattr(service.ranker, "version_", "").startswith("feedback-logistic-")
    # The next list is served by the new model and records its version.
    client.get(f"/api/institutions/{fund}/matches?k=5")
    assert {r.model for r in _rows(session, query_kind="institution", query_id=fund)} >= {
        service.ranker.version_
    }
    # What it learned points the way the logs do: acted-on rows score above shown-only rows.
    items = [i for i in load_log(session) if i.institution_id in set(service.institution_ids())][:4000]
    X = item_features(service, items)
    s = service.ranker.score(X)
    acted = np.array([i.grade > 0 for i in items])
    assert s[acted].mean() > s[~acted].mean()
    app.extensions.pop("matching", None)  # a restart loads the saved model
    items = client.get("/api/projects/7/matches?kind=fund&k=5").get_json()["items"]
    assert len(items) == 5 and all(i["reasons"] for i in items)
    assert getattr(app.extensions["matching"].ranker, "version_", "") == service.ranker.version_


def test_ranker_train_refuses_with_too_little_feedback(app, runner, session):
    from app.services import ranker_path

    session.execute(delete(FeedbackAction))
    session.commit()
    r = runner.invoke(args=["ranker", "train"])
    assert r.exit_code != 0
    assert "too little feedback" in r.output and "--source outcomes" in r.output
    assert not ranker_path(app).exists()
    r = runner.invoke(args=["ranker", "train", "--source", "outcomes"])
    assert r.exit_code == 0 and "trained lambdarank ranker" in r.output


def _inject_preference(session, fund: int, shown: list[int], preferred: int, lists: int = 80) -> None:
    """Log `lists` recent lists of the fund showing `shown`, the preferred project at the bottom, signed."""
    from datetime import timedelta

    from models.base import utcnow

    now = utcnow()
    for n in range(lists):
        at = now - timedelta(days=60) + timedelta(hours=n * 12)
        order = [*[p for p in shown if p != preferred][:19], preferred]
        rows = [
            Impression(
                list_id=f"{n:016x}",
                at=at,
                viewer_user_id=None,
                query_kind="institution",
                query_id=fund,
                project_id=pid,
                institution_id=fund,
                position=pos,
                rank=pos,
                score=None,
                model="test",
                surface="page",
                demo=False,
            )
            for pos, pid in enumerate(order, start=1)
        ]
        session.add_all(rows)
        session.flush()
        for step, kind in enumerate(ActionKind):
            session.add(
                FeedbackAction(
                    at=at + timedelta(days=step),
                    action=kind,
                    project_id=preferred,
                    institution_id=fund,
                    impression_id=rows[-1].id,
                    list_id=rows[-1].list_id,
                    position=20,
                    demo=False,
                )
            )
    session.commit()


def test_a_clearly_preferred_item_moves_up_after_training(app, runner, client, auth, session):
    fund = _fund_id(session)
    auth.login("admin")
    before = [i["id"] for i in client.get(f"/api/institutions/{fund}/matches?k=100").get_json()["items"]]
    preferred = before[59]
    _inject_preference(session, fund, before[30:60], preferred)
    r = runner.invoke(args=["ranker", "train"])
    assert r.exit_code == 0, r.output
    after = [i["id"] for i in client.get(f"/api/institutions/{fund}/matches?k=100").get_json()["items"]]
    assert preferred in after and after.index(preferred) < before.index(preferred) - 10, (
        before.index(preferred),
        after.index(preferred) if preferred in after else None,
    )


def test_need_page_and_api_lists_are_logged_for_the_needs_institution(client, auth, session):
    from models import Need

    need = session.scalar(select(Need).order_by(Need.id))
    auth.login("admin")
    assert client.get(f"/needs/{need.id}").status_code == 200
    body = client.get(f"/api/needs/{need.id}/matches?k=5").get_json()
    rows = _rows(session, query_kind="need", query_id=need.id)
    assert len({r.list_id for r in rows}) == 2 and body["list_id"] in {r.list_id for r in rows}
    assert all(r.institution_id == need.institution_id for r in rows)
    page = [r for r in rows if r.surface == "page"]
    assert [r.position for r in page] == list(range(1, len(page) + 1))
