"""Parse query-string parameters (filters, paging, k) for pages and the API alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from app.schemas import MAX_ID, query_error
from app.services import InstitutionFilter, ProjectFilter
from models.enums import (
    INDUSTRIES,
    PROVINCES,
    SIDES,
    Award,
    ContestKind,
    InstitutionKind,
    LabelEnum,
    ProjectGroup,
    Stage,
)


def _get(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _enum(args: Mapping[str, Any], key: str, enum_cls: type[LabelEnum], label: str) -> Any:
    value = _get(args, key)
    if value is None:
        return None
    try:
        return enum_cls.from_label(value)
    except ValueError:
        raise query_error({key: f"{label}：应为以下之一：{'、'.join(enum_cls.labels())}"}) from None


def _member(args: Mapping[str, Any], key: str, allowed: tuple[str, ...], label: str) -> str | None:
    value = _get(args, key)
    if value is not None and value not in allowed:
        raise query_error({key: f"{label}：不认识的取值「{value[:40]}」"})
    return value


def int_param(args: Mapping[str, Any], key: str, default: int, lo: int, hi: int, label: str) -> int:
    """Return an integer parameter within [lo, hi], or raise InputError naming it."""
    raw = _get(args, key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise query_error({key: f"{label}：应为整数"}) from None
    if not lo <= value <= hi:
        raise query_error({key: f"{label}：应在 {lo} 到 {hi} 之间"})
    return value


def _private_filter(value: Any, key: str, label: str) -> Any:
    """Refuse a filter on a non-public project field to visitors who are not logged in."""
    from app.access import current_user

    if value is not None and current_user() is None:
        raise query_error({key: f"{label}：登录后才能按该项筛选"})
    return value


def project_filter(args: Mapping[str, Any]) -> ProjectFilter:
    """Return the project filter the parameters ask for."""
    contest = _get(args, "contest")
    contest_id = None
    if contest is not None:
        try:
            contest_id = int(contest)
        except ValueError:
            raise query_error({"contest": "赛事：应为赛事编号"}) from None
        if not 1 <= contest_id <= MAX_ID:
            raise query_error({"contest": "赛事：应为赛事编号"})
    q = _get(args, "q")
    return ProjectFilter(
        contest_id=contest_id,
        contest_kind=_enum(args, "contest_kind", ContestKind, "赛事类型"),
        award=_enum(args, "award", Award, "获奖等级"),
        group=_enum(args, "group", ProjectGroup, "组别"),
        industry=_member(args, "industry", INDUSTRIES, "行业"),
        province=_member(args, "province", PROVINCES, "地区"),
        stage=_private_filter(_enum(args, "stage", Stage, "阶段"), "stage", "阶段"),
        q=q[:100] if q else None,
    )


def institution_filter(args: Mapping[str, Any], kind_key: str = "kind") -> InstitutionFilter:
    """Return the institution filter the parameters ask for.

    On match routes `kind` names the side (fund/base/platform), so the institution kind is read from
    `institution_kind` there.
    """
    q = _get(args, "q")
    return InstitutionFilter(
        kind=_enum(args, kind_key, InstitutionKind, "机构类型"),
        side=_member(args, "side", SIDES, "类别"),
        industry=_member(args, "industry", INDUSTRIES, "行业"),
        province=_member(args, "province", PROVINCES, "地区"),
        q=q[:100] if q else None,
    )


def k_param(args: Mapping[str, Any], default: int = 10) -> int:
    """Return the number of matches asked for (1..MAX_K)."""
    return int_param(args, "k", default, 1, int(current_app.config["MAX_K"]), "返回条数")


def side_param(args: Mapping[str, Any], default: str = "fund") -> str:
    """Return the side asked for: fund, base or platform."""
    value = _get(args, "kind") or default
    if value not in SIDES:
        raise query_error({"kind": "类别：应为 fund（投融资）、base（落地基地）或 platform（服务平台）"})
    return value
