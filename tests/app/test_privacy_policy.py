"""The privacy policy (app/access.py) and its one copy in the ranking core (matching.types.public_view).

Every project column has one tier; the ranking core never receives a private field; what the public view
hides is exactly the logged-in tier; and the texts records are ranked on (and match reasons quote) are
made of public fields only.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from app.access import (
    INSTITUTION_PRIVATE_FIELDS,
    INSTITUTION_TEXT_FIELDS,
    PROJECT_MEMBER_FIELDS,
    PROJECT_PRIVATE_FIELDS,
    PROJECT_PUBLIC_FIELDS,
    PROJECT_TEXT_FIELDS,
    institution_record_text,
    project_record_text,
)
from app.services import project_profile
from matching.types import PUBLIC_HIDDEN_FIELDS, ProjectProfile, public_view
from models import Contest, ContestKind, Institution, InstitutionKind, Project
from models.enums import Award, FundingRound, ProjectGroup, Stage

#: Columns that say nothing about the project itself (who archived it, when): in no tier, never shown.
BOOKKEEPING = {"archived_at", "archived_by_id"}


def _project(**changes: Any) -> Project:
    values: dict[str, Any] = {
        "id": 7,
        "name": "碳纤维无人机",
        "group": ProjectGroup.ENTERPRISE,
        "contest_id": 3,
        "contest": Contest(id=3, code="R03", edition=7, kind=ContestKind.REGIONAL, name="浙江赛区"),
        "award": Award.FIRST,
        "industry": "航空航天",
        "track": "先进制造",
        "province": "浙江省",
        "city": "杭州市",
        "stage": Stage.GROWTH,
        "amount_wan": 800.0,
        "funding_round": FundingRound.A,
        "description": "碳纤维机身的工业巡检无人机。",
        "team": "核心团队来自航空院所。",
        "ip": "发明专利 5 项。",
        "needs": ["融资", "落地"],
        "contact_name": "张三",
        "contact_phone": "13800000000",
        "contact_email": "z@example.com",
        "employees": 40,
        "revenue_wan": 1200.0,
        "ref": "ZJ-001",
        "credit_code": "91330100MA00000000",
        "team_lead": "张三",
        "assets_wan": 3000.0,
        "sme_industry": "工业",
        "created_at": datetime(2026, 5, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 5, 2, tzinfo=UTC),
    }
    values.update(changes)
    return Project(**values)


#: A different value for each column, to see what a change of it reaches.
OTHER: dict[str, Any] = {
    "name": "别的名字",
    "group": ProjectGroup.MAKER,
    "award": Award.THIRD,
    "industry": "新材料",
    "track": "数字经济",
    "province": "江苏省",
    "city": "南京市",
    "stage": Stage.IDEA,
    "amount_wan": 50.0,
    "funding_round": FundingRound.SEED,
    "description": "另一段介绍。",
    "team": "另一个团队。",
    "ip": "实用新型 1 项。",
    "needs": ["检验检测"],
    "contact_name": "李四",
    "contact_phone": "13900000000",
    "contact_email": "l@example.com",
    "employees": 5,
    "revenue_wan": 10.0,
    "ref": "ZJ-999",
    "credit_code": "91330100MA11111111",
    "team_lead": "李四",
    "assets_wan": 10.0,
    "sme_industry": "软件和信息技术服务业",
}


def test_every_project_column_has_one_tier() -> None:
    columns = set(Project.__table__.columns.keys()) - BOOKKEEPING
    tiers = (PROJECT_PUBLIC_FIELDS, PROJECT_MEMBER_FIELDS, PROJECT_PRIVATE_FIELDS)
    for column in sorted(columns):
        assert sum(column in t for t in tiers) == 1, f"{column}: in {sum(column in t for t in tiers)} tiers"
    assert not (PROJECT_PUBLIC_FIELDS & PROJECT_MEMBER_FIELDS)
    assert not ((PROJECT_PUBLIC_FIELDS | PROJECT_MEMBER_FIELDS) & PROJECT_PRIVATE_FIELDS)


@pytest.mark.parametrize("column", sorted(PROJECT_PRIVATE_FIELDS & set(OTHER)))
def test_the_ranking_core_never_sees_a_private_field(column: str) -> None:
    assert project_profile(_project(**{column: OTHER[column]})) == project_profile(_project())


@pytest.mark.parametrize("column", sorted(PROJECT_MEMBER_FIELDS))
def test_the_public_view_hides_exactly_the_member_tier(column: str) -> None:
    before, after = project_profile(_project()), project_profile(_project(**{column: OTHER[column]}))
    assert before != after  # the core ranks logged-in viewers on it
    assert public_view(before) == public_view(after)  # and never the public


@pytest.mark.parametrize("column", sorted(PROJECT_PUBLIC_FIELDS & set(OTHER)))
def test_the_public_view_keeps_the_public_fields(column: str) -> None:
    before, after = project_profile(_project()), project_profile(_project(**{column: OTHER[column]}))
    if before != after:  # the core uses it (province does; a contest's name does not)
        assert public_view(before) != public_view(after)


def test_public_hidden_fields_name_profile_fields() -> None:
    names = {f.name for f in fields(ProjectProfile)}
    assert set(PUBLIC_HIDDEN_FIELDS) <= names
    hidden = public_view(project_profile(_project()))
    assert all(getattr(hidden, f) == v for f, v in PUBLIC_HIDDEN_FIELDS.items())


def test_record_texts_hold_public_fields_only() -> None:
    assert set(PROJECT_TEXT_FIELDS) <= PROJECT_PUBLIC_FIELDS
    assert not set(INSTITUTION_TEXT_FIELDS) & INSTITUTION_PRIVATE_FIELDS
    base = project_record_text(_project())
    for column in sorted((PROJECT_MEMBER_FIELDS | PROJECT_PRIVATE_FIELDS) & set(OTHER)):
        assert project_record_text(_project(**{column: OTHER[column]})) == base, column
    for column in PROJECT_TEXT_FIELDS:
        assert project_record_text(_project(**{column: OTHER[column]})) != base, column


def test_institution_text_leaves_out_its_contacts() -> None:
    inst = Institution(
        id=1,
        name="示例创投",
        kind=InstitutionKind.VC,
        description="专注硬科技早期投资。",
        industries=["航空航天"],
        stages=["初创期"],
        services=[],
        contact_name="王五",
        contact_phone="13700000000",
        contact_email="w@example.com",
    )
    text = institution_record_text(inst)
    assert "示例创投" in text and InstitutionKind.VC.value in text and "航空航天" in text
    assert "王五" not in text and "13700000000" not in text and "w@example.com" not in text
