"""对接服务报名 choices: chosen at self-registration, stored on approval, shown and
editable on the profile."""

from __future__ import annotations

from sqlalchemy import select

from models import Institution
from models.accounts import Registration
from models.events import InstitutionRegistration

FORM = {
    "username": "choicefund",
    "password": "choice-fund-pass",
    "password2": "choice-fund-pass",
    "display_name": "李四",
    "name": "报名选项测试创投",
    "kind": "创业投资机构",
    "description": "专注早期硬科技项目的创业投资机构。",
}


def test_registration_choices_travel_from_the_form_to_the_profile(client, auth, session):
    page = client.get("/register/institution").get_data(as_text=True)
    assert "参加对接活动" in page and "成为大赛评委" in page and "发布对接需求" in page
    r = client.post("/register/institution", data={**FORM, "event_choices": ["参加对接活动", "成为大赛评委"]})
    assert r.status_code == 200 and "申请已提交" in r.get_data(as_text=True)
    reg = session.scalar(
        select(Registration).where(Registration.kind == "institution").order_by(Registration.id.desc())
    )
    assert reg.data["event_choices"] == ["EVENTS", "JUDGE"]
    auth.login("admin")
    review = client.get("/admin/registrations").get_data(as_text=True)  # the secretariat sees the choices
    assert "对接服务报名" in review and "参加对接活动、成为大赛评委" in review
    assert client.post(f"/admin/registrations/{reg.id}/approve").status_code == 302
    session.expire_all()
    inst = session.scalar(select(Institution).where(Institution.name == FORM["name"]))
    assert inst is not None and "event_choices" not in (inst.description or "")
    row = session.get(InstitutionRegistration, inst.id)
    assert row is not None and row.choices == ["EVENTS", "JUDGE"]
    page = client.get(f"/institutions/{inst.id}").get_data(as_text=True)
    assert "参加对接活动、成为大赛评委" in page and f"/events/registration/{inst.id}" in page
    # edited on the linked page, shown again on the profile
    r = client.post(f"/events/registration/{inst.id}", data={"choices": ["发布对接需求"]})
    assert r.status_code == 302
    page = client.get(f"/institutions/{inst.id}").get_data(as_text=True)
    assert "发布对接需求" in page and "参加对接活动、" not in page


def test_unknown_choice_is_refused_and_nothing_is_stored(client, session):
    before = session.scalar(select(Registration.id).order_by(Registration.id.desc()).limit(1))
    r = client.post("/register/institution", data={**FORM, "event_choices": ["随便什么"]})
    assert r.status_code == 422
    assert "对接服务报名选项：不认识的取值" in r.get_data(as_text=True)
    after = session.scalar(select(Registration.id).order_by(Registration.id.desc()).limit(1))
    assert after == before


def test_no_choice_stores_no_row(client, auth, session):
    r = client.post("/register/institution", data={**FORM, "username": "nochoicefund", "name": "无选项创投"})
    assert r.status_code == 200
    reg = session.scalar(select(Registration).order_by(Registration.id.desc()))
    assert "event_choices" not in reg.data
    auth.login("admin")
    client.post(f"/admin/registrations/{reg.id}/approve")
    session.expire_all()
    inst = session.scalar(select(Institution).where(Institution.name == "无选项创投"))
    assert session.get(InstitutionRegistration, inst.id) is None
    assert "尚未选择" in client.get(f"/institutions/{inst.id}").get_data(as_text=True)


def test_only_the_institution_and_the_secretariat_see_the_block(client, auth):
    # no `session` fixture here: it would hold one application context (and its cached account) open
    assert 'id="event-choices"' not in client.get("/institutions/1").get_data(as_text=True)
    auth.login("admin")
    assert 'id="event-choices"' in client.get("/institutions/1").get_data(as_text=True)
