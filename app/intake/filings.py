"""The 备案表 of a contest (附件4 of the notice): validation against the contest plan, and storage."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field, field_validator, model_validator

from app.imports import contest_key
from app.schemas import InputError, OptStr, _Strict, validate
from models import Contest, ContestFiling
from models.enums import ContestKind

#: 赛事类型 as the form offers it; the overseas contest files as 境外区域赛决赛.
FILING_KINDS: dict[str, ContestKind] = {
    "区域赛": ContestKind.REGIONAL,
    "专题赛": ContestKind.THEMATIC,
    "赛道赛": ContestKind.TRACK,
    "境外区域赛决赛": ContestKind.OVERSEAS,
}
PLAN_MAX = 500
LABELS = {
    "filing_unit": "填表单位",
    "filed_on": "填表日期",
    "name": "赛事名称",
    "kind": "赛事类型",
    "field": "行业领域/产业链",
    "starts_on": "开始日期",
    "ends_on": "结束日期",
    "organisers": "组织机构",
    "final_venue": "决赛地点",
    "plan": "赛事方案",
    "declaration": "举办单位声明",
    "liaison": "联络员及处室（部门）",
    "liaison_phone": "联络员电话",
    "liaison_email": "联络员邮箱",
    "site_admin": "大赛官网赛事管理员",
    "site_admin_phone": "管理员电话",
    "site_admin_email": "管理员邮箱",
}


class FilingIn(_Strict):
    """The fields of the 备案表, as the organiser fills them."""

    filing_unit: str = Field(min_length=2, max_length=200)
    filed_on: date
    name: str = Field(min_length=4, max_length=200)
    kind: str
    field: OptStr = Field(default=None, max_length=100)
    starts_on: date
    ends_on: date
    organisers: str = Field(min_length=2, max_length=2000)
    final_venue: str = Field(min_length=2, max_length=200)
    plan: str = Field(min_length=20, max_length=PLAN_MAX)
    declaration: bool
    liaison: str = Field(min_length=2, max_length=100)
    liaison_phone: str = Field(min_length=5, max_length=32)
    liaison_email: str = Field(min_length=3, max_length=120)
    site_admin: OptStr = Field(default=None, max_length=64)
    site_admin_phone: OptStr = Field(default=None, max_length=32)
    site_admin_email: OptStr = Field(default=None, max_length=120)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in FILING_KINDS:
            raise ValueError(f"应为以下之一：{'、'.join(FILING_KINDS)}")
        return v

    @field_validator("declaration", mode="before")
    @classmethod
    def _declared(cls, v: Any) -> bool:
        if v not in (True, "1", "on", "true", "y"):
            raise ValueError("须确认举办单位声明")
        return True

    @field_validator("liaison_email", "site_admin_email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and ("@" not in v or v.startswith("@") or v.endswith("@")):
            raise ValueError("邮箱格式不正确")
        return v

    @field_validator("plan")
    @classmethod
    def _plan(cls, v: str) -> str:
        if "跟踪" not in v and "对接" not in v:
            raise ValueError("须包含项目跟踪及对接服务计划")
        return v

    @model_validator(mode="after")
    def _dates(self) -> FilingIn:
        if self.ends_on < self.starts_on:
            raise InputError({"ends_on": "结束日期：不能早于开始日期"})
        if self.kind in ("专题赛", "赛道赛") and not self.field:
            what = "行业领域" if self.kind == "专题赛" else "产业链"
            raise InputError({"field": f"行业领域/产业链：{self.kind}须填写{what}"})
        return self


def check_filing(contest: Contest, data: dict[str, Any]) -> FilingIn:
    """Validate a 备案表 for a contest: fields, then the name and type against the contest plan."""
    from app.schemas import FIELD_LABELS

    FIELD_LABELS_LOCAL = {**FIELD_LABELS, **LABELS}
    try:
        values = validate(FilingIn, data)
    except InputError as exc:
        # the shared translation names fields by the project labels: rename ours
        raise InputError({k: _relabel(k, v, FIELD_LABELS_LOCAL) for k, v in exc.fields.items()}) from None
    errors: dict[str, str] = {}
    if contest_key(values.name) != contest_key(contest.name):
        errors["name"] = f"赛事名称：须与赛事计划公布的名称一致：{contest.name}"
    if FILING_KINDS[values.kind] is not contest.kind:
        errors["kind"] = f"赛事类型：赛事计划中该赛事为{contest.kind.value}"
    if errors:
        raise InputError(errors)
    values.name = contest.name  # stored as the plan spells it
    return values


def _relabel(key: str, message: str, labels: dict[str, str]) -> str:
    head, sep, tail = message.partition("：")
    return f"{labels.get(key, head)}{sep}{tail}" if sep else message


def save_filing(session: Any, contest: Contest, values: FilingIn, user_id: int | None) -> ContestFiling:
    """Create or replace the contest's 备案表 (the caller audits and commits)."""
    from sqlalchemy import select

    row = session.scalar(select(ContestFiling).where(ContestFiling.contest_id == contest.id))
    if row is None:
        row = ContestFiling(contest_id=contest.id)
        session.add(row)
    for key, value in values.model_dump().items():
        setattr(row, key, value)
    row.filed_by_id = user_id
    return row


def filed_plans(session: Any, contest_ids: set[int] | None = None) -> list[dict[str, Any]]:
    """Return each filed contest's code, name, dates, venue and plan (for the quarterly report)."""
    from sqlalchemy import select

    stmt = (
        select(ContestFiling, Contest)
        .join(Contest, Contest.id == ContestFiling.contest_id)
        .order_by(Contest.code)
    )
    if contest_ids is not None:
        stmt = stmt.where(ContestFiling.contest_id.in_(contest_ids or {-1}))
    return [
        {
            "code": c.code,
            "name": c.name,
            "kind": f.kind,
            "dates": f"{f.starts_on.isoformat()} 至 {f.ends_on.isoformat()}",
            "venue": f.final_venue,
            "organisers": f.organisers,
            "plan": f.plan,
            "filed_on": f.filed_on.isoformat(),
        }
        for f, c in session.execute(stmt)
    ]
