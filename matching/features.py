"""Pair features: one place that turns a (project, institution) pair into numbers.

Every ranker (the hand-set fallback and the learned one) and every explanation reads the same
feature vector, in the order of :data:`FEATURES`. Similarities arrive already rescaled per query
(the caller knows the candidate set); everything else is computed here from the profiles and the
institution's :class:`Evidence` (what its portfolio says about it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from matching.types import (
    AWARDS,
    KIND_SIDE,
    NEED_FINANCING,
    NEED_LANDING,
    SERVICE_KINDS,
    STAGES,
    InstitutionProfile,
    ProjectProfile,
    Side,
)

__all__ = [
    "FEATURES",
    "SIMILARITY_FEATURES",
    "Evidence",
    "amount_fit",
    "award_level",
    "build_evidence",
    "feature_matrix",
    "industry_fit",
    "need_side_fit",
    "pair_features",
    "parse_date",
    "project_stage_index",
    "region_fit",
    "round_stage_index",
    "service_fit",
    "stage_fit",
    "stage_round_lift",
]

#: Feature names in the column order of every feature matrix.
FEATURES: tuple[str, ...] = (
    "dense",  # cosine of project text vs institution text, z-scored over the query's candidates
    "dense_port_max",  # max cosine to the institution's portfolio projects, z-scored per query
    "dense_port_mean",  # mean cosine to the portfolio projects, z-scored per query
    "bm25",  # BM25 over jieba tokens, divided by the query's best candidate score (0..1)
    "industry",  # declared industries: +1 primary in, +0.5 secondary in, -1 declared but disjoint
    "industry_portfolio",  # share of the portfolio sharing an industry with the project (0..1)
    "industry_count",  # log(1 + portfolio items sharing an industry): popularity within the industry
    "stage",  # declared preferred stages vs the project's stage (+1 .. -1)
    "stage_portfolio",  # share of portfolio rounds within one stage of the project's (0..1)
    "stage_count",  # log(1 + portfolio rounds within one stage of the project's): stage popularity
    "stage_round",  # log lift of labelled rounds at the project's next stage over activity (>= 0)
    "amount",  # amount sought vs ticket range (funds): +1 inside, down to -1 far outside
    "region",  # same province 1, same city 1.5
    "region_base",  # the same region signal again for bases, which care more about location
    "region_portfolio",  # share of the portfolio in the project's province (0..1)
    "services",  # share of the project's service needs the institution offers (0..1)
    "need_side",  # +1 the project needs what this side offers, -1 it declared other needs only
    "activity",  # log(1 + portfolio size): popularity
    "recency",  # log(1 + recency-decayed portfolio count), half-life 1 year
    "recency_fast",  # log(1 + portfolio count decayed with a 6-month half-life): active right now
    "recency_slow",  # log(1 + portfolio count decayed with a 2-year half-life)
    "idle",  # log(1 + months since the latest portfolio item, at most 10 years = no dated items)
    "coinvest",  # log(1 + projects co-backed with the project's current backers)
    "award",  # award level of the project (0..1, first prize = 1)
    "group",  # share of the portfolio in the project's group (企业组 / 创客组)
)

#: Half-lives of the short- and long-memory activity counts (recency_fast, recency_slow): who is
#: investing now differs from who invested most over all time.
FAST_HALF_LIFE_DAYS = 182.0
SLOW_HALF_LIFE_DAYS = 730.0
#: Idle time of an institution without dated evidence, and the cap of anyone's idle time.
MAX_IDLE_DAYS = 3650.0

#: Features computed by the caller from vectors and indexes (rescaled per query).
SIMILARITY_FEATURES: tuple[str, ...] = ("dense", "dense_port_max", "dense_port_mean", "bm25", "coinvest")

# Rounds mapped onto STAGES indexes; order matters because "Pre-A" must win over "A".
_ROUND_STAGE: tuple[tuple[str, int], ...] = (
    ("种子", 1),
    ("天使", 2),
    ("pre-a", 2),
    ("pre-b", 3),
    ("a+", 3),
    ("a轮", 3),
    ("b+", 4),
    ("b轮", 4),
    ("c轮", 4),
    ("c+", 4),
    ("d轮", 5),
    ("e轮", 5),
    ("f轮", 5),
    ("上市", 5),
    ("ipo", 5),
    ("新三板", 5),
    ("定向增发", 5),
    ("并购", 5),
    ("pre-ipo", 5),
    ("seed", 1),
    ("angel", 2),
    ("series a", 3),
    ("series b", 4),
    ("series c", 4),
)


def round_stage_index(round_label: str | None) -> int | None:
    """Return the STAGES index a funding round corresponds to, or None when unknown."""
    if not round_label:
        return None
    low = round_label.strip().lower()
    for key, idx in _ROUND_STAGE:
        if key in low:
            return idx
    # "A轮"-style labels written without 轮 ("A", "B") or as FundingRound names.
    bare = {"a": 3, "b": 4, "c": 4, "c轮及以后": 4, "d": 5}
    return bare.get(low)


def project_stage_index(project: ProjectProfile) -> int | None:
    """Return the project's STAGES index from its stage, else from the round it seeks."""
    if project.stage in STAGES:
        return STAGES.index(project.stage)
    return round_stage_index(project.round)


@dataclass(frozen=True)
class Evidence:
    """What an institution's portfolio says about it: inferred preferences and activity.

    Shares are fractions of portfolio items (0..1); ``stage_share`` has one entry per STAGES index.
    """

    n_portfolio: int = 0  # distinct projects
    n_items: int = 0  # portfolio items (a project backed in two rounds counts twice)
    industry_share: Mapping[str, float] | None = None
    stage_share: tuple[float, ...] = (0.0,) * len(STAGES)
    province_share: Mapping[str, float] | None = None
    group_share: Mapping[str, float] | None = None
    recency: float = 0.0  # portfolio items weighted by 0.5 ** (age / half-life)
    recency_fast: float = 0.0  # the same with FAST_HALF_LIFE_DAYS
    recency_slow: float = 0.0  # the same with SLOW_HALF_LIFE_DAYS
    idle_days: float = 3650.0  # days from the latest portfolio item to the reference date (capped)
    last_date: str | None = None
    n_with_stage: int = 0
    round_counts: tuple[int, ...] = (0,) * len(STAGES)  # items per STAGES index from round labels only
    amounts_wan: tuple[float, ...] = ()

    def top_industries(self, n: int = 3) -> tuple[str, ...]:
        """Return the n industries most frequent in the portfolio."""
        share = self.industry_share or {}
        return tuple(k for k, _ in sorted(share.items(), key=lambda kv: (-kv[1], kv[0]))[:n])

    def top_stages(self, min_share: float = 0.25) -> tuple[str, ...]:
        """Return the stages holding at least min_share of the dated portfolio rounds."""
        return tuple(STAGES[i] for i, s in enumerate(self.stage_share) if s >= min_share)


def parse_date(value: str | None) -> date | None:
    """Return the date of an ISO date(time) text, None when missing or not a real date."""
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def build_evidence(
    institution: InstitutionProfile,
    projects: Mapping[int, ProjectProfile],
    as_of: str | None = None,
    half_life_days: float = 365.0,
) -> Evidence:
    """Infer an institution's industry, stage, region and group preferences from its portfolio.

    Args:
        institution: the institution with its ``portfolio`` evidence.
        projects: known project profiles, used when a portfolio item lacks industries.
        as_of: ISO date recency is measured from; None means the newest portfolio date.
        half_life_days: age at which a portfolio item counts half toward ``recency``.
    """
    items = institution.portfolio
    n = len(items)
    if n == 0:
        return Evidence()
    industries: Counter[str] = Counter()
    provinces: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    stages = np.zeros(len(STAGES))
    labelled = [0] * len(STAGES)
    dates: list[date] = []
    amounts: list[float] = []
    for item in items:
        proj = projects.get(item.project_id)
        inds = item.industries or (proj.industries if proj else ())
        industries.update(set(inds))
        if proj is not None:
            if proj.province:
                provinces[proj.province] += 1
            if proj.group:
                groups[proj.group] += 1
            if proj.amount_wan:
                amounts.append(float(proj.amount_wan))
        stage_idx = round_stage_index(item.round)
        if stage_idx is not None:
            labelled[stage_idx] += 1
        if stage_idx is None and proj is not None and item.round is None:
            stage_idx = project_stage_index(proj)
        if stage_idx is not None:
            stages[stage_idx] += 1
        d = parse_date(item.date)
        if d is not None:
            dates.append(d)
    ref = parse_date(as_of) or (max(dates) if dates else None)
    ages = [float((ref - d).days) for d in dates if d <= ref] if ref is not None else []

    def decayed(half_life: float) -> float:
        return float(sum(0.5 ** (age / half_life) for age in ages))

    n_stage = int(stages.sum())
    return Evidence(
        n_portfolio=len({item.project_id for item in items}),
        n_items=n,
        industry_share={k: v / n for k, v in industries.items()},
        stage_share=tuple(float(x) for x in (stages / n_stage if n_stage else stages)),
        province_share={k: v / n for k, v in provinces.items()},
        group_share={k: v / n for k, v in groups.items()},
        recency=decayed(half_life_days),
        recency_fast=decayed(FAST_HALF_LIFE_DAYS),
        recency_slow=decayed(SLOW_HALF_LIFE_DAYS),
        idle_days=min(min(ages), MAX_IDLE_DAYS) if ages else MAX_IDLE_DAYS,
        last_date=max(dates).isoformat() if dates else None,
        n_with_stage=n_stage,
        round_counts=tuple(labelled),
        amounts_wan=tuple(amounts),
    )


#: Pseudo-count share of all its deals an institution gets at every stage in ``stage_round``.
STAGE_ROUND_SMOOTHING = 0.1


def stage_round_lift(stage_index: int | None, evidence: Evidence) -> float:
    """Return how much likelier the institution joins the project's next round than its activity says.

    The estimate is log((n_s + a) / a): n_s counts the institution's labelled rounds at the stage the
    project raises for next (an item without a round label says nothing about the round joined)
    and a = STAGE_ROUND_SMOOTHING x its deal count shrinks it toward its overall activity. Added to
    log activity, this is a smoothed count of who invests at this round; it is 0 when the
    project's stage is unknown or no round is labelled, so it never stands in for popularity.
    """
    prior = STAGE_ROUND_SMOOTHING * evidence.n_items
    if stage_index is None or prior <= 0:
        return 0.0
    return math.log1p(evidence.round_counts[stage_index] / prior)


def industry_fit(project_industries: Sequence[str], declared: Iterable[str]) -> float:
    """Score declared institution industries against the project's (primary industry first)."""
    declared_set = set(declared)
    if not declared_set or not project_industries:
        return 0.0
    if project_industries[0] in declared_set:
        return 1.0
    if declared_set.intersection(project_industries[1:]):
        return 0.5
    return -1.0


def stage_fit(stage_index: int | None, preferred: Iterable[str]) -> float:
    """Score a project's stage against preferred stages: 1 inside, 0.3 next door, negative beyond."""
    prefs = [STAGES.index(s) for s in preferred if s in STAGES]
    if stage_index is None or not prefs:
        return 0.0
    dist = min(abs(stage_index - p) for p in prefs)
    if dist == 0:
        return 1.0
    if dist == 1:
        return 0.3
    return max(-1.0, -0.5 * (dist - 1))


def amount_fit(amount_wan: float | None, ticket_min: float | None, ticket_max: float | None) -> float:
    """Score the amount sought against a ticket range: 1 inside, -1 at 8x outside or more."""
    if not amount_wan or amount_wan <= 0 or (ticket_min is None and ticket_max is None):
        return 0.0
    if ticket_min is not None and ticket_min > 0 and amount_wan < ticket_min:
        return -min(1.0, math.log2(ticket_min / amount_wan) / 3.0)
    if ticket_max is not None and ticket_max > 0 and amount_wan > ticket_max:
        return -min(1.0, math.log2(amount_wan / ticket_max) / 3.0)
    return 1.0


def region_fit(
    province: str | None, city: str | None, other_province: str | None, other_city: str | None
) -> float:
    """Score location: 1.5 same city, 1 same province, 0 otherwise or unknown."""
    if city and other_city and city == other_city:
        return 1.5
    if province and other_province and province == other_province:
        return 1.0
    return 0.0


def service_fit(needs: Iterable[str], offered: Iterable[str]) -> float:
    """Return the share of the project's service needs that the institution offers."""
    wanted = [n for n in needs if n in SERVICE_KINDS]
    if not wanted:
        return 0.0
    offered_set = set(offered)
    return sum(1 for n in wanted if n in offered_set) / len(wanted)


def need_side_fit(needs: Sequence[str], side: Side) -> float:
    """Return +1 when the project needs what this side offers, -1 when it declared only other needs."""
    if not needs:
        return 0.0
    if side == "fund":
        hit = NEED_FINANCING in needs
    elif side == "base":
        hit = NEED_LANDING in needs
    else:
        hit = any(n in SERVICE_KINDS for n in needs)
    return 1.0 if hit else -1.0


def award_level(award: str | None) -> float:
    """Return the award level on 0..1 (一等奖 = 1, 无 or unknown = 0)."""
    if not award or award not in AWARDS or award == AWARDS[-1]:
        return 0.0
    return (len(AWARDS) - 1 - AWARDS.index(award)) / (len(AWARDS) - 1)


def _share_overlap(share: Mapping[str, float] | None, keys: Iterable[str]) -> float:
    """Return the share of items holding any of keys (upper-bounded by the sum of shares)."""
    if not share:
        return 0.0
    return min(1.0, sum(share.get(k, 0.0) for k in set(keys)))


def pair_features(
    project: ProjectProfile,
    institution: InstitutionProfile,
    evidence: Evidence,
    similarities: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Return the feature dict of one (project, institution) pair.

    Args:
        project: the project side of the pair.
        institution: the institution side of the pair.
        evidence: what the institution's portfolio says (see :func:`build_evidence`).
        similarities: the per-query rescaled values of SIMILARITY_FEATURES (missing = 0).
    """
    sims = similarities or {}
    side = KIND_SIDE.get(institution.kind, "fund")
    stage_idx = project_stage_index(project)
    region = region_fit(project.province, project.city, institution.province, institution.city)
    if stage_idx is not None and evidence.n_with_stage:
        lo, hi = max(0, stage_idx - 1), min(len(STAGES), stage_idx + 2)
        stage_port = float(sum(evidence.stage_share[lo:hi]))
    else:
        stage_port = 0.0
    industry_port = _share_overlap(evidence.industry_share, project.industries)
    return {
        "dense": float(sims.get("dense", 0.0)),
        "dense_port_max": float(sims.get("dense_port_max", 0.0)),
        "dense_port_mean": float(sims.get("dense_port_mean", 0.0)),
        "bm25": float(sims.get("bm25", 0.0)),
        "industry": industry_fit(project.industries, institution.industries),
        "industry_portfolio": industry_port,
        "industry_count": math.log1p(industry_port * evidence.n_items),
        "stage": stage_fit(stage_idx, institution.stages),
        "stage_portfolio": stage_port,
        "stage_count": math.log1p(stage_port * evidence.n_with_stage),
        "stage_round": stage_round_lift(stage_idx, evidence),
        "amount": amount_fit(project.amount_wan, institution.ticket_min_wan, institution.ticket_max_wan)
        if side == "fund"
        else 0.0,
        "region": region,
        "region_base": region if side == "base" else 0.0,
        "region_portfolio": _share_overlap(
            evidence.province_share, [project.province] if project.province else []
        ),
        "services": service_fit(project.needs, institution.services) if side != "fund" else 0.0,
        "need_side": need_side_fit(project.needs, side),
        "activity": math.log1p(evidence.n_portfolio),
        "recency": math.log1p(evidence.recency),
        "recency_fast": math.log1p(evidence.recency_fast),
        "recency_slow": math.log1p(evidence.recency_slow),
        "idle": math.log1p(evidence.idle_days / 30.0),
        "coinvest": float(sims.get("coinvest", 0.0)),
        "award": award_level(project.award),
        "group": _share_overlap(evidence.group_share, [project.group] if project.group else []),
    }


def feature_matrix(
    pairs: Iterable[tuple[ProjectProfile, InstitutionProfile, Evidence, Mapping[str, float]]],
) -> NDArray[np.float64]:
    """Stack pair features into an (n_pairs, len(FEATURES)) float64 matrix."""
    rows = [[f[name] for name in FEATURES] for f in (pair_features(p, i, e, s) for p, i, e, s in pairs)]
    if not rows:
        return np.zeros((0, len(FEATURES)))
    return np.asarray(rows, dtype=np.float64)
