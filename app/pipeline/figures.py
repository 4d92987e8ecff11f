"""The one aggregation of the pipeline: the dashboard, the quarterly report and the API all read `figures()`.

Everything is computed from the append-only history (ConnectionEvent), so a past quarter's figures do not
change when a connection moves on later, and the same period always gives the same numbers.

Definitions (Beijing dates; a period is [start, end)):
- funnel: connections opened in the period, by the furthest stage each reached before the period's end
  (a request made directly counts as 推荐 too; 尽职调查 counts funds only);
- entered: how many times each stage was entered during the period (moves, not connections);
- outcomes: connections signed (已签约) during the period and not dissolved before its end; the financing
  amount, landing and service figures are the outcome recorded with the signature;
- follow-up (待跟进): connections still open at the period's end (or now) with no activity for more than
  FOLLOW_UP_DAYS days.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.pipeline.states import CHINA_TZ, FUNNEL, OPEN_STAGES, china_date
from app.schemas import InputError
from models import Connection, Project
from models.enums import ConnectionStage as S
from models.pipeline import ConnectionEvent, EventAction, OutcomeKind

#: Breakdown dimensions, in display order: key -> Chinese heading.
DIMENSIONS: dict[str, str] = {
    "contest_kind": "赛事类型",
    "contest": "赛事",
    "institution_kind": "机构类型",
    "region": "地区",
    "industry": "行业",
    "award": "获奖等级",
}
RANK = {stage: n for n, stage in enumerate(FUNNEL)}
RANK[S.REFUSED] = RANK[S.REQUESTED]  # a refusal answers a request
QUARTER_RE = re.compile(r"^\s*(\d{4})\s*[-]?\s*[Qq]([1-4])\s*$")
#: The longest period a user may ask for (the trend and the lists stay readable).
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    """A span of Beijing dates [start, end) with its label (e.g. 2026Q3)."""

    start: date
    end: date
    label: str
    quarter: str | None = None

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), CHINA_TZ).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(), CHINA_TZ).astimezone(UTC)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def contains(self, at: datetime) -> bool:
        return self.start_at <= at < self.end_at

    @classmethod
    def of_quarter(cls, year: int, q: int) -> Period:
        start = date(year, 3 * q - 2, 1)
        end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
        return cls(start, end, f"{year}年第{q}季度", f"{year}Q{q}")

    @classmethod
    def containing(cls, day: date) -> Period:
        """Return the quarter a date falls in."""
        return cls.of_quarter(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def last_full_quarter(cls, today: date) -> Period:
        """Return the last quarter that has ended by `today` (the default of the dashboard)."""
        return cls.containing(cls.containing(today).start - timedelta(days=1))

    def previous(self) -> Period:
        return Period.containing(self.start - timedelta(days=1))

    def next(self) -> Period:
        return Period.containing(self.end)


def parse_quarter(text: str) -> Period:
    """Return the quarter named like 2026Q3 (or 2026-Q3), or raise InputError."""
    m = QUARTER_RE.match(text or "")
    if not m or not 2000 <= int(m.group(1)) <= 2100:
        raise InputError({"quarter": "季度：格式应为 2026Q3（年份加 Q1–Q4）"})
    return Period.of_quarter(int(m.group(1)), int(m.group(2)))


def period_from_args(args: Mapping[str, Any], today: date, current: bool = False) -> Period:
    """Return the period a query string asks for: ?quarter=2026Q3, or ?from=2026-07-01&to=2026-09-30.

    Without either, the last full quarter, or with `current` the quarter so far (the dashboard's default).
    `to` is inclusive.
    """
    quarter = (args.get("quarter") or "").strip()
    start_s, end_s = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if quarter and (start_s or end_s):
        raise InputError({"quarter": "季度：请选择季度，或填写起止日期，不要同时使用"})
    if quarter:
        return parse_quarter(quarter)
    if not (start_s or end_s):
        return Period.containing(today) if current else Period.last_full_quarter(today)
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for key, raw, label in (("from", start_s, "开始日期"), ("to", end_s, "结束日期")):
        try:
            days[key] = date.fromisoformat(raw)
        except ValueError:
            errors[key] = f"{label}：{'必填' if not raw else '格式应为 YYYY-MM-DD'}"
            continue
        if not 2000 <= days[key].year <= 2100:
            errors[key] = f"{label}：应在 2000 年到 2100 年之间"
    if errors:
        raise InputError(errors)
    start, last = days["from"], days["to"]
    if last < start:
        raise InputError({"to": "结束日期：不能早于开始日期"})
    if (last - start).days > MAX_DAYS:
        raise InputError({"to": "结束日期：统计区间最长三年"})
    return Period(start, last + timedelta(days=1), f"{start.isoformat()} 至 {last.isoformat()}")


# --- the figures ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One signature counted in a period: the connection and what it achieved."""

    connection: Connection
    at: datetime
    kind: OutcomeKind
    amount_wan: float = 0.0
    round: str | None = None
    base: str | None = None
    area_m2: float = 0.0
    service_kind: str | None = None
    date: str | None = None


@dataclass
class Tally:
    """The figures of one group (the whole period, one region, one month, ...)."""

    opened: int = 0
    signed: int = 0
    financing_wan: float = 0.0
    financed: int = 0
    landed: int = 0
    landed_area_m2: float = 0.0
    services: int = 0

    def add_outcome(self, o: Outcome) -> None:
        self.signed += 1
        if o.kind is OutcomeKind.FINANCING:
            self.financed += 1
            self.financing_wan += o.amount_wan
        elif o.kind is OutcomeKind.LANDING:
            self.landed += 1
            self.landed_area_m2 += o.area_m2
        else:
            self.services += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "signed": self.signed,
            "financing_wan": round(self.financing_wan, 2),
            "financed": self.financed,
            "landed": self.landed,
            "landed_area_m2": round(self.landed_area_m2, 1),
            "services": self.services,
        }


@dataclass
class Figures:
    """Everything the dashboard, the report and the API show for one period."""

    period: Period
    as_of: datetime
    follow_up_days: int
    contest_ids: frozenset[int] | None
    funnel: list[dict[str, Any]] = field(default_factory=list)
    entered: dict[str, int] = field(default_factory=dict)
    totals: Tally = field(default_factory=Tally)
    refused: int = 0
    terminated: int = 0
    follow_up: int = 0
    breakdowns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    months: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # every connection active in the period

    def success_cases(self) -> list[dict[str, Any]]:
        """Return the connections signed in the period, newest first, as plain rows."""
        return [_case(o) for o in sorted(self.outcomes, key=lambda o: (o.at, o.connection.id), reverse=True)]

    def as_json(self) -> dict[str, Any]:
        """Return the figures as JSON-ready data (the API's answer and the charts' input)."""
        return {
            "period": {
                "label": self.period.label,
                "quarter": self.period.quarter,
                "from": self.period.start.isoformat(),
                "to": self.period.last_day.isoformat(),
            },
            "as_of": self.as_of.isoformat(),
            "follow_up_days": self.follow_up_days,
            "scope": None if self.contest_ids is None else sorted(self.contest_ids),
            "funnel": self.funnel,
            "entered": self.entered,
            "totals": {
                **self.totals.as_json(),
                "refused": self.refused,
                "terminated": self.terminated,
                "follow_up": self.follow_up,
            },
            "breakdowns": self.breakdowns,
            "months": self.months,
            "success_cases": self.success_cases(),
        }


def figures(
    session: Session,
    period: Period,
    contest_ids: Iterable[int] | None = None,
    follow_up_days: int = 14,
    now: datetime | None = None,
) -> Figures:
    """Return the pipeline's figures for a period, optionally for some contests only.

    Args:
        session: a database session.
        period: the Beijing-date span to report.
        contest_ids: restrict to the projects of these contests (an organiser's view); None = all.
        follow_up_days: an open connection idle longer than this is flagged 待跟进.
        now: the present (default: the clock); the follow-up count is taken at min(now, period end).
    """
    now = now or datetime.now(UTC)
    scope = None if contest_ids is None else frozenset(contest_ids)
    out = Figures(period, min(now, period.end_at), follow_up_days, scope)
    trend_start = _month_start(period.last_day, back=11)
    connections = _load(session, scope, period.end_at)

    reached: Counter[S] = Counter()
    entered: Counter[S] = Counter()
    groups: dict[str, dict[str, Tally]] = {d: defaultdict(Tally) for d in DIMENSIONS}
    months: dict[str, Tally] = {m: Tally() for m in _months(trend_start, period.last_day)}
    for c in connections:
        events = [e for e in c.events if e.at < period.end_at]
        if not events:
            continue
        keys = _keys(c)
        opened_at = events[0].at
        if period.contains(opened_at):
            out.totals.opened += 1
            for dim, key in keys.items():
                groups[dim][key].opened += 1
            furthest = max((RANK.get(e.to_stage, 0) for e in events if e.to_stage in RANK), default=0)
            fund = c.institution.kind.side == "fund"
            for stage in FUNNEL:
                if furthest >= RANK[stage] and (stage is not S.DUE_DILIGENCE or fund):
                    reached[stage] += 1
        month = _month_key(opened_at)
        if month in months:
            months[month].opened += 1
        for e in events:
            if e.action in (EventAction.CREATED, EventAction.MOVED) and period.contains(e.at):
                entered[e.to_stage] += 1
                if e.to_stage is S.REFUSED:
                    out.refused += 1
                elif e.to_stage is S.TERMINATED:
                    out.terminated += 1
        for o in _signings(c, events, period.end_at):
            if period.contains(o.at):
                out.outcomes.append(o)
                out.totals.add_outcome(o)
                for dim, key in keys.items():
                    groups[dim][key].add_outcome(o)
            month = _month_key(o.at)
            if month in months:
                months[month].add_outcome(o)
        active = [e for e in events if period.contains(e.at)]
        idle = _idle_at(events, out.as_of, follow_up_days)
        out.follow_up += idle
        if active:
            out.rows.append(_row(c, events, active, idle))

    out.funnel = [{"stage": s.name, "label": s.value, "count": reached[s]} for s in FUNNEL]
    out.entered = {s.value: entered[s] for s in S}
    out.breakdowns = {
        dim: [
            {"key": key, **t.as_json()}
            for key, t in sorted(
                groups[dim].items(),
                key=lambda kv: (-kv[1].financing_wan, -kv[1].signed, -kv[1].opened, kv[0]),
            )
        ]
        for dim in DIMENSIONS
    }
    out.months = [{"month": m, **t.as_json()} for m, t in months.items()]
    out.rows.sort(key=lambda r: (r["last_activity"], r["id"]), reverse=True)
    return out


def _load(session: Session, scope: frozenset[int] | None, until: datetime) -> list[Connection]:
    """Load the connections with any history before `until` (their projects, institutions, events)."""
    stmt = (
        select(Connection)
        .where(Connection.created_at < until)
        .options(
            selectinload(Connection.events),
            selectinload(Connection.institution),
            selectinload(Connection.project).selectinload(Project.contest),
        )
        .order_by(Connection.id)
    )
    if scope is not None:
        stmt = stmt.where(Connection.project_id.in_(select(Project.id).where(Project.contest_id.in_(scope))))
    return list(session.scalars(stmt))


def _keys(c: Connection) -> dict[str, str]:
    p = c.project
    return {
        "contest_kind": p.contest.kind.value if p.contest else "未知",
        "contest": short_contest(p.contest.name) if p.contest else "未知",
        "institution_kind": c.institution.kind.value,
        "region": p.province or "未填",
        "industry": p.industry or "未填",
        "award": p.award.value if p.award else "无",
    }


def short_contest(name: str) -> str:
    """Return a contest name without the edition's long prefix (第七届“创客中国”…)."""
    for prefix in ("第七届“创客中国”中小企业创新创业大赛", "第七届“创客中国”", "“创客中国”"):
        name = name.replace(prefix, "")
    return name.strip() or "总决赛"


def _signings(c: Connection, events: list[ConnectionEvent], until: datetime) -> list[Outcome]:
    """Return each signature of the connection not dissolved before `until`, with its recorded outcome."""
    out: list[Outcome] = []
    for n, e in enumerate(events):
        if e.action is not EventAction.MOVED or e.to_stage is not S.SIGNED:
            continue
        dissolved = any(
            later.action is EventAction.MOVED and later.from_stage is S.SIGNED and later.at < until
            for later in events[n + 1 :]
        )
        if dissolved:
            continue
        data = (e.detail or {}).get("outcome") or {}
        kind = OutcomeKind.from_label(data.get("kind", "")) if data.get("kind") else _fallback_kind(c)
        out.append(
            Outcome(
                connection=c,
                at=e.at,
                kind=kind,
                amount_wan=float(data.get("amount_wan") or 0),
                round=data.get("round"),
                base=data.get("base"),
                area_m2=float(data.get("area_m2") or 0),
                service_kind=data.get("service_kind"),
                date=data.get("date"),
            )
        )
    return out


def _fallback_kind(c: Connection) -> OutcomeKind:
    from models.pipeline import SIDE_OUTCOME

    return SIDE_OUTCOME[c.institution.kind.side]


def _stage_at(events: list[ConnectionEvent]) -> S:
    return events[-1].to_stage


def _idle_at(events: list[ConnectionEvent], at: datetime, days: int) -> bool:
    """True when, at time `at`, the connection was open and had been quiet for more than `days` days."""
    before = [e for e in events if e.at <= at]
    if not before:
        return False
    return _stage_at(before) in OPEN_STAGES and at - before[-1].at > timedelta(days=days)


def _row(
    c: Connection, events: list[ConnectionEvent], active: list[ConnectionEvent], idle: bool
) -> dict[str, Any]:
    moves = [e for e in active if e.action in (EventAction.CREATED, EventAction.MOVED)]
    return {
        "id": c.id,
        "project": c.project.name,
        "project_id": c.project_id,
        "contest": short_contest(c.project.contest.name) if c.project.contest else "",
        "institution": c.institution.name,
        "institution_id": c.institution_id,
        "institution_kind": c.institution.kind.value,
        "initiated_by": c.initiated_by.value if c.initiated_by else "",
        "opened": china_date(events[0].at).isoformat(),
        "stage": _stage_at(events).value,
        "moves": " → ".join(
            ([moves[0].from_stage.value] if moves and moves[0].from_stage else [])
            + [e.to_stage.value for e in moves]
        ),
        "last_activity": china_date(events[-1].at).isoformat(),
        "follow_up": idle,
        # never requested = an institution's private shortlist (left out of an organiser's list)
        "requested": any(e.to_stage is S.REQUESTED for e in events),
    }


def _case(o: Outcome) -> dict[str, Any]:
    c, p = o.connection, o.connection.project
    if o.kind is OutcomeKind.FINANCING:
        summary = f"{o.round or ''}融资 {o.amount_wan:g} 万元"
    elif o.kind is OutcomeKind.LANDING:
        summary = f"落地{o.base or c.institution.name}，{o.area_m2:g} ㎡"
    else:
        summary = f"获得{o.service_kind or ''}服务"
    return {
        "id": c.id,
        "signed": china_date(o.at).isoformat(),
        "kind": o.kind.value,
        "summary": summary,
        "amount_wan": o.amount_wan if o.kind is OutcomeKind.FINANCING else None,
        "round": o.round,
        "base": o.base,
        "area_m2": o.area_m2 if o.kind is OutcomeKind.LANDING else None,
        "service_kind": o.service_kind,
        "outcome_date": o.date,
        "project": p.name,
        "project_id": p.id,
        "contest": short_contest(p.contest.name) if p.contest else "",
        "award": p.award.value if p.award else "无",
        "region": p.province or "",
        "industry": p.industry,
        "institution": c.institution.name,
        "institution_id": c.institution_id,
        "institution_kind": c.institution.kind.value,
    }


def _month_key(at: datetime) -> str:
    return china_date(at).strftime("%Y-%m")


def _month_start(day: date, back: int) -> date:
    y, m = day.year, day.month - back
    while m <= 0:
        y, m = y - 1, m + 12
    return date(y, m, 1)


def _months(first: date, last: date) -> list[str]:
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
