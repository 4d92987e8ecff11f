"""Property: an "almost integer" in an id field never carries a write past its access rule.

Every write route that takes an id in its body (JSON API and web forms) gets int-like values of every
type (floats such as 12.0, numeric strings such as "12.0", " 12 ", "1e1", booleans, None, lists, dicts,
huge and negative numbers) from every role. Afterwards the stored data must still be within the caller's
reach: an organiser's projects stay in its contests, a project keeps its contest and award, an institution's
needs and connections stay its own, a visitor changes nothing; and no answer is a 5xx.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.api import PROJECT_FIELDS
from app.auth.accounts import DEMO_ACCOUNTS
from app.extensions import db
from app.serialize import project_json
from models import Connection, Contest, Institution, Need, Project
from models.accounts import User
from models.events import Event, EventContest, EventInvite

ROLES = ("anon", "admin", "organiser", "fund", "base", "platform", "project")
PASSWORDS = {name: pw for name, pw, _role, _what in DEMO_ACCOUNTS}


@dataclass
class World:
    clients: dict[str, FlaskClient]
    org_contests: set[int]
    other_contest: int
    p_org: int  # a project in the organiser's contest
    p_own: int  # the project account's project
    p_other: int  # a project in another contest
    inst: dict[str, int]  # fund/base/platform -> the account's institution
    i_other: int  # an institution no account belongs to
    n_fund: int  # a need of the fund's institution
    n_other: int  # a need of another institution
    project_body: dict[str, Any]
    need_body: dict[str, Any]
    event: int  # a matchmaking event of the organiser's first contest


def _world(app: Flask) -> World:
    with app.app_context():
        s = db.session
        users = {u.username: u for u in s.scalars(select(User))}
        org_contests = {c.id for c in users["organiser"].contests}
        p_org = s.scalar(select(Project).where(Project.contest_id.in_(org_contests)).order_by(Project.id))
        p_other = s.scalar(
            select(Project).where(Project.contest_id.not_in(org_contests)).order_by(Project.id)
        )
        other_contest = s.scalar(
            select(Contest.id).where(Contest.id.not_in(org_contests)).order_by(Contest.id)
        )
        p_own = users["project"].project_id
        inst = {name: users[name].institution_id for name in ("fund", "base", "platform")}
        bound = {u.institution_id for u in users.values() if u.institution_id}
        i_other = s.scalar(
            select(Institution.id).where(Institution.id.not_in(bound)).order_by(Institution.id)
        )
        needs = {}
        for key, owner in (("fund", inst["fund"]), ("other", i_other)):
            need = Need(
                institution_id=owner,
                title=f"属性测试需求{key}",
                description="寻找智能装备方向的早期项目，提供资金。",
            )
            s.add(need)
            s.flush()
            needs[key] = need.id
        event = Event(name="属性测试活动", contests=[EventContest(contest_id=min(org_contests))])
        s.add(event)
        s.flush()
        event_id = event.id
        s.commit()
        assert p_org is not None and p_other is not None and p_own and other_contest and i_other
        body = {f: v for f, v in project_json(p_org).items() if f in PROJECT_FIELDS}
        ids = (p_org.id, p_other.id)
    clients = {}
    for role in ROLES:
        c = app.test_client()
        if role != "anon":
            r = c.post("/login", data={"username": role, "password": PASSWORDS[role]})
            assert r.status_code == 302, role
        clients[role] = c
    return World(
        clients=clients,
        org_contests=org_contests,
        other_contest=other_contest,
        p_org=ids[0],
        p_own=p_own,
        p_other=ids[1],
        inst=inst,
        i_other=i_other,
        n_fund=needs["fund"],
        n_other=needs["other"],
        project_body=body,
        need_body={"title": "属性测试的新需求", "description": "寻找智能装备方向的早期项目，提供资金。"},
        event=event_id,
    )


def _snapshot(app: Flask) -> dict[str, dict[int, tuple[Any, ...]]]:
    with app.app_context():
        s = db.session
        return {
            "project": {p.id: (p.contest_id, p.award) for p in s.scalars(select(Project))},
            "need": {n.id: (n.institution_id,) for n in s.scalars(select(Need))},
            "connection": {
                c.id: (c.project_id, c.institution_id, c.stage) for c in s.scalars(select(Connection))
            },
            "event": {
                e.id: tuple(sorted(c.contest_id for c in e.contests)) for e in s.scalars(select(Event))
            },
            "invite": {
                i.id: (i.event_id, i.project_id, i.institution_id) for i in s.scalars(select(EventInvite))
            },
        }


def _changed(before: dict[int, tuple[Any, ...]], after: dict[int, tuple[Any, ...]]) -> list[tuple[Any, Any]]:
    """Return (old, new) for every row added, removed or changed."""
    out = []
    for key in before.keys() | after.keys():
        if before.get(key) != after.get(key):
            out.append((before.get(key), after.get(key)))
    return out


def _assert_within_reach(role: str, w: World, before: dict[str, Any], after: dict[str, Any]) -> None:
    projects = _changed(before["project"], after["project"])
    needs = _changed(before["need"], after["need"])
    connections = _changed(before["connection"], after["connection"])
    events = _changed(before["event"], after["event"])
    invites = _changed(before["invite"], after["invite"])
    if role == "admin":
        return  # the secretariat may write anywhere; the property is "no 5xx"
    if role != "organiser":
        assert not (events or invites), f"a {role} changed a matchmaking event"
    if role == "anon":
        assert not (projects or needs or connections), "a visitor changed data"
        return
    if role == "organiser":
        for _old, new in events:
            assert new is not None and set(new) <= w.org_contests, f"an event for contests {new}"
        contest_of = {pid: row[0] for pid, row in after["project"].items()}
        for _old, new in invites:
            assert new is not None
            assert new[1] is None or contest_of[new[1]] in w.org_contests, (
                "a project of another contest invited"
            )
        for old, new in projects:
            assert new is not None, "an organiser deleted a project through a write"
            assert new[0] in w.org_contests, f"project put into contest {new[0]}, not the organiser's"
            assert old is None or old[0] in w.org_contests, "a project outside its contests was changed"
        assert not needs and not connections
        return
    if role == "project":
        for old, new in projects:
            assert old is not None and new is not None, "a project member created or removed a project"
            assert old == new, "a project member changed its contest or award"
        assert not needs
        for _old, new in connections:
            assert new is not None and new[0] == w.p_own, "a project member connected another project"
        return
    mine = w.inst[role]
    assert not projects, "an institution member changed a project"
    for old, new in needs:
        assert new is not None and new[0] == mine, f"a need was put under institution {new and new[0]}"
        assert old is None or old[0] == mine, "another institution's need was changed"
    for _old, new in connections:
        assert new is not None and new[1] == mine, "an institution member connected another institution"


def _int_like(base: int) -> st.SearchStrategy[Any]:
    """Values that look like `base` (or like an id) in every JSON and form type."""
    exact = st.sampled_from(
        [
            float(base),
            f"{base}.0",
            f" {base} ",
            f"{base}e0",
            f"{base / 10:g}e1",
            f"+{base}",
            f"0{base}",
            str(float(base)),
            True,
            False,
            None,
            [base],
            [str(base)],
            {"id": base},
            -base,
            0,
            "",
            " ",
            2**31 + base,
            2**63 + base,
            10**30,
            f"{base}\u0000",
            "１２",
            f"{base}abc",
            1e308,
            float("nan"),
        ]
    )
    return st.one_of(
        exact,
        st.just(base),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.from_regex(r"\A[ +-]?[0-9]{1,12}(\.[0-9]{0,3})?([eE][+-]?[0-9])?[ ]?\Z"),
        st.booleans(),
        st.lists(st.integers(min_value=0, max_value=2**32), max_size=2),
        st.dictionaries(st.sampled_from(["id", "value"]), st.integers(), max_size=1),
    )


def _form_value(v: Any) -> Any:
    """What a form post can carry: strings (a list becomes repeated fields)."""
    if isinstance(v, list):
        return [str(x) for x in v]
    return "" if v is None else str(v)


def _form(body: dict[str, Any]) -> dict[str, Any]:
    return {k: _form_value(v) for k, v in body.items()}


def _csv_row(row: dict[str, Any]) -> bytes:
    """Return an import CSV (template headers) with one project row."""
    from app.imports import PROJECT_COLUMNS, header_labels

    def cell(v: Any) -> str:
        return "、".join(str(x) for x in v) if isinstance(v, list) else "" if v is None else str(v)

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header_labels("projects"))
    writer.writerow([cell(row.get(col)) for col in PROJECT_COLUMNS])
    return buf.getvalue().encode("utf-8")


def _targets(w: World) -> dict[str, int]:
    """Ids an attacker would aim at: outside the reach of every role but the secretariat."""
    return {
        "contest_id": w.other_contest,
        "institution_id": w.i_other,
        "project_id": w.p_other,
        "need_id": w.n_other,
        "contest": w.other_contest,
        "contest_ids": w.other_contest,
        "project_ids": w.p_other,
    }


def _own(w: World, role: str) -> dict[str, int]:
    """Ids within the role's reach (where it has any)."""
    return {
        "contest_id": min(w.org_contests),
        "institution_id": w.inst.get(role, w.inst["fund"]),
        "project_id": w.p_own if role == "project" else w.p_org,
        "need_id": w.n_fund,
        "contest": min(w.org_contests),
        "contest_ids": min(w.org_contests),
        "project_ids": w.p_org,
    }


def _send(w: World, role: str, route: str, field: str, value: Any) -> Any:
    c = w.clients[role]
    inst_id = w.inst.get(role, w.inst["fund"])
    proj_id = w.p_own if role == "project" else w.p_org
    if route == "api.create_project":
        return c.post("/api/projects", json={**w.project_body, "contest_id": value})
    if route == "api.patch_project":
        return c.patch(f"/api/projects/{proj_id}", json={"contest_id": value})
    if route == "api.put_project":
        return c.put(f"/api/projects/{proj_id}", json={**w.project_body, "contest_id": value})
    if route == "web.create_project":
        return c.post("/projects/new", data=_form({**w.project_body, "contest_id": value}))
    if route == "web.edit_project":
        return c.post(f"/projects/{proj_id}/edit", data=_form({**w.project_body, "contest_id": value}))
    if route == "api.create_need":
        return c.post("/api/needs", json={**w.need_body, "institution_id": value})
    if route == "api.patch_need":
        return c.patch(f"/api/needs/{w.n_fund}", json={"institution_id": value})
    if route == "api.put_need":
        return c.put(f"/api/needs/{w.n_fund}", json={**w.need_body, "institution_id": value})
    if route == "web.create_need":
        return c.post("/needs/new", data=_form({**w.need_body, "institution_id": value}))
    if route == "web.edit_need":
        return c.post(f"/needs/{w.n_fund}/edit", data=_form({**w.need_body, "institution_id": value}))
    if route == "api.patch_institution":
        return c.patch(f"/api/institutions/{inst_id}", json={field: value})
    if route == "api.import_projects":  # the contest column of a CSV row (a code, a name or an id)
        return c.post(
            "/api/imports/projects",
            data={"file": (io.BytesIO(_csv_row({**w.project_body, "contest": value})), "projects.csv")},
            content_type="multipart/form-data",
        )
    if route == "web.create_event":
        return c.post("/events/new", data=_form({"name": "属性测试新活动", "contest_ids": value}))
    if route == "web.invite_projects":
        return c.post(
            f"/events/{w.event}/invite",
            data=_form({"mode": "ids", "project_ids": value, "institution_ids": ""}),
        )
    body = {"project_id": proj_id, "institution_id": inst_id, "action": "request", field: value}
    if route == "api.create_connection":
        return c.post("/api/connections", json=body)
    assert route == "web.create_connection"
    return c.post("/connections/new", data=_form(body))


ROUTES = {
    "api.create_project": ("contest_id",),
    "api.patch_project": ("contest_id",),
    "api.put_project": ("contest_id",),
    "web.create_project": ("contest_id",),
    "web.edit_project": ("contest_id",),
    "api.create_need": ("institution_id",),
    "api.patch_need": ("institution_id",),
    "api.put_need": ("institution_id",),
    "web.create_need": ("institution_id",),
    "web.edit_need": ("institution_id",),
    "api.patch_institution": ("institution_id", "id"),
    "api.create_connection": ("project_id", "institution_id", "need_id"),
    "api.import_projects": ("contest",),
    "web.create_connection": ("project_id", "institution_id"),
    "web.create_event": ("contest_ids",),
    "web.invite_projects": ("project_ids",),
}
WRITES = [(route, field) for route, fields in ROUTES.items() for field in fields]


@pytest.fixture()
def world(app: Flask) -> World:
    return _world(app)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_int_like_ids_never_widen_a_write(app: Flask, world: World, data: st.DataObject) -> None:
    role = data.draw(st.sampled_from(ROLES), label="role")
    route, field = data.draw(st.sampled_from(WRITES), label="write")
    # around a foreign id mostly, around one of the caller's own sometimes (writes that may succeed)
    foreign = _targets(world).get(field, world.p_other)
    base = data.draw(st.sampled_from([foreign, foreign, _own(world, role).get(field, foreign)]), label="base")
    value = data.draw(_int_like(base), label="value")
    before = _snapshot(app)
    r = _send(world, role, route, field, value)
    assert r.status_code < 500, (route, field, value, r.status_code, r.get_data(as_text=True)[:300])
    _assert_within_reach(role, world, before, _snapshot(app))


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_every_write_route_refuses_the_float_form_of_a_foreign_id(
    app: Flask, world: World, role: str
) -> None:
    """The reproductions of the review, for every role and write route: nothing leaves the caller's reach."""
    for route, field in WRITES:
        base = _targets(world).get(field, world.p_other)
        for value in (float(base), f"{base}.0", True):
            before = _snapshot(app)
            r = _send(world, role, route, field, value)
            assert r.status_code < 500, (route, field, value)
            # 12.0 is the id 12 (a JSON Schema integer): what it may create is what 12 may, within reach.
            created_ok = role == "admin" or isinstance(value, float)
            assert r.status_code != 201 or created_ok, (route, field, value, r.get_json())
            _assert_within_reach(role, world, before, _snapshot(app))


def test_id_type_names_the_field_in_chinese(client, auth, world: World) -> None:
    auth.login("organiser")
    for value in (12.5, "12.0", True, [12], 2**31, "1e1"):
        r = client.post("/api/projects", json={**world.project_body, "contest_id": value})
        assert r.status_code == 422, value
        assert "所属赛事" in r.get_json()["error"]["fields"]["contest_id"]
        assert "整数" in r.get_json()["error"]["fields"]["contest_id"]
    own = sorted(world.org_contests)[0]
    r = client.post(
        "/api/projects", json={**world.project_body, "contest_id": str(own), "name": "字符串编号项目"}
    )
    assert r.status_code == 201 and r.get_json()["contest_id"] == own
    # A JSON number without a fraction is that integer (JSON Schema): 12.0 is the id 12, stored as an int.
    r = client.post(
        "/api/projects", json={**world.project_body, "contest_id": float(own), "name": "整数值编号项目"}
    )
    assert r.status_code == 201 and r.get_json()["contest_id"] == own
    assert isinstance(r.get_json()["contest_id"], int)
