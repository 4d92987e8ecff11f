"""Saved searches and alerts: save, re-run, notify (deduplicated, rate-limited), digest, count the funnel.

A run ranks each active saved search exactly as its page does (app.services), compares the top
`rank_threshold` with what it held at the last run (its baseline), and turns each project new to that
top into a notification with the reasons of the match the user may read. The database refuses a second
notification of one project for one search, so concurrent runs cannot alert twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from flask import current_app
from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from sqlalchemy import and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import services
from app.access import can_edit_need, can_view_institution_private, visible_reasons
from app.api.models import QUERY_LABELS, filter_value_schemas
from app.extensions import db
from app.params import project_filter
from app.pipeline.states import CHINA_TZ
from app.schemas import (
    CONTROL_MESSAGE,
    SINGLE_LINE_PATTERN,
    InputError,
    JsonId,
    _Strict,
    has_control,
    missing,
    publish_without_nulls,
    validate,
    whole,
)
from models import Connection, Contest, Institution, Need, Project
from models.accounts import User
from models.alerts import AlertFrequency, AlertSettings, Notification, SavedSearch, SearchKind
from models.base import utcnow
from models.db import rowcount
from models.enums import NeedStatus, Role, Stage

log = logging.getLogger(__name__)

#: The query parameters of a project filter, in the order they are shown.
FILTER_KEYS = ("q", "contest", "contest_kind", "award", "group", "industry", "province", "stage")
#: Their Chinese names (those the API's error messages use).
FILTER_LABELS = {key: QUERY_LABELS[key] for key in FILTER_KEYS}
LABELS = {
    "name": "名称",
    "kind": "列表类型",
    "target_id": "列表所属",
    "rank_threshold": "提醒名次",
    "frequency": "邮件频率",
    "filters": "筛选条件",
    "active": "启用",
}
#: Largest rank a search may watch (the ranked pages show at most this many).
MAX_RANK = 100
DEFAULT_RANK = 10


# --- input -----------------------------------------------------------------------------------------


def _frequency(v: Any) -> Any:
    if isinstance(v, AlertFrequency):
        return v
    if isinstance(v, str):
        try:
            return AlertFrequency.from_label(v.strip())
        except ValueError:
            pass
    raise ValueError(f"应为以下之一：{'、'.join(AlertFrequency.labels())}")


def _rank(v: Any) -> Any:
    v = whole(v)
    if isinstance(v, str) and v.strip().isascii() and v.strip().isdigit():
        v = int(v.strip())
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("应为整数名次，如 10 表示前 10 名")
    if not 1 <= v <= MAX_RANK:
        raise ValueError(f"应在 1 到 {MAX_RANK} 之间")
    return v


Frequency = Annotated[AlertFrequency, BeforeValidator(_frequency)]
Rank = Annotated[
    int, BeforeValidator(_rank), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_RANK})
]


class SearchIn(_Strict):
    """A new saved search: which ranked list, its filters, the rank that counts and how often to mail."""

    labels: ClassVar[dict[str, str]] = LABELS  # Chinese field names for the API's schema check

    name: str = Field(min_length=1, max_length=60)
    kind: Literal["institution", "need"]
    target_id: JsonId
    filters: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra={
            "propertyNames": {"enum": list(FILTER_KEYS)},
            "properties": filter_value_schemas(),
            "additionalProperties": {"type": "string", "pattern": SINGLE_LINE_PATTERN},
        },
    )
    rank_threshold: Rank = DEFAULT_RANK
    frequency: Frequency = AlertFrequency.DAILY

    @field_validator("filters", mode="before")
    @classmethod
    def _filters(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise ValueError('应为对象，如 {"industry": "人工智能"}')
        unknown = [repr(str(k))[1:-1][:30] for k in v if k not in FILTER_KEYS]  # shown escaped
        if unknown:
            raise ValueError(f"不认识的筛选项：{'、'.join(unknown[:5])}；可选：{'、'.join(FILTER_KEYS)}")
        if any(not isinstance(x, str | int) or isinstance(x, bool) for x in v.values()):
            raise ValueError("筛选值应为文本")
        if any(isinstance(x, str) and has_control(x) for x in v.values()):
            raise ValueError(CONTROL_MESSAGE)
        return {k: str(x) for k, x in v.items()}


class SearchPatch(_Strict):
    """A change to a saved search (its list and filters stay: save a new search for other filters)."""

    model_config = ConfigDict(json_schema_extra=publish_without_nulls)

    labels: ClassVar[dict[str, str]] = LABELS  # Chinese field names for the API's schema check

    name: str | None = Field(default=None, min_length=1, max_length=60)
    rank_threshold: Rank | None = None
    frequency: Frequency | None = None
    active: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            nulls = {
                str(k): f"{LABELS.get(str(k), k)}：不能为空（不修改就不要提供）"
                for k, v in data.items()
                if v is None
            }
            if nulls:
                raise InputError(nulls)
        return data

    @field_validator("active", mode="before")
    @classmethod
    def _active(cls, v: Any) -> Any:
        if v in ("1", "on", "true"):
            return True
        if v in ("0", "off", "false", ""):
            return False
        if not isinstance(v, bool):
            raise ValueError("应为是或否")
        return v


def parse(model: type[Any], data: Mapping[str, Any]) -> Any:
    """Validate into a model; errors name the fields in Chinese."""
    try:
        return validate(model, dict(data))
    except InputError as exc:
        fields = {}
        for key, message in exc.fields.items():
            text = message.split("：", 1)[1] if "：" in message else message
            fields[key] = f"{LABELS.get(key, key)}：{text}"
        raise InputError(fields) from None


def refuse_json_strings(data: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Refuse ids and ranks sent as JSON strings ("12"): in JSON they are numbers (forms send text)."""
    bad = {k: f"{LABELS.get(k, k)}：应为 JSON 整数，不是文本" for k in keys if isinstance(data.get(k), str)}
    if bad:
        raise InputError(bad)


def canonical_filters(raw: Mapping[str, str]) -> dict[str, str]:
    """Return the filter parameters validated as the ranked pages validate them, blanks dropped."""
    f = project_filter(raw)
    return filter_args(f)


def filter_args(f: services.ProjectFilter) -> dict[str, str]:
    """Return the query parameters of a project filter (what a page URL would carry)."""
    values: dict[str, Any] = {
        "q": f.q,
        "contest": f.contest_id,
        "contest_kind": f.contest_kind,
        "award": f.award,
        "group": f.group,
        "industry": f.industry,
        "province": f.province,
        "stage": f.stage,
    }
    return {k: str(getattr(v, "value", v)) for k, v in values.items() if v is not None}


def stored_filter(args: Mapping[str, str]) -> services.ProjectFilter:
    """Return the project filter of stored parameters (validated when saved; the stage needs no request)."""
    rest = {k: v for k, v in args.items() if k != "stage"}
    f = project_filter(rest)
    if args.get("stage"):
        f = replace(f, stage=Stage.from_label(args["stage"]))
    return f


def describe_filters(args: Mapping[str, str]) -> str:
    """Return the filters in words, e.g. 行业：人工智能；地区：广东."""
    parts = []
    for key in FILTER_KEYS:
        if args.get(key):
            value = args[key]
            if key == "contest" and value.isdigit():
                contest = db.session.get(Contest, int(value))
                value = contest.name if contest else value
            parts.append(f"{FILTER_LABELS[key]}：{value}")
    return "；".join(parts) or "不限"


# --- who may watch what ----------------------------------------------------------------------------


def may_watch(user: User | None, kind: str, target: Institution | Need) -> bool:
    """Return True if the user may save a search on this ranked list.

    An institution's ranked projects and a need's matches (with the institution's own pipeline taken into
    account) are watched by that institution's members and the secretariat.
    """
    if user is None or not user.is_active or user.role not in (Role.ADMIN, Role.INSTITUTION):
        return False
    if getattr(target, "archived_at", None) is not None:
        return False
    if kind == "need":
        return isinstance(target, Need) and can_edit_need(user, target)
    return isinstance(target, Institution) and can_view_institution_private(user, target.id)


def _target(session: Session, kind: str, target_id: int) -> Institution | Need | None:
    row: Institution | Need | None = (
        session.get(Need, target_id) if kind == "need" else session.get(Institution, target_id)
    )
    return None if row is None or row.archived_at is not None else row


def create_search(session: Session, user: User, values: SearchIn) -> SavedSearch:
    """Save a search for the user (authorised on the validated values) with today's list as its baseline.

    Raises:
        InputError: the list does not exist or the filters are invalid.
        PermissionError: the user may not watch this list.
    """
    target = _target(session, values.kind, values.target_id)
    if target is None:
        label = "对接需求" if values.kind == "need" else "机构"
        raise missing("target_id", f"列表所属：{label}不存在")
    if not may_watch(user, values.kind, target):
        raise PermissionError("may not watch this list")
    try:
        filters = canonical_filters(values.filters)
    except InputError as exc:
        raise InputError({f"filters.{k}": v for k, v in exc.fields.items()}) from None
    search = SavedSearch(
        user_id=user.id,
        name=values.name,
        kind=SearchKind.NEED if values.kind == "need" else SearchKind.INSTITUTION,
        institution_id=target.institution_id if isinstance(target, Need) else target.id,
        need_id=target.id if isinstance(target, Need) else None,
        filters=filters,
        rank_threshold=values.rank_threshold,
        frequency=values.frequency,
        active=True,
        baseline=[],
    )
    session.add(search)
    session.flush()
    _rebaseline(session, search)
    return search


def update_search(session: Session, search: SavedSearch, values: SearchPatch) -> SavedSearch:
    """Apply a change; a new rank threshold takes today's list as the new baseline (no flood of alerts)."""
    if values.name is not None:
        search.name = values.name
    if values.frequency is not None and values.frequency is not search.frequency:
        search.frequency = values.frequency
        # What is waiting for a digest follows the new choice.
        session.execute(
            update(Notification)
            .where(Notification.search_id == search.id, Notification.emailed_at.is_(None))
            .values(frequency=values.frequency)
        )
    rebaseline = False
    if values.rank_threshold is not None and values.rank_threshold != search.rank_threshold:
        search.rank_threshold = values.rank_threshold
        rebaseline = True
    if values.active is not None and values.active != search.active:
        search.active = values.active
        rebaseline = rebaseline or values.active  # resuming: what entered while paused is not news
    if rebaseline:
        _rebaseline(session, search)
    return search


def _rebaseline(session: Session, search: SavedSearch) -> None:
    """Take the search's current top ranks as already seen.

    While the ranking is degraded (lexical only, the index rebuilding) the first full run takes the
    baseline instead: a lesser list would make its differences look like news.
    """
    search.baseline = [r.row.id for r in rank(session, search)]
    search.last_run_at = None if services.get_matching().degraded else utcnow()


def rank(session: Session, search: SavedSearch) -> list[services.RankedRow]:
    """Return the search's top `rank_threshold` projects, ranked as on its page for the institution."""
    f = stored_filter(search.filters or {})
    if search.kind is SearchKind.NEED:
        need = search.need
        if need is None:
            return []
        return services.matches_for_need(session, need, search.rank_threshold, f, private=True)
    return services.matches_for_institution(
        session, search.institution_id, search.rank_threshold, f, private=True
    )


# --- running the searches ----------------------------------------------------------------------------


@dataclass
class RunReport:
    """What one run did."""

    searches: int = 0
    notified: int = 0
    deferred: int = 0
    skipped: int = 0
    created_searches: int = 0
    users: set[int] = field(default_factory=set)


def ensure_need_searches(session: Session) -> int:
    """Give each member of an institution with an open need a saved search on it (once; returns how many).

    A posted need is watched like a saved search: a member who pauses or deletes it is not given another.
    """
    rows = session.execute(
        select(Need, User)
        .join(User, and_(User.institution_id == Need.institution_id, User.role == Role.INSTITUTION))
        .where(Need.archived_at.is_(None), Need.status == NeedStatus.OPEN)
    ).all()
    keys = {f"need:{need.id}:user:{user.id}" for need, user in rows}
    existing = set(session.scalars(select(SavedSearch.auto_key).where(SavedSearch.auto_key.in_(keys))))
    made = 0
    for need, user in rows:
        key = f"need:{need.id}:user:{user.id}"
        if key in existing or not user.is_active:
            continue
        search = SavedSearch(
            user_id=user.id,
            name=f"对接需求：{need.title}"[:60],
            kind=SearchKind.NEED,
            institution_id=need.institution_id,
            need_id=need.id,
            filters={},
            rank_threshold=DEFAULT_RANK,
            frequency=AlertFrequency.DAILY,
            active=True,
            auto_key=key,
            baseline=[],
        )
        session.add(search)
        try:
            session.flush()
            _rebaseline(session, search)
            session.commit()
            made += 1
        except IntegrityError:  # another run made it first
            session.rollback()
    return made


def china_day_start(now: datetime) -> datetime:
    """Return the start of the China calendar day of `now` (the rate limit's day)."""
    local = now.astimezone(CHINA_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _sent_today(session: Session, user_id: int, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.user_id == user_id, Notification.created_at >= china_day_start(now)
            )
        )
        or 0
    )


def _allowed(user: User, search: SavedSearch) -> bool:
    target: Institution | Need | None
    if search.kind is SearchKind.NEED:
        target = search.need
        if target is None or target.status is not NeedStatus.OPEN:
            return False
    else:
        target = search.institution
    return target is not None and may_watch(
        user, "need" if search.kind is SearchKind.NEED else "institution", target
    )


def run_searches(
    session: Session, search_ids: Iterable[int] | None = None, now: datetime | None = None
) -> RunReport:
    """Re-run the active saved searches (or the given ones) and record the new entrants as notifications.

    Skipped while the ranking is degraded (lexical only while the index rebuilds): a lesser ranking
    would show other projects as new.
    """
    report = RunReport()
    now = now or utcnow()
    report.created_searches = ensure_need_searches(session)
    if services.get_matching().degraded:
        log.warning("alerts: ranking degraded; saved searches not run")
        return report
    stmt = select(SavedSearch).where(SavedSearch.active.is_(True)).order_by(SavedSearch.id)
    if search_ids is not None:
        stmt = stmt.where(SavedSearch.id.in_(list(search_ids)))
    limit = int(current_app.config["ALERTS_DAILY_LIMIT"])
    budget: dict[int, int] = {}
    for search_id in list(session.scalars(stmt.with_only_columns(SavedSearch.id))):
        search = session.get(SavedSearch, search_id)
        user = session.get(User, search.user_id) if search is not None else None
        if search is None or user is None or not _allowed(user, search):
            report.skipped += 1
            continue
        report.searches += 1
        try:
            ranked = rank(session, search)
            if search.last_run_at is None:  # never run: today's list is the baseline, not news
                search.baseline = [r.row.id for r in ranked]
                search.last_run_at = now
                session.commit()
                continue
            if user.id not in budget:
                budget[user.id] = max(0, limit - _sent_today(session, user.id, now))
            seen = set(search.baseline or ())
            fresh = [r for r in ranked if r.row.id not in seen]
            notified = set(
                session.scalars(
                    select(Notification.project_id).where(
                        Notification.search_id == search.id,
                        Notification.project_id.in_([r.row.id for r in fresh]),
                    )
                )
            )
            inst = search.institution
            deferred: set[int] = set()
            for position, r in enumerate(ranked, start=1):
                if r.row.id in seen or r.row.id in notified:
                    continue
                if budget[user.id] <= 0:
                    deferred.add(r.row.id)  # left out of the baseline: alerted on a later day if still in
                    continue
                reasons = visible_reasons(user, r.row, inst, r.match.reasons)
                session.add(
                    Notification(
                        user_id=user.id,
                        search_id=search.id,
                        search_name=search.name,
                        kind=search.kind,
                        institution_id=search.institution_id,
                        need_id=search.need_id,
                        project_id=r.row.id,
                        rank=position,
                        rank_threshold=search.rank_threshold,
                        score=float(r.match.score),
                        reasons=[x.text for x in reasons],
                        frequency=search.frequency,
                        created_at=now,
                    )
                )
                budget[user.id] -= 1
                report.notified += 1
                report.users.add(user.id)
            report.deferred += len(deferred)
            search.baseline = [r.row.id for r in ranked if r.row.id not in deferred]
            search.last_run_at = now
            session.commit()
        except IntegrityError:  # a concurrent run alerted first: its notifications stand
            session.rollback()
        except Exception:
            session.rollback()
            log.exception("alerts: saved search %s failed", search_id)
    if report.deferred:
        log.info("alerts: %d notifications deferred by the daily limit", report.deferred)
    return report


# --- reading ------------------------------------------------------------------------------------------


def unread_count(session: Session, user_id: int) -> int:
    """Return how many of the user's notifications are unread."""
    return (
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.user_id == user_id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def mark_viewed(session: Session, user_id: int, project_id: int, now: datetime | None = None) -> int:
    """Record that the user opened a project it was alerted to (the funnel's view step); return how many."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.project_id == project_id,
            Notification.viewed_at.is_(None),
        )
        .values(viewed_at=now or utcnow())
    )
    return rowcount(result)


def settings_of(session: Session, user_id: int) -> AlertSettings:
    """Return the user's alert settings (made with the defaults when missing; not committed)."""
    row = session.get(AlertSettings, user_id)
    if row is None:
        row = AlertSettings(user_id=user_id, email_enabled=True, last_digest={})
        session.add(row)
    return row


def set_email(session: Session, user_id: int, enabled: bool, now: datetime | None = None) -> AlertSettings:
    """Turn the user's alert e-mails on or off; turning them back on does not mail what piled up meanwhile."""
    now = now or utcnow()
    row = settings_of(session, user_id)
    if enabled and not row.email_enabled:
        session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.emailed_at.is_(None))
            .values(emailed_at=now)
        )
    row.email_enabled = enabled
    row.unsubscribed_at = None if enabled else now
    return row


# --- the funnel ---------------------------------------------------------------------------------------


FUNNEL_STEPS = (("alerts", "提醒"), ("viewed", "查看项目"), ("requested", "申请对接"), ("signed", "签约"))


def funnel(session: Session, since: datetime | None = None) -> dict[str, dict[str, int]]:
    """Return the funnel counts, overall and by kind of search: alerts, viewed, requested, signed.

    A request or a signature counts for an alert when the alerted institution's connection with the
    project was requested (by either side) or signed after the alert.
    """
    conn = and_(
        Connection.project_id == Notification.project_id,
        Connection.institution_id == Notification.institution_id,
    )
    requested = func.sum(case((Connection.requested_at >= Notification.created_at, 1), else_=0))
    signed = func.sum(case((Connection.signed_at >= Notification.created_at, 1), else_=0))
    viewed = func.count(Notification.viewed_at)
    stmt = (
        select(Notification.kind, func.count(Notification.id), viewed, requested, signed)
        .select_from(Notification)
        .outerjoin(Connection, conn)
        .group_by(Notification.kind)
    )
    if since is not None:
        stmt = stmt.where(Notification.created_at >= since)
    out: dict[str, dict[str, int]] = {}
    total = dict.fromkeys(("alerts", "viewed", "requested", "signed"), 0)
    for kind, alerts, n_viewed, n_requested, n_signed in session.execute(stmt):
        row = {
            "alerts": int(alerts or 0),
            "viewed": int(n_viewed or 0),
            "requested": int(n_requested or 0),
            "signed": int(n_signed or 0),
        }
        out[kind.value] = row
        for k, v in row.items():
            total[k] += v
    out["合计"] = total
    return out


def recent_notifications(session: Session, limit: int = 50) -> list[Notification]:
    """Return the latest notifications (for the secretariat's funnel page)."""
    return list(session.scalars(select(Notification).order_by(Notification.id.desc()).limit(limit)))


def project_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Return {project id: name}."""
    ids = list(set(ids))
    if not ids:
        return {}
    return dict(session.execute(select(Project.id, Project.name).where(Project.id.in_(ids))).all())


def since_days(days: int, now: datetime | None = None) -> datetime:
    """Return the moment `days` days ago."""
    return (now or utcnow()) - timedelta(days=days)
