"""A realistic, deterministic history of connections for the demo: the last four quarters of follow-up.

Each institution works a handful of projects that fit it (industry, stage, ticket size, region, services;
the same plain rules a fund analyst would apply), through the real state machine, so every event is one
the service itself would have written: funnel attrition, refusals with reasons, terminations, financing
amounts that fit the project and the fund's ticket, landings sized to the base, services delivered, and a
few connections left idle for the 待跟进 list. Timestamps run from the first day of the quarter a year
before `as_of` up to `as_of`, and are in the past.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.pipeline.states import CHINA_TZ, Actor, open_connection, set_shortlist, transition
from models import Connection, Institution, Project
from models.enums import ConnectionStage as S
from models.enums import FundingRound
from models.pipeline import Party

SEED = 20261126
#: The demo's "today": figures quoted in the README stay true whenever the demo is loaded.
DEMO_AS_OF = datetime(2026, 11, 26, 9, 0, tzinfo=CHINA_TZ)
#: How many projects each side of the market works in the year (min, max).
PER_INSTITUTION = {"fund": (4, 9), "base": (3, 6), "platform": (4, 8)}

REFUSE_REASONS = {
    "fund": [
        "估值预期差距较大",
        "暂不符合本期投资方向",
        "团队尚不完整，建议半年后再沟通",
        "单笔金额超出本基金额度",
    ],
    "base": ["园区暂无匹配的空置厂房", "产业方向与园区定位不一致", "企业暂无异地落地计划"],
    "platform": ["服务排期已满，建议下季度再申请", "企业需求已由本地平台承接"],
}
TERMINATE_REASONS = {
    "fund": [
        "尽调发现财务核算不规范",
        "估值未能达成一致",
        "项目方选择了其他投资方",
        "核心技术专利权属存在争议",
    ],
    "base": ["企业决定留在原所在地发展", "场地条件（层高、承重）不满足生产要求", "租金补贴政策未能谈妥"],
    "platform": ["企业已自建检测能力", "服务报价超出企业预算", "企业联系人变更，需求暂停"],
}
SHORTLIST_NOTES = [
    "技术壁垒较高，团队背景扎实，建议尽快约见",
    "赛事获奖项目，与本机构关注方向高度契合",
    "收入规模尚小，先保持跟踪",
    "可与已投企业形成上下游协同",
    "地方政府重点推荐项目",
]
MOVE_NOTES = {
    S.REQUESTED: ["经大赛秘书处引荐，发送对接邀请", "希望进一步了解项目进展", "项目方主动申请对接"],
    S.ACCEPTED: ["同意对接，已交换联系方式", "欢迎进一步沟通"],
    S.MET: ["线上会谈一次，项目方介绍了产品与订单情况", "实地走访项目现场", "在大赛路演活动现场面谈"],
    S.DUE_DILIGENCE: ["启动尽职调查，已发送资料清单", "已提交投委会立项"],
}


@dataclass
class _Clock:
    """The time of the next event of one connection: always forward, never past `as_of`."""

    at: datetime
    as_of: datetime

    def advance(self, rng: random.Random, lo: float, hi: float) -> bool:
        """Move on by lo..hi days (business hours); False when that would pass `as_of`."""
        nxt = self.at + timedelta(days=rng.uniform(lo, hi))
        local = nxt.astimezone(CHINA_TZ)
        nxt = datetime.combine(local.date(), time(9 + rng.randrange(9), rng.randrange(60)), CHINA_TZ)
        if nxt <= self.at:
            nxt = self.at + timedelta(hours=1)
        if nxt >= self.as_of:
            return False
        self.at = nxt.astimezone(UTC)
        return True


def _fit(p: Project, inst: Institution) -> float:
    """Return how plausible the pair is (0 = not at all), from the fields an analyst reads first."""
    side = inst.kind.side
    needs = set(p.needs or ())
    score = 0.0
    if side == "fund":
        if "融资" not in needs:
            return 0.0
        score += 1.0
        if (
            p.amount_wan
            and inst.ticket_max_wan
            and not ((inst.ticket_min_wan or 0) * 0.5 <= p.amount_wan <= inst.ticket_max_wan * 1.5)
        ):
            return 0.0
    elif side == "base":
        if "落地" not in needs:
            return 0.0
        score += 1.0
    else:
        shared = needs & set(inst.services or ())
        if not shared:
            return 0.0
        score += 0.8 + 0.2 * len(shared)
    if p.industry in (inst.industries or ()):
        score += 1.5
    elif inst.industries:
        score -= 0.5
    if p.stage and p.stage.value in (inst.stages or ()):
        score += 0.7
    if p.province and p.province == inst.province:
        score += 0.8 if side != "fund" else 0.4
    if p.award and p.award.name in ("FIRST", "SECOND", "THIRD", "EXCELLENCE", "TOP50"):
        score += 0.4
    return max(score, 0.0)


def _outcome(rng: random.Random, p: Project, inst: Institution, on: date) -> dict[str, object]:
    side = inst.kind.side
    day = (on - timedelta(days=rng.randrange(0, 6))).isoformat()
    if side == "fund":
        asked = p.amount_wan or rng.choice([300, 500, 800, 1500])
        amount: float = asked * rng.uniform(0.4, 1.0)
        if inst.ticket_min_wan:
            amount = max(amount, inst.ticket_min_wan)
        if inst.ticket_max_wan:
            amount = min(amount, inst.ticket_max_wan)
        amount = max(10, round(amount / 10) * 10)
        if inst.kind.name == "BANK":
            rnd = FundingRound.BANK_LOAN.value
        else:
            rnd = p.funding_round.value if p.funding_round else FundingRound.ANGEL.value
        return {"amount_wan": amount, "round": rnd, "date": day}
    if side == "base":
        area: float = rng.choice([120, 180, 240, 300, 450, 600, 800, 1200])
        if inst.space_m2:
            area = min(area, inst.space_m2)
        return {"base": inst.name, "area_m2": area, "date": day}
    shared = [s for s in (inst.services or ()) if s in (p.needs or ())] or list(inst.services or ["检验检测"])
    return {"service_kind": rng.choice(shared), "date": day}


def _actors(p: Project, inst: Institution) -> tuple[Actor, Actor]:
    return (
        Actor(Party.INSTITUTION, None, inst.contact_name or f"{inst.name}对接人"),
        Actor(Party.PROJECT, None, p.contact_name or f"{p.name}负责人"),
    )


SECRETARIAT = Actor(Party.SECRETARIAT, None, "大赛秘书处")


def _stall(rng: random.Random, c: Connection, clock: _Clock) -> Connection:
    """Leave a stalled connection open (待跟进 once idle) or, mostly, have the secretariat close it later."""
    if rng.random() < 0.8 and clock.advance(rng, 30, 75):
        transition(c, S.TERMINATED, SECRETARIAT, "长期无进展，经双方确认后关闭", at=clock.at)
    return c


def _walk(rng: random.Random, p: Project, inst: Institution, start: datetime, as_of: datetime) -> Connection:
    """Return one connection taken as far as chance and the calendar allow."""
    side = inst.kind.side
    by_inst, by_proj = _actors(p, inst)
    clock = _Clock(start, as_of)
    by_project = rng.random() < 0.3
    if by_project:
        c = open_connection(
            p, inst, by_proj, S.REQUESTED, rng.choice(MOVE_NOTES[S.REQUESTED][2:]), at=clock.at
        )
    else:
        c = open_connection(p, inst, by_inst, S.RECOMMENDED, at=clock.at)
        set_shortlist(c, True, by_inst, rng.choice(SHORTLIST_NOTES), at=clock.at + timedelta(minutes=5))
        clock.at += timedelta(minutes=5)
        r = rng.random()
        if r < 0.12:
            if clock.advance(rng, 5, 30):
                transition(c, S.TERMINATED, by_inst, "内部评估后暂不跟进", at=clock.at)
            return c
        if r < 0.25 or not clock.advance(rng, 1, 12):
            return _stall(rng, c, clock)  # still on the shortlist
        transition(c, S.REQUESTED, by_inst, rng.choice(MOVE_NOTES[S.REQUESTED][:2]), at=clock.at)
    answerer = by_inst if by_project else by_proj
    asker = by_proj if by_project else by_inst

    r = rng.random()
    if not clock.advance(rng, 1, 14):
        return c
    if r < 0.18:
        transition(
            c,
            S.REFUSED,
            answerer,
            rng.choice(REFUSE_REASONS[side]) if answerer is by_inst else "暂无该方面需求",
            at=clock.at,
        )
        if rng.random() < 0.15 and clock.advance(rng, 30, 90):
            transition(c, S.REQUESTED, by_proj, "补充了最新经营数据，再次申请对接", at=clock.at)
            if clock.advance(rng, 3, 14):
                transition(c, S.ACCEPTED, by_inst, "同意再次沟通", at=clock.at)
        return c
    if r < 0.24:
        return _stall(rng, c, clock)  # no answer yet
    if r < 0.28:
        transition(c, S.TERMINATED, asker, "对方长期未回复", at=clock.at)
        return c
    transition(c, S.ACCEPTED, answerer, rng.choice(MOVE_NOTES[S.ACCEPTED]), at=clock.at)

    r = rng.random()
    if r < 0.12 or not clock.advance(rng, 4, 25):
        return _stall(rng, c, clock)
    if r < 0.2:
        transition(
            c, S.TERMINATED, rng.choice([by_inst, by_proj]), rng.choice(TERMINATE_REASONS[side]), at=clock.at
        )
        return c
    transition(c, S.MET, by_inst, rng.choice(MOVE_NOTES[S.MET]), at=clock.at)

    if side == "fund":
        r = rng.random()
        if r < 0.2 or not clock.advance(rng, 7, 30):
            return _stall(rng, c, clock)
        if r < 0.35:
            transition(c, S.TERMINATED, by_inst, rng.choice(TERMINATE_REASONS[side]), at=clock.at)
            return c
        transition(c, S.DUE_DILIGENCE, by_inst, rng.choice(MOVE_NOTES[S.DUE_DILIGENCE]), at=clock.at)
        lo, hi = 15, 50
    else:
        lo, hi = 7, 40
    r = rng.random()
    if r < 0.15 or not clock.advance(rng, lo, hi):
        return _stall(rng, c, clock)
    if r < 0.35:
        transition(
            c, S.TERMINATED, rng.choice([by_inst, by_proj]), rng.choice(TERMINATE_REASONS[side]), at=clock.at
        )
        return c
    outcome = _outcome(rng, p, inst, clock.at.astimezone(CHINA_TZ).date())
    transition(c, S.SIGNED, by_inst, "签约完成", outcome=outcome, at=clock.at)
    return c


def load_history(session: Session, as_of: datetime | None = None, seed: int = SEED) -> dict[str, int]:
    """Write the demo's connections and their histories (once: skipped when connections exist).

    Returns:
        {"connections": n, "events": m} written (or {} when skipped).
    """
    if session.scalar(select(func.count(Connection.id))):
        return {}
    as_of = min(as_of or DEMO_AS_OF, datetime.now(UTC)).astimezone(UTC)
    local = as_of.astimezone(CHINA_TZ).date()
    quarter_start = date(local.year, 3 * ((local.month - 1) // 3) + 1, 1)
    first = datetime.combine(
        date(quarter_start.year - 1, quarter_start.month, 1), time(9), CHINA_TZ
    ).astimezone(UTC)
    span = (as_of - first).total_seconds()
    rng = random.Random(seed)
    projects = list(session.scalars(select(Project).order_by(Project.id)))
    institutions = list(session.scalars(select(Institution).order_by(Institution.id)))
    taken: set[tuple[int, int]] = set()
    made: list[Connection] = []
    for inst in institutions:
        scored = [(_fit(p, inst) + rng.random() * 0.6, p) for p in projects]
        pool = [p for s, p in sorted(scored, key=lambda sp: (-sp[0], sp[1].id)) if s > 1.0][:25]
        lo, hi = PER_INSTITUTION[inst.kind.side]
        for p in rng.sample(pool, min(len(pool), rng.randint(lo, hi))):
            if (p.id, inst.id) in taken:
                continue
            taken.add((p.id, inst.id))
            # More activity in recent quarters (the service is catching on): sqrt skews towards as_of.
            start = first + timedelta(seconds=span * (rng.random() ** 0.7) * 0.97)
            made.append(_walk(rng, p, inst, start, as_of))
    session.add_all(made)
    session.commit()
    return {"connections": len(made), "events": sum(len(c.events) for c in made)}
