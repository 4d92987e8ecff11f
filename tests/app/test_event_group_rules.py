"""Group rules in the event page: e.g. a project that seeks a bank loan meets at least one bank."""

from __future__ import annotations

from sqlalchemy import select

from models import FundingRound, Institution, InstitutionKind, Project
from models.accounts import User
from models.events import Event, Meeting


def _setup(client, session, with_banks: bool) -> tuple[int, list[int], set[int]]:
    contest = session.scalar(select(User).where(User.username == "organiser")).contests[0].id
    data = {
        "name": "银行专场",
        "slots": "4",
        "institution_capacity": "4",
        "project_min": "1",
        "project_max": "3",
        "contest_ids": [str(contest)],
    }
    r = client.post("/events/new", data=data)
    event_id = int(r.headers["Location"].rstrip("/").split("/")[-1])
    loans = list(
        session.scalars(
            select(Project.id)
            .where(Project.contest_id == contest, Project.funding_round == FundingRound.BANK_LOAN)
            .limit(3)
        )
    )
    others = list(
        session.scalars(
            select(Project.id)
            .where(Project.contest_id == contest, Project.funding_round != FundingRound.BANK_LOAN)
            .limit(3)
        )
    )
    assert loans, "the demo data should hold projects that seek a bank loan"
    banks = set(
        session.scalars(select(Institution.id).where(Institution.kind == InstitutionKind.BANK).limit(2))
    )
    funds = list(
        session.scalars(select(Institution.id).where(Institution.kind == InstitutionKind.VC).limit(4))
    )
    insts = funds + (sorted(banks) if with_banks else [])
    client.post(
        f"/events/{event_id}/invite",
        data={
            "mode": "ids",
            "project_ids": " ".join(map(str, loans + others)),
            "institution_ids": " ".join(map(str, insts)),
        },
    )
    r = client.post(
        f"/events/{event_id}/group-rules",
        data={"rounds": ["银行贷款"], "kinds": ["银行"], "at_least": "1"},
        follow_redirects=True,
    )
    assert "已添加分组规则：寻求银行贷款的项目：至少会谈 1 家银行" in r.get_data(as_text=True)
    return event_id, loans, banks


def test_projects_seeking_a_loan_meet_a_bank(client, auth, session):
    auth.login("organiser")
    event_id, loans, banks = _setup(client, session, with_banks=True)
    assert session.get(Event, event_id).group_rules[0]["kinds"] == ["BANK"]
    page = client.post(f"/events/{event_id}/plan", follow_redirects=True).get_data(as_text=True)
    assert 'id="plan-ok"' in page, page[:2000]
    meetings = session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all()
    for p in loans:
        assert any(m.project_id == p and m.institution_id in banks for m in meetings), p


def test_a_rule_no_invited_institution_can_meet_explains_itself(client, auth, session):
    auth.login("organiser")
    event_id, loans, _banks = _setup(client, session, with_banks=False)
    page = client.post(f"/events/{event_id}/plan", follow_redirects=True).get_data(as_text=True)
    assert 'id="plan-blocked"' in page and "分组规则无法满足" in page
    assert "寻求银行贷款的项目：至少会谈 1 家银行" in page
    assert session.get(Project, loans[0]).name in page
    assert session.scalars(select(Meeting).where(Meeting.event_id == event_id)).all() == []
    # the rule goes, and the plan runs
    client.post(f"/events/{event_id}/group-rules/0/delete")
    page = client.post(f"/events/{event_id}/plan", follow_redirects=True).get_data(as_text=True)
    assert 'id="plan-ok"' in page


def test_bad_group_rules_are_refused_in_chinese(client, auth, session):
    auth.login("organiser")
    event_id, _loans, _banks = _setup(client, session, with_banks=True)
    for data, message in (
        ({"rounds": ["银行贷款"]}, "请至少选择一类机构"),
        ({"kinds": ["当铺"]}, "不认识的机构类型"),
        ({"kinds": ["银行"], "rounds": ["众筹"]}, "不认识的融资方式"),
        ({"kinds": ["银行"], "at_least": "0"}, "至少会谈几家：应为 1 到 48 之间的整数"),
    ):
        page = client.post(f"/events/{event_id}/group-rules", data=data, follow_redirects=True).get_data(
            as_text=True
        )
        assert message in page, message
    session.expire_all()
    assert len(session.get(Event, event_id).group_rules) == 1
    assert client.post(f"/events/{event_id}/group-rules/5/delete").status_code == 404
