"""The dashboard counts matchmaking events per quarter: events held, meetings, 已会谈 connections, signed."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import Connection, ConnectionStage, Institution
from models.accounts import User
from models.events import Meeting


def _figure(client, quarter: str) -> list[list[str]]:
    page = client.get(f"/dashboard?quarter={quarter}").get_data(as_text=True)
    section = page.split('id="events-figure"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>", 1)[1])
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]


def test_held_event_is_counted_in_its_quarter(client, auth, session):
    auth.login("organiser")
    before = _figure(client, "2026Q4")
    assert [r[0] for r in before] == ["2026年第1季度", "2026年第2季度", "2026年第3季度", "2026年第4季度"]
    contest = session.scalar(select(User).where(User.username == "organiser")).contests[0].id
    data = {
        "name": "看板对接会",
        "held_on": "2026-11-05",
        "slots": "3",
        "institution_capacity": "3",
        "project_min": "1",
        "project_max": "2",
        "contest_ids": [str(contest)],
    }
    r = client.post("/events/new", data=data)
    event_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    client.post(f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "5"})
    ids = session.scalars(select(Institution.id).order_by(Institution.id).limit(4)).all()
    client.post(
        f"/events/{event_id}/invite", data={"mode": "ids", "institution_ids": " ".join(map(str, ids))}
    )
    client.post(f"/events/{event_id}/plan")
    # planned but not held: not counted yet
    assert _figure(client, "2026Q4") == before
    client.post(f"/events/{event_id}/held")
    meetings = session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all()
    linked = {m.connection_id for m in meetings if m.connection_id is not None}
    assert meetings and linked
    after = _figure(client, "2026Q4")
    q4_before, q4 = before[-1], after[-1]
    assert int(q4[1]) == int(q4_before[1]) + 1
    assert int(q4[2]) == int(q4_before[2]) + len(meetings)
    assert int(q4[3]) == int(q4_before[3]) + len(linked)
    assert after[:3] == before[:3]
    # a met connection that goes on to sign counts as an outcome of the event
    signed = session.get(Connection, sorted(linked)[0])
    signed.stage = ConnectionStage.SIGNED
    session.commit()
    assert int(_figure(client, "2026Q4")[-1][4]) == int(q4_before[4]) + 1
    # the event's quarter only
    assert _figure(client, "2025Q4")[-1][1] == "0"
