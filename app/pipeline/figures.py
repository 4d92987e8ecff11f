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
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from app.pipeline.states import CHINA_TZ, FUNNEL, OPEN_STAGES, china_date
from app.schemas import InputError
from models import Connection, Contest, Institution, Project
from models.enums import Award, InstitutionKind
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

    Every well-formed combination names a period (the API document says how, see PeriodQuery):
    `quarter`, when given, is the period (from/to are not read); otherwise from/to, `to` inclusive,
    a lone `from` running to the end of its quarter and a lone `to` from the start of its; two dates in
    either order span the days between them, and a span longer than MAX_DAYS keeps its last MAX_DAYS
    days (up to `to`). The answer's label names the period used. Without any, the last full quarter,
    or with `current` the quarter so far (the dashboard's default). Malformed values raise InputError.
    """
    quarter = (args.get("quarter") or "").strip()
    if quarter:
        return parse_quarter(quarter)
    start_s, end_s = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if not (start_s or end_s):
        return Period.containing(today) if current else Period.last_full_quarter(today)
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for key, raw, label in (("from", start_s, "开始日期"), ("to", end_s, "结束日期")):
        if not raw:
            continue
        try:
            days[key] = date.fromisoformat(raw)
        except ValueError:
            errors[key] = f"{label}：格式应为 YYYY-MM-DD"
            continue
        if not 2000 <= days[key].year <= 2100:
            errors[key] = f"{label}：应在 2000 年到 2100 年之间"
    if errors:
        raise InputError(errors)
    start = days.get("from") or Period.containing(days["to"]).start
    last = days.get("to") or Period.containing(start).end - timedelta(days=1)
    start, last = min(start, last), max(start, last)
    start = max(start, last - timedelta(days=MAX_DAYS))
    return Period(start, last + timedelta(days=1), f"{start.isoformat()} 至 {last.isoformat()}")


# --- the figures ------------------------------------------------------------------------------------


def short_contest(name: str) -> str:
    """Return a contest name without the edition's long prefix (第七届“创客中国”…)."""
    for prefix in ("第七届“创客中国”中小企业创新创业大赛", "第七届“创客中国”", "“创客中国”"):
        name = name.replace(prefix, "")
    return name.strip() or "总决赛"


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

    def add(self, other: Tally) -> None:
        """Add another group's figures to this one (groups that share a key once named)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

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
    """Everything the dashboard, the report and the API show for one period.

    `rows` (every connection active in the period, for the report's list) is read on first use only:
    the dashboard never pays for it.
    """

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
    cases: list[dict[str, Any]] = field(default_factory=list)  # the signatures counted, newest first
    load_rows: Callable[[], list[dict[str, Any]]] | None = field(default=None, repr=False)
    _rows: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every connection active in the period (newest activity first), as plain rows."""
        if self._rows is None:
            self._rows = self.load_rows() if self.load_rows is not None else []
        return self._rows

    def success_cases(self) -> list[dict[str, Any]]:
        """Return the connections signed in the period, newest first, as plain rows."""
        return list(self.cases)

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


# --- the SQL ------------------------------------------------------------------------------------------
#
# Every figure is a GROUP BY in the database (SQLAlchemy Core, the same statements on SQLite and
# PostgreSQL): only group totals come back. Months are bucketed by a CASE over the UTC instants of the
# Beijing month starts, so no date function of either database is needed. The breakdowns group by the
# stored column (contest id, institution kind, province, industry, award); the few groups are then named
# as people read them (a contest's short name, an enum's label, 未填), and groups that share a name merge.

E = ConnectionEvent
FUND_KINDS = [k for k in InstitutionKind if k.side == "fund"]
BASE_KINDS = [k for k in InstitutionKind if k.side == "base"]
#: Raw columns the breakdowns group by -> the dimensions they name.
RAW_DIMENSIONS: dict[str, Any] = {
    "contest_id": Project.contest_id,
    "institution_kind": Institution.kind,
    "province": Project.province,
    "industry": Project.industry,
    "award": Project.award,
}
OUTCOME_NAMES = {k: k.name for k in OutcomeKind}


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
    q = _Query(session, period, scope)
    month_keys = _months(_month_start(period.last_day, back=11), period.last_day)
    months: dict[str, Tally] = {m: Tally() for m in month_keys}
    raw: dict[str, dict[Any, Tally]] = {d: defaultdict(Tally) for d in RAW_DIMENSIONS}

    funnel = [0] * len(FUNNEL)
    for dim, key, opened, *reached in session.execute(q.opened(month_keys)):
        if dim == "total":
            out.totals.opened = int(opened or 0)
            funnel = [int(n or 0) for n in reached]
        elif dim == "month":
            months[key].opened += int(opened)
        else:
            raw[dim][key].opened += int(opened)
    for dim, key, *values in session.execute(q.signed(month_keys)):
        tally = out.totals if dim == "total" else months[key] if dim == "month" else raw[dim][key]
        _add_signed(tally, values)
    entered = {stage: n for stage, n in session.execute(q.entered())}
    out.refused = int(entered.get(S.REFUSED, 0))
    out.terminated = int(entered.get(S.TERMINATED, 0))
    out.follow_up = int(session.scalar(q.follow_up(out.as_of, follow_up_days)) or 0)
    out.cases = [_case(row) for row in session.execute(q.cases()).mappings()]

    out.funnel = [{"stage": s.name, "label": s.value, "count": funnel[n]} for n, s in enumerate(FUNNEL)]
    out.entered = {s.value: int(entered.get(s, 0)) for s in S}
    groups = _name_groups(session, raw)
    out.breakdowns = breakdown_rows(groups)
    out.months = [{"month": m, **t.as_json()} for m, t in months.items()]
    out.load_rows = lambda: _connection_rows(session, q, out.as_of, follow_up_days)
    return out


def _add_signed(t: Tally, values: Sequence[Any]) -> None:
    signed, financing, financed, landed, area, services = values
    t.signed += int(signed or 0)
    t.financing_wan += float(financing or 0)
    t.financed += int(financed or 0)
    t.landed += int(landed or 0)
    t.landed_area_m2 += float(area or 0)
    t.services += int(services or 0)


class _Query:
    """The statements of one period's figures (what counts as a connection, a signature, a month)."""

    def __init__(self, session: Session, period: Period, scope: frozenset[int] | None) -> None:
        self.period = period
        self.start, self.end = period.start_at, period.end_at
        self.conditions: list[Any] = [Connection.created_at < self.end]
        if scope is not None:
            self.conditions.append(
                Connection.project_id.in_(select(Project.id).where(Project.contest_id.in_(sorted(scope))))
            )

    def _bucket(self, at: Any, month_keys: list[str]) -> tuple[Any, Any]:
        """Return (the month of `at` among month_keys, else NULL; 1 when `at` is in the period, else 0)."""
        bounds = [_month_at(m) for m in month_keys] + [_month_at(_next_month(month_keys[-1]))]
        month = case(
            (at < bounds[0], null()),
            *[(at < bounds[n + 1], literal(m)) for n, m in enumerate(month_keys)],
            else_=null(),
        )
        inside = case((and_(at >= self.start, at < self.end), 1), else_=0)
        return month, inside

    def _since(self, month_keys: list[str]) -> datetime:
        return min(self.start, _month_at(month_keys[0]))

    def opened(self, month_keys: list[str]) -> Any:
        """Connections by the Beijing time of their first event: the period's total and funnel, the trend's
        months, the period's breakdowns (dim, key, opened, reached stage 1..n)."""
        rank = case(*[(E.to_stage == stage, RANK[stage]) for stage in RANK], else_=null())
        first = (
            select(
                E.connection_id.label("cid"),
                func.min(E.at).label("first_at"),
                func.coalesce(func.max(rank), 0).label("furthest"),
            )
            .join(Connection, Connection.id == E.connection_id)
            .where(E.at < self.end, *self.conditions)
            .group_by(E.connection_id)
            .subquery()
        )
        month, inside = self._bucket(first.c.first_at, month_keys)
        fund = case((Institution.kind.in_(FUND_KINDS), 1), else_=0)
        base = (
            select(
                first.c.furthest.label("furthest"),
                fund.label("fund"),
                month.label("month"),
                inside.label("inside"),
                *[col.label(name) for name, col in RAW_DIMENSIONS.items()],
            )
            .join(Connection, Connection.id == first.c.cid)
            .join(Project, Project.id == Connection.project_id)
            .join(Institution, Institution.id == Connection.institution_id)
            .where(first.c.first_at >= self._since(month_keys))
            .cte("opened_connections")
        )
        reached = [
            func.sum(
                case(
                    (
                        and_(
                            base.c.inside == 1,
                            base.c.furthest >= RANK[stage],
                            *([base.c.fund == 1] if stage is S.DUE_DILIGENCE else []),
                        ),
                        1,
                    ),
                    else_=0,
                )
            )
            for stage in FUNNEL
        ]
        zeros = [literal(0) for _ in FUNNEL]
        parts = [
            select(
                literal("total").label("dim"), _text(null()).label("key"), func.sum(base.c.inside), *reached
            ),
            select(literal("month"), _text(base.c.month), func.count(), *zeros)
            .where(base.c.month.is_not(None))
            .group_by(base.c.month),
        ]
        parts += [
            select(literal(name), _text(base.c[name]), func.count(), *zeros)
            .where(base.c.inside == 1)
            .group_by(base.c[name])
            for name in RAW_DIMENSIONS
        ]
        return union_all(*parts)

    def signatures(self, since: datetime) -> Any:
        """Signatures from `since` to the period's end not dissolved before the end (a Core select)."""
        later = aliased(E)
        dissolved = (
            select(later.id)
            .where(
                later.connection_id == E.connection_id,
                later.action == EventAction.MOVED,
                later.from_stage == S.SIGNED,
                later.at < self.end,
                or_(later.at > E.at, and_(later.at == E.at, later.id > E.id)),
            )
            .exists()
        )
        label = E.detail[("outcome", "kind")].as_string()
        kind = case(
            (label.in_(["融资", "FINANCING"]), literal("FINANCING")),
            (label.in_(["落地", "LANDING"]), literal("LANDING")),
            (label.in_(["服务", "SERVICE"]), literal("SERVICE")),
            (Institution.kind.in_(FUND_KINDS), literal("FINANCING")),
            (Institution.kind.in_(BASE_KINDS), literal("LANDING")),
            else_=literal("SERVICE"),
        )
        return (
            select(
                E.id.label("event_id"),
                E.at.label("at"),
                Connection.id.label("cid"),
                kind.label("kind"),
                func.coalesce(E.detail[("outcome", "amount_wan")].as_float(), 0.0).label("amount"),
                func.coalesce(E.detail[("outcome", "area_m2")].as_float(), 0.0).label("area"),
            )
            .join(Connection, Connection.id == E.connection_id)
            .join(Project, Project.id == Connection.project_id)
            .join(Institution, Institution.id == Connection.institution_id)
            .where(
                E.action == EventAction.MOVED,
                E.to_stage == S.SIGNED,
                E.at >= since,
                E.at < self.end,
                *self.conditions,
                ~dissolved,
            )
        )

    def signed(self, month_keys: list[str]) -> Any:
        """Signatures: the period's totals, the trend's months, the period's breakdowns
        (dim, key, signed, financing, financed, landed, area, services)."""
        sig = self.signatures(self._since(month_keys))
        month, inside = self._bucket(E.at, month_keys)
        base = sig.add_columns(
            month.label("month"),
            inside.label("inside"),
            *[col.label(name) for name, col in RAW_DIMENSIONS.items()],
        ).cte("signatures")

        def sums(*where: Any) -> list[Any]:
            def n(cond: Any, value: Any = 1) -> Any:
                return func.sum(case((and_(*where, cond), value), else_=0))

            return [
                n(literal(True)),
                n(base.c.kind == "FINANCING", base.c.amount),
                n(base.c.kind == "FINANCING"),
                n(base.c.kind == "LANDING"),
                n(base.c.kind == "LANDING", base.c.area),
                n(base.c.kind == "SERVICE"),
            ]

        parts = [
            select(literal("total").label("dim"), _text(null()).label("key"), *sums(base.c.inside == 1)),
            select(literal("month"), _text(base.c.month), *sums())
            .where(base.c.month.is_not(None))
            .group_by(base.c.month),
        ]
        parts += [
            select(literal(name), _text(base.c[name]), *sums())
            .where(base.c.inside == 1)
            .group_by(base.c[name])
            for name in RAW_DIMENSIONS
        ]
        return union_all(*parts)

    def entered(self) -> Any:
        """How many times each stage was entered in the period: (stage, count)."""
        return (
            select(E.to_stage, func.count())
            .join(Connection, Connection.id == E.connection_id)
            .where(
                E.action.in_([EventAction.CREATED, EventAction.MOVED]),
                E.at >= self.start,
                E.at < self.end,
                *self.conditions,
            )
            .group_by(E.to_stage)
        )

    def follow_up(self, as_of: datetime, days: int) -> Any:
        """How many connections were open and idle for more than `days` days at `as_of` (a count)."""
        last = (
            select(
                E.to_stage.label("stage"),
                E.at.label("at"),
                func.row_number()
                .over(partition_by=E.connection_id, order_by=(E.at.desc(), E.id.desc()))
                .label("n"),
            )
            .join(Connection, Connection.id == E.connection_id)
            .where(E.at < self.end, E.at <= as_of, *self.conditions)
            .subquery()
        )
        return select(func.count()).where(
            last.c.n == 1, last.c.stage.in_(list(OPEN_STAGES)), last.c.at < as_of - timedelta(days=days)
        )

    def cases(self) -> Any:
        """The signatures of the period with what the success-case table shows, newest first."""
        sig = self.signatures(self.start)
        outcome = {k: E.detail[("outcome", k)].as_string() for k in ("round", "base", "service_kind", "date")}
        return (
            sig.add_columns(
                *[col.label(k) for k, col in outcome.items()],
                Project.id.label("project_id"),
                Project.name.label("project"),
                Project.award.label("award"),
                Project.province.label("region"),
                Project.industry.label("industry"),
                Contest.name.label("contest"),
                Institution.id.label("institution_id"),
                Institution.name.label("institution"),
                Institution.kind.label("institution_kind"),
            )
            .outerjoin(Contest, Contest.id == Project.contest_id)
            .order_by(E.at.desc(), Connection.id.desc())
        )

    def active(self) -> Any:
        """The ids of the connections with history in the period."""
        return (
            select(E.connection_id)
            .join(Connection, Connection.id == E.connection_id)
            .where(E.at >= self.start, E.at < self.end, *self.conditions)
            .distinct()
        )


def _text(expr: Any) -> Any:
    """A group key as text (contest ids, enum names, provinces share one column of the union)."""
    return cast(expr, String)


def _name_groups(session: Session, raw: dict[str, dict[Any, Tally]]) -> dict[str, dict[str, Tally]]:
    """Name the raw groups as the dimensions show them, merging groups that share a name."""
    rows = session.execute(select(Contest.id, Contest.kind, Contest.name))
    contests = {str(cid): (kind, name) for cid, kind, name in rows}
    named: dict[str, dict[str, Tally]] = {d: defaultdict(Tally) for d in DIMENSIONS}

    def put(dim: str, key: str, t: Tally) -> None:
        named[dim][key].add(t)

    for key, t in raw["contest_id"].items():
        kind, name = contests.get(key or "", (None, None))
        put("contest_kind", kind.value if kind else "未知", t)
        put("contest", short_contest(name) if name else "未知", t)
    for key, t in raw["institution_kind"].items():
        put("institution_kind", InstitutionKind[key].value, t)
    for key, t in raw["province"].items():
        put("region", key or "未填", t)
    for key, t in raw["industry"].items():
        put("industry", key or "未填", t)
    for key, t in raw["award"].items():
        put("award", Award[key].value if key else "无", t)
    return named


def _case(r: Mapping[Any, Any]) -> dict[str, Any]:
    kind = OutcomeKind[r["kind"]]
    amount, area = float(r["amount"] or 0), float(r["area"] or 0)
    if kind is OutcomeKind.FINANCING:
        summary = f"{r['round'] or ''}融资 {amount:g} 万元"
    elif kind is OutcomeKind.LANDING:
        summary = f"落地{r['base'] or r['institution']}，{area:g} ㎡"
    else:
        summary = f"获得{r['service_kind'] or ''}服务"
    return {
        "id": r["cid"],
        "signed": china_date(r["at"]).isoformat(),
        "kind": kind.value,
        "summary": summary,
        "amount_wan": amount if kind is OutcomeKind.FINANCING else None,
        "round": r["round"],
        "base": r["base"],
        "area_m2": area if kind is OutcomeKind.LANDING else None,
        "service_kind": r["service_kind"],
        "outcome_date": r["date"],
        "project": r["project"],
        "project_id": r["project_id"],
        "contest": short_contest(r["contest"]) if r["contest"] else "",
        "award": r["award"].value if r["award"] else "无",
        "region": r["region"] or "",
        "industry": r["industry"],
        "institution": r["institution"],
        "institution_id": r["institution_id"],
        "institution_kind": r["institution_kind"].value,
    }


def breakdown_rows(groups: Mapping[str, Mapping[str, Tally]]) -> dict[str, list[dict[str, Any]]]:
    """Return each dimension's tallies as rows, most financing first (then signed, opened, key)."""
    return {
        dim: [
            {"key": key, **t.as_json()}
            for key, t in sorted(
                groups[dim].items(),
                key=lambda kv: (-kv[1].financing_wan, -kv[1].signed, -kv[1].opened, kv[0]),
            )
        ]
        for dim in DIMENSIONS
    }


def _connection_rows(session: Session, q: _Query, as_of: datetime, days: int) -> list[dict[str, Any]]:
    """Every connection with history in the period, as the report lists it (a list, read in one pass)."""
    active = q.active().subquery()
    info = {
        r.id: r
        for r in session.execute(
            select(
                Connection.id,
                Connection.project_id,
                Connection.institution_id,
                Connection.initiated_by,
                Project.name.label("project"),
                Contest.name.label("contest"),
                Institution.name.label("institution"),
                Institution.kind.label("kind"),
            )
            .join(active, active.c.connection_id == Connection.id)
            .join(Project, Project.id == Connection.project_id)
            .outerjoin(Contest, Contest.id == Project.contest_id)
            .join(Institution, Institution.id == Connection.institution_id)
        )
    }
    history = session.execute(
        select(E.connection_id, E.at, E.action, E.from_stage, E.to_stage)
        .join(active, active.c.connection_id == E.connection_id)
        .where(E.at < q.end)
        .order_by(E.connection_id, E.at, E.id)
    )
    out = []
    for cid, events in groupby(history, key=lambda e: e.connection_id):
        out.append(_row(info[cid], list(events), q.period, as_of, days))
    out.sort(key=lambda r: (r["last_activity"], r["id"]), reverse=True)
    return out


def _row(c: Any, events: list[Any], period: Period, as_of: datetime, days: int) -> dict[str, Any]:
    moves = [
        e for e in events if e.action in (EventAction.CREATED, EventAction.MOVED) and period.contains(e.at)
    ]
    before = [e for e in events if e.at <= as_of]
    quiet = bool(before) and as_of - before[-1].at > timedelta(days=days)
    idle = quiet and before[-1].to_stage in OPEN_STAGES
    return connection_row(c, events, moves, idle)


def connection_row(c: Any, events: Sequence[Any], moves: Sequence[Any], idle: bool) -> dict[str, Any]:
    """Return the report's row of a connection: c has its ids and names (project, contest or None,
    institution, kind, initiated_by); events are all its events in order, moves those of the period
    that created or moved it; idle: it needs a follow-up."""
    return {
        "id": c.id,
        "project": c.project,
        "project_id": c.project_id,
        "contest": short_contest(c.contest) if c.contest else "",
        "institution": c.institution,
        "institution_id": c.institution_id,
        "institution_kind": c.kind.value,
        "initiated_by": c.initiated_by.value if c.initiated_by else "",
        "opened": china_date(events[0].at).isoformat(),
        "stage": events[-1].to_stage.value,
        "moves": " → ".join(
            ([moves[0].from_stage.value] if moves and moves[0].from_stage else [])
            + [e.to_stage.value for e in moves]
        ),
        "last_activity": china_date(events[-1].at).isoformat(),
        "follow_up": idle,
        # never requested = an institution's private shortlist (left out of an organiser's list)
        "requested": any(e.to_stage is S.REQUESTED for e in events),
    }


def _month_at(month: str) -> datetime:
    """Return the UTC instant a Beijing month (YYYY-MM) starts."""
    y, m = int(month[:4]), int(month[5:])
    return datetime.combine(date(y, m, 1), time(), CHINA_TZ).astimezone(UTC)


def _next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:])
    return f"{y + 1:04d}-01" if m == 12 else f"{y:04d}-{m + 1:02d}"


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
