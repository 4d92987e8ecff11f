"""The SQL figures (GROUP BY in the database) equal the Python figures they replaced, exactly.

The Python implementation below is the one the dashboard and the report used before the aggregation moved
into SQL: it loads every connection with its history and counts in Python. It lives here only, as the
oracle. Both are compared on the demo (every quarter of its history, all contests and one organiser's
contests) and on hand-made edge cases: an empty quarter, signatures undone in and after the period, a
refusal asked again, archived records, same-instant events, idle connections; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from app.pipeline.figures import (
    DIMENSIONS,
    RANK,
    Period,
    Tally,
    _month_start,
    _months,
    breakdown_rows,
    connection_row,
    figures,
    parse_quarter,
    short_contest,
)
from app.pipeline.states import FUNNEL, OPEN_STAGES, Actor, china_date, open_connection, transition
from models import Connection, Contest, Institution, InstitutionKind, Project, ProjectGroup
from models.catalog import catalogue_files, load_contests
from models.enums import ConnectionStage as S
from models.pipeline import SIDE_OUTCOME, ConnectionEvent, EventAction, OutcomeKind, Party

# --- the oracle: the Python aggregation as it was -----------------------------------------------------


def _tally_outcome(t: Tally, o: dict[str, Any]) -> None:
    t.signed += 1
    if o["kind"] is OutcomeKind.FINANCING:
        t.financed += 1
        t.financing_wan += o["amount_wan"]
    elif o["kind"] is OutcomeKind.LANDING:
        t.landed += 1
        t.landed_area_m2 += o["area_m2"]
    else:
        t.services += 1


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


def _signings(c: Connection, events: list[ConnectionEvent], until: datetime) -> list[dict[str, Any]]:
    out = []
    for n, e in enumerate(events):
        if e.action is not EventAction.MOVED or e.to_stage is not S.SIGNED:
            continue
        if any(
            later.action is EventAction.MOVED and later.from_stage is S.SIGNED and later.at < until
            for later in events[n + 1 :]
        ):
            continue
        data = (e.detail or {}).get("outcome") or {}
        kind = (
            OutcomeKind.from_label(data.get("kind", ""))
            if data.get("kind")
            else SIDE_OUTCOME[c.institution.kind.side]
        )
        out.append(
            {
                "c": c,
                "at": e.at,
                "kind": kind,
                "amount_wan": float(data.get("amount_wan") or 0),
                "round": data.get("round"),
                "base": data.get("base"),
                "area_m2": float(data.get("area_m2") or 0),
                "service_kind": data.get("service_kind"),
                "date": data.get("date"),
            }
        )
    return out


def _idle_at(events: list[ConnectionEvent], at: datetime, days: int) -> bool:
    before = [e for e in events if e.at <= at]
    if not before:
        return False
    return before[-1].to_stage in OPEN_STAGES and at - before[-1].at > timedelta(days=days)


def _row(c: Connection, events: list[ConnectionEvent], active: list[ConnectionEvent], idle: bool) -> dict:
    moves = [e for e in active if e.action in (EventAction.CREATED, EventAction.MOVED)]
    ids = {k: getattr(c, k) for k in ("id", "project_id", "institution_id", "initiated_by")}
    contest = c.project.contest.name if c.project.contest else None
    names = {"project": c.project.name, "contest": contest, "institution": c.institution.name}
    names["kind"] = c.institution.kind
    return connection_row(
        SimpleNamespace(**ids, **names), events, moves, idle
    )  # the layout is shared; what goes in is the oracle's


def _case(o: dict[str, Any]) -> dict[str, Any]:
    c, p = o["c"], o["c"].project
    if o["kind"] is OutcomeKind.FINANCING:
        summary = f"{o['round'] or ''}融资 {o['amount_wan']:g} 万元"
    elif o["kind"] is OutcomeKind.LANDING:
        summary = f"落地{o['base'] or c.institution.name}，{o['area_m2']:g} ㎡"
    else:
        summary = f"获得{o['service_kind'] or ''}服务"
    return {
        "id": c.id,
        "signed": china_date(o["at"]).isoformat(),
        "kind": o["kind"].value,
        "summary": summary,
        "amount_wan": o["amount_wan"] if o["kind"] is OutcomeKind.FINANCING else None,
        "round": o["round"],
        "base": o["base"],
        "area_m2": o["area_m2"] if o["kind"] is OutcomeKind.LANDING else None,
        "service_kind": o["service_kind"],
        "outcome_date": o["date"],
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


def python_figures(
    session: Session, period: Period, scope: frozenset[int] | None, days: int, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The figures as the Python aggregation computed them: (as_json without the period header, rows)."""
    as_of = min(now, period.end_at)
    stmt = (
        select(Connection)
        .where(Connection.created_at < period.end_at)
        .options(
            selectinload(Connection.events),
            selectinload(Connection.institution),
            selectinload(Connection.project).selectinload(Project.contest),
        )
        .order_by(Connection.id)
    )
    if scope is not None:
        stmt = stmt.where(Connection.project_id.in_(select(Project.id).where(Project.contest_id.in_(scope))))
    totals, reached, entered = Tally(), Counter(), Counter()
    refused = terminated = follow_up = 0
    groups: dict[str, dict[str, Tally]] = {d: defaultdict(Tally) for d in DIMENSIONS}
    months = {m: Tally() for m in _months(_month_start(period.last_day, back=11), period.last_day)}
    outcomes, rows = [], []
    for c in session.scalars(stmt):
        events = [e for e in c.events if e.at < period.end_at]
        if not events:
            continue
        keys = _keys(c)
        opened_at = events[0].at
        if period.contains(opened_at):
            totals.opened += 1
            for dim, key in keys.items():
                groups[dim][key].opened += 1
            furthest = max((RANK.get(e.to_stage, 0) for e in events if e.to_stage in RANK), default=0)
            fund = c.institution.kind.side == "fund"
            for stage in FUNNEL:
                if furthest >= RANK[stage] and (stage is not S.DUE_DILIGENCE or fund):
                    reached[stage] += 1
        month = china_date(opened_at).strftime("%Y-%m")
        if month in months:
            months[month].opened += 1
        for e in events:
            if e.action in (EventAction.CREATED, EventAction.MOVED) and period.contains(e.at):
                entered[e.to_stage] += 1
                refused += e.to_stage is S.REFUSED
                terminated += e.to_stage is S.TERMINATED
        for o in _signings(c, events, period.end_at):
            if period.contains(o["at"]):
                outcomes.append(o)
                _tally_outcome(totals, o)
                for dim, key in keys.items():
                    _tally_outcome(groups[dim][key], o)
            month = china_date(o["at"]).strftime("%Y-%m")
            if month in months:
                _tally_outcome(months[month], o)
        active = [e for e in events if period.contains(e.at)]
        idle = _idle_at(events, as_of, days)
        follow_up += idle
        if active:
            rows.append(_row(c, events, active, idle))
    rows.sort(key=lambda r: (r["last_activity"], r["id"]), reverse=True)
    data = {
        "funnel": [{"stage": s.name, "label": s.value, "count": reached[s]} for s in FUNNEL],
        "entered": {s.value: entered[s] for s in S},
        "totals": {**totals.as_json(), "refused": refused, "terminated": terminated, "follow_up": follow_up},
        "breakdowns": breakdown_rows(groups),
        "months": [{"month": m, **t.as_json()} for m, t in months.items()],
        "success_cases": [
            _case(o) for o in sorted(outcomes, key=lambda o: (o["at"], o["c"].id), reverse=True)
        ],
    }
    return data, rows


def assert_same(session: Session, period: Period, scope: Any = None, days: int = 14, now: Any = None) -> dict:
    """Assert the SQL figures equal the oracle's, figure by figure; return the SQL figures."""
    now = now or datetime(2027, 1, 15, tzinfo=UTC)
    fig = figures(session, period, scope, days, now=now)
    got = fig.as_json()
    want, rows = python_figures(session, period, None if scope is None else frozenset(scope), days, now)
    for key, value in want.items():
        assert got[key] == value, f"{period.label} {key}"
    assert fig.rows == rows, period.label
    return got


# --- the databases ------------------------------------------------------------------------------------


@pytest.fixture()
def demo_db(migrated_db: tuple[Engine, str]) -> Session:
    """The demo (catalogue, projects, institutions, a year of history) on SQLite, then on PostgreSQL."""
    from app.demo.load import load_demo

    engine, _url = migrated_db
    with Session(engine) as s:
        for path in catalogue_files():
            load_contests(s, path)
        load_demo(s)
        s.commit()
        yield s


def test_sql_figures_equal_python_figures_on_the_demo(demo_db: Session) -> None:
    from app.pipeline.demo import DEMO_AS_OF

    s = demo_db
    first = china_date(min(s.scalars(select(ConnectionEvent.at))))
    period, end = Period.containing(first), Period.containing(china_date(DEMO_AS_OF)).next()
    counted = 0
    while period.start < end.start:
        got = assert_same(s, period, now=DEMO_AS_OF)
        counted += got["totals"]["opened"] + got["totals"]["signed"]
        period = period.next()
    assert counted > 50  # the demo's history really was compared, not empty quarters only
    contests = list(s.scalars(select(Project.contest_id).distinct().limit(3)))
    for quarter in ("2026Q2", "2026Q3"):
        assert_same(s, parse_quarter(quarter), scope=contests, now=DEMO_AS_OF)
        assert_same(s, parse_quarter(quarter), scope=[], now=DEMO_AS_OF)
    # a custom span longer than the trend, and the quarter so far (follow-up at "now" inside the period)
    assert_same(s, Period(date(2025, 1, 1), date(2026, 12, 1), "span"), now=DEMO_AS_OF)
    assert_same(s, Period.containing(china_date(DEMO_AS_OF)), days=7, now=DEMO_AS_OF)


@pytest.fixture()
def edge_db(migrated_db: tuple[Engine, str]) -> Session:
    engine, _url = migrated_db
    with Session(engine) as s:
        for path in catalogue_files():
            load_contests(s, path)
        _edge_cases(s)
        yield s


def at(day: str, hour: int = 3) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def _edge_cases(s: Session) -> None:
    """Connections that exercise every rule of the figures, with explicit times."""
    contests = list(s.scalars(select(Contest).order_by(Contest.id).limit(2)))
    secretariat = Actor(Party.SECRETARIAT, None, "秘书处")

    def project(name: str, contest: Contest, province: str | None) -> Project:
        return Project(
            name=name,
            group=ProjectGroup.ENTERPRISE,
            contest=contest,
            industry="人工智能",
            province=province,
            description=f"{name}的简介文字，足够长",
        )

    def inst(name: str, kind: InstitutionKind) -> Institution:
        return Institution(name=name, kind=kind, description=f"{name}的简介文字，足够长")

    p1, p2 = project("甲项目", contests[0], "浙江省"), project("乙项目", contests[1], None)
    p3 = project("丙项目", contests[0], "江苏省")
    fund, base = inst("甲基金", InstitutionKind.VC), inst("乙园区", InstitutionKind.INDUSTRY_PARK)
    platform = inst("丙平台", InstitutionKind.SERVICE_PLATFORM)
    s.add_all([p1, p2, p3, fund, base, platform])
    s.flush()

    def walk(p: Project, i: Institution, start: str, moves: list[tuple[S, str, dict | None]]) -> Connection:
        c = open_connection(p, i, secretariat, S.REQUESTED, at=at(start))
        s.add(c)
        for stage, day, outcome in moves:
            when = at(day) if len(day) == 10 else datetime.fromisoformat(day)
            transition(c, stage, secretariat, note="测试说明", outcome=outcome, at=when)
        return c

    # signed in Q3, undone in Q4: a Q3 signature, not a Q4 one
    walk(
        p1,
        fund,
        "2026-07-02",
        [
            (S.ACCEPTED, "2026-07-05", None),
            (S.MET, "2026-07-09", None),
            (S.DUE_DILIGENCE, "2026-07-20", None),
            (S.SIGNED, "2026-08-01", {"amount_wan": 880.5, "round": "A轮", "date": "2026-08-01"}),
            (S.TERMINATED, "2026-10-12", None),
        ],
    )
    # signed and undone inside Q3: no signature at all
    walk(
        p2,
        base,
        "2026-07-03",
        [
            (S.ACCEPTED, "2026-07-04", None),
            (S.MET, "2026-07-06", None),
            (S.SIGNED, "2026-07-30", {"area_m2": 1200, "base": "一号楼", "date": "2026-07-30"}),
            (S.TERMINATED, "2026-09-01", None),
        ],
    )
    # refused, asked again, idle ever since (待跟进)
    walk(
        p3,
        platform,
        "2026-06-29",
        [
            (S.REFUSED, "2026-07-01", None),
            (S.REQUESTED, "2026-07-15", None),
        ],
    )
    # a platform signature on a Beijing-quarter boundary (2026-09-30 20:00 UTC is 10-01 in Beijing),
    # then both records archived: still counted
    c4 = walk(
        p1,
        platform,
        "2026-08-10",
        [
            (S.ACCEPTED, "2026-08-11", None),
            (S.MET, "2026-08-12", None),
            (S.SIGNED, "2026-09-30T20:00:00+00:00", {"service_kind": "检验检测", "date": "2026-10-01"}),
        ],
    )
    # signed and undone at the same instant (the later event by id undoes it)
    walk(
        p3,
        fund,
        "2026-08-20",
        [
            (S.ACCEPTED, "2026-08-21", None),
            (S.MET, "2026-08-22", None),
            (S.DUE_DILIGENCE, "2026-08-23", None),
            (
                S.SIGNED,
                "2026-08-25T05:00:00+00:00",
                {"amount_wan": 100, "round": "天使轮", "date": "2026-08-25"},
            ),
            (S.TERMINATED, "2026-08-25T05:00:00+00:00", None),
        ],
    )
    # opened just before a quarter ends in Beijing (2026-06-30 17:00 UTC is 07-01 01:00 Beijing)
    walk(p2, fund, "2026-06-30", [(S.ACCEPTED, "2026-06-30T17:00:00+00:00", None)])
    s.flush()
    p1.archived_at = platform.archived_at = at("2026-11-01")
    assert c4.stage is S.SIGNED
    s.commit()


@pytest.mark.parametrize("quarter", ["2025Q1", "2026Q2", "2026Q3", "2026Q4", "2027Q1"])
def test_sql_figures_equal_python_figures_on_edge_cases(edge_db: Session, quarter: str) -> None:
    s = edge_db
    got = assert_same(s, parse_quarter(quarter))
    assert_same(s, parse_quarter(quarter), days=1, now=at("2026-09-20"))
    assert_same(s, parse_quarter(quarter), scope=[s.scalar(select(Contest.id).order_by(Contest.id))])
    if quarter == "2025Q1":  # the empty quarter: every figure zero, every list empty
        assert got["totals"]["opened"] == got["totals"]["signed"] == 0 and got["success_cases"] == []
        assert all(not rows for rows in got["breakdowns"].values())
    if quarter == "2026Q3":
        assert got["totals"]["signed"] == 1 and got["totals"]["financing_wan"] == 880.5
        assert got["totals"]["refused"] == 1 and got["totals"]["terminated"] == 2
    if quarter == "2026Q4":
        assert got["totals"]["services"] == 1  # the boundary signature is a Beijing 10-01 one
