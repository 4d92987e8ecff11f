"""An event's tables bound its plan: at most slots x tables meetings; a floor beyond them explains itself."""

from __future__ import annotations

from sqlalchemy import select

from models import Institution
from models.accounts import User
from models.events import Event, Meeting


def _event(client, session, **extra: str) -> int:
    contest = session.scalar(select(User).where(User.username == "organiser")).contests[0].id
    data = {
        "name": "小会场对接会",
        "slots": "3",
        "institution_capacity": "3",
        "project_min": "0",
        "project_max": "3",
        "contest_ids": [str(contest)],
        **extra,
    }
    r = client.post("/events/new", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)
    event_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    client.post(f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "8"})
    ids = session.scalars(select(Institution.id).order_by(Institution.id).limit(4)).all()
    client.post(
        f"/events/{event_id}/invite", data={"mode": "ids", "institution_ids": " ".join(map(str, ids))}
    )
    return event_id


def test_the_plan_fits_the_tables(client, auth, session):
    auth.login("organiser")
    event_id = _event(client, session, tables="2")
    page = client.post(f"/events/{event_id}/plan", follow_redirects=True).get_data(as_text=True)
    assert 'id="plan-ok"' in page, page[:2000]
    meetings = session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all()
    assert (
        len(meetings) == 3 * 2
    )  # 8 projects x 4 institutions could hold 12; three slots of two tables hold 6
    per_slot = {}
    for m in meetings:
        per_slot.setdefault(m.slot, set()).add(m.table_no)
    assert all(len(t) == sum(1 for m in meetings if m.slot == s) for s, t in per_slot.items())
    assert all(t <= {0, 1} for t in per_slot.values())


def test_a_floor_beyond_the_tables_explains_itself(client, auth, session):
    auth.login("organiser")
    event_id = _event(client, session, tables="2", project_min="1")
    page = client.post(f"/events/{event_id}/plan", follow_redirects=True).get_data(as_text=True)
    assert 'id="plan-blocked"' in page and "桌数不足" in page
    assert "时段数 × 桌数最多容纳 6 场" in page and "增加桌数或时段" in page
    assert session.get(Event, event_id).meetings == []
