"""Entry conditions per group: SME thresholds of the regulation, credit codes, what stays unknown."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.intake.eligibility import SME_INDUSTRIES, check_credit_code, evaluate, sme_size, summary
from models import Project


def _p(**kw):  # type: ignore[no-untyped-def]
    base = dict(
        group="企业组",
        industry="新材料",
        sme_industry=None,
        stage="成长期",
        ip="发明专利 2 项",
        team=None,
        team_lead=None,
        credit_code="91540100MA6T000019",
        employees=None,
        revenue_wan=None,
        assets_wan=None,
    )
    return SimpleNamespace(**{**base, **kw})


def _by_name(conditions):  # type: ignore[no-untyped-def]
    return {c.condition: c for c in conditions}


@pytest.mark.parametrize(
    ("figures", "size"),
    [
        # the worked examples of the regulation's notes (工业)
        ({"employees": 1200, "revenue": 30000}, "medium"),
        ({"employees": 500, "revenue": 1000}, "small"),
        ({"employees": 1000, "revenue": 40000}, "large"),
        ({"employees": 19, "revenue": 5000}, "micro"),
        ({"employees": 20, "revenue": 300}, "small"),
        ({"employees": 5000, "revenue": None}, None),
    ],
)
def test_industry_thresholds_follow_the_regulation(figures, size) -> None:
    got, reason = sme_size("工业", figures)
    assert got == size, reason


def test_an_industry_without_an_employee_metric_uses_revenue_and_assets() -> None:
    assert sme_size("建筑业", {"employees": 99999, "revenue": 70000, "assets": 90000})[0] == "medium"
    assert sme_size("建筑业", {"employees": 1, "revenue": 90000, "assets": 90000})[0] == "large"


def test_enterprise_conditions_hold_fail_or_stay_unknown_with_reasons() -> None:
    ok = _by_name(evaluate(_p(employees=35, revenue_wan=1200)))
    sme = ok["符合《中小企业划型标准规定》的中小微企业"]
    assert sme.status == "holds" and "小型企业" in sme.reason and "推定为工业" in sme.reason
    assert ok["在中国境内注册"].status == "holds"
    assert ok["无不良记录"].status == "unknown"
    large = _by_name(evaluate(_p(employees=5000, revenue_wan=900000, sme_industry="工业")))
    assert large["符合《中小企业划型标准规定》的中小微企业"].status == "fails"
    early = _by_name(evaluate(_p(stage="研发样机", credit_code=None, ip=None)))
    assert early["参赛项目已进入市场"].status == "fails"
    assert (
        early["在中国境内注册"].status == "unknown"
        and early["拥有自主知识产权且无产权纠纷"].status == "unknown"
    )
    assert summary(list(early.values())) == "fails"


def test_maker_group_refuses_an_enterprise_project() -> None:
    maker = _by_name(evaluate(_p(group="创客组", team="三人团队")))
    assert maker["非企业创新项目"].status == "fails" and maker["个人或团队参赛"].status == "holds"
    assert _by_name(evaluate(_p(group="创客组", credit_code=None)))["非企业创新项目"].status == "holds"


def test_credit_codes_are_checked_by_their_check_character() -> None:
    assert check_credit_code(" 91540100ma6t000019 ") == "91540100MA6T000019"
    for bad in ("91540100MA6T000018", "123", "91540100MA6T00001I"):
        with pytest.raises(ValueError):
            check_credit_code(bad)


@given(
    st.sampled_from(SME_INDUSTRIES),
    st.one_of(st.none(), st.integers(0, 10**6)),
    st.one_of(st.none(), st.floats(0, 10**7)),
    st.one_of(st.none(), st.floats(0, 10**7)),
)
def test_every_industry_and_figure_gets_a_size_and_a_reason(industry, employees, revenue, assets) -> None:
    size, reason = sme_size(industry, {"employees": employees, "revenue": revenue, "assets": assets})
    assert size in (None, "large", "medium", "small", "micro", "sme") and reason


def test_the_api_carries_eligibility_for_those_who_may_see_it(client, auth, session) -> None:
    pid = session.scalar(select(Project.id).order_by(Project.id).limit(1))
    anonymous = client.get(f"/api/projects/{pid}").get_json()
    assert "eligibility" not in anonymous and "eligibility" in anonymous["hidden"]
    auth.login("admin")
    data = client.get(f"/api/projects/{pid}").get_json()
    assert data["eligibility"] and {"condition", "status", "reason"} == set(data["eligibility"][0])
    assert {c["status"] for c in data["eligibility"]} <= {"holds", "fails", "unknown"}


def test_the_project_page_and_the_organiser_list_show_conditions(app, client, auth) -> None:
    from app.extensions import db
    from models.accounts import User

    with app.app_context():  # closed before the requests: each request then resolves its own account
        contest = db.session.scalar(select(User).where(User.username == "organiser")).contests[0]
        pid = db.session.scalar(select(Project.id).where(Project.contest_id == contest.id).limit(1))
        other = db.session.scalar(select(Project.id).where(Project.contest_id != contest.id).limit(1))
    auth.login("organiser")
    page = client.get("/intake/projects").get_data(as_text=True)
    assert "参赛条件" in page and "eligibility-list" in page
    unknown = client.get("/intake/projects?eligibility=unknown").get_data(as_text=True)
    holds = client.get("/intake/projects?eligibility=holds").get_data(as_text=True)
    assert unknown != holds
    detail = client.get(f"/projects/{pid}").get_data(as_text=True)
    assert 'id="eligibility"' in detail and "待核实" in detail
    assert 'id="eligibility"' not in client.get(f"/projects/{other}").get_data(as_text=True)
    auth.logout()
    assert 'id="eligibility"' not in client.get(f"/projects/{pid}").get_data(as_text=True)
