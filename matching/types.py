"""Plain data that crosses the boundary between the web app and the ranking core.

The app translates ORM rows into these frozen dataclasses (app/services.py); matching/ never sees
SQLAlchemy or Flask. Ids are integers (database primary keys, also the FAISS ids). Amounts are in
万元 (10,000 yuan). Kinds, stages, awards and services are the Chinese labels of the enums in
models/enums.py, passed as plain strings so that this package does not import models/ (the
import-linter contract in pyproject.toml). The vocabularies below are this package's copies of them, and
PUBLIC_HIDDEN_FIELDS is its copy of the logged-in tier of app/access.py (the one privacy policy):
tests/test_vocabulary_parity.py and tests/app/test_privacy_policy.py fail when a copy drifts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Side = Literal["fund", "base", "platform"]

#: Institution kind label -> the side of the market it serves.
KIND_SIDE: dict[str, Side] = {
    "政府投资基金": "fund",
    "创业投资机构": "fund",
    "银行": "fund",
    "小微企业创业创新基地": "base",
    "产业示范基地/园区": "base",
    "中外中小企业合作区": "base",
    "中小企业公共服务平台": "platform",
}

#: Ordered project stages; the index is used to measure stage distance.
STAGES: tuple[str, ...] = ("创意阶段", "研发样机", "初创期", "成长期", "扩张期", "成熟期")

#: Award labels, best first.
AWARDS: tuple[str, ...] = ("一等奖", "二等奖", "三等奖", "优胜奖", "50强", "500强", "无")

#: Technical and business services promised to winners (公共服务平台).
SERVICE_KINDS: tuple[str, ...] = (
    "检验检测",
    "技术转移",
    "数字化改造",
    "工业设计",
    "法律",
    "人力资源",
    "财务",
    "知识产权",
)

#: A project's needs: financing, landing space, or one of SERVICE_KINDS.
NEED_FINANCING = "融资"
NEED_LANDING = "落地"


@dataclass(frozen=True)
class PortfolioItem:
    """A project an institution has backed, landed or served (its evidence)."""

    project_id: int
    date: str | None = None  # ISO date
    round: str | None = None
    industries: tuple[str, ...] = ()
    outcome: str | None = None  # e.g. "financing", "landing", "service"


@dataclass(frozen=True)
class ProjectProfile:
    """What the ranking core knows of a project."""

    id: int
    name: str
    text: str  # description (+ team / IP) as embedded
    industries: tuple[str, ...] = ()  # primary industry first
    track: str | None = None
    province: str | None = None
    city: str | None = None
    stage: str | None = None
    amount_wan: float | None = None  # funding sought
    round: str | None = None
    award: str | None = None
    group: str | None = None  # 企业组 / 创客组
    contest_id: int | None = None
    contest_kind: str | None = None
    needs: tuple[str, ...] = ()  # NEED_FINANCING, NEED_LANDING and/or SERVICE_KINDS
    date: str | None = None  # ISO date the project entered the service


@dataclass(frozen=True)
class InstitutionProfile:
    """What the ranking core knows of an institution (fund, base or platform)."""

    id: int
    name: str
    kind: str  # a key of KIND_SIDE
    text: str
    industries: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    province: str | None = None
    city: str | None = None
    ticket_min_wan: float | None = None
    ticket_max_wan: float | None = None
    services: tuple[str, ...] = ()
    space_m2: float | None = None
    capacity: int | None = None
    portfolio: tuple[PortfolioItem, ...] = ()
    #: "avoid" ranks a candidate that nearly copies a backed project below the others; "welcome"
    #: keeps its rank (both flag it). See matching.competitors.
    competitor_policy: str = "avoid"

    @property
    def side(self) -> Side:
        return KIND_SIDE[self.kind]


@dataclass(frozen=True)
class NeedProfile:
    """A need (对接需求) posted by an institution: what kind of project it seeks."""

    id: int
    institution_id: int
    text: str
    industries: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    quota: int | None = None


@dataclass(frozen=True)
class Filters:
    """Candidate filters applied before scoring. None means no restriction.

    public_only ranks on a project's public fields only (the contest's showcase: name, contest, award,
    group, industry, region, description): stage, amount, round and needs are left out of the score,
    so an anonymous visitor's ranking reveals nothing that is not public.
    """

    allowed_ids: frozenset[int] | None = None  # computed by the caller from contest/award/... filters
    public_only: bool = False
    #: False ranks without the institutions' signed connections (their private pipelines): no portfolio
    #: similarity, inferred preferences, activity or co-investment, BM25 on the institutions' own texts,
    #: and pairs already linked are not left out. For viewers who may not see those connections.
    evidence: bool = True


#: ProjectProfile fields the public does not see (app.access.PROJECT_MEMBER_FIELDS: stage, amount,
#: funding round, needs), with the value that stands for "unknown".
PUBLIC_HIDDEN_FIELDS: dict[str, Any] = {"stage": None, "amount_wan": None, "round": None, "needs": ()}


def public_view(p: ProjectProfile) -> ProjectProfile:
    """Return the project as the public sees it: the PUBLIC_HIDDEN_FIELDS unknown."""
    return replace(p, **PUBLIC_HIDDEN_FIELDS)


@dataclass(frozen=True)
class Reason:
    """One human-readable reason (Chinese) with its signed contribution to the score."""

    text: str
    contribution: float = 0.0
    feature: str = ""


@dataclass(frozen=True)
class Match:
    """One ranked candidate: the id, its 匹配度 (0-100) and the reasons behind it.

    competitor_of: name of the backed project the candidate nearly copies (a likely competitor).
    """

    id: int
    score: float
    reasons: tuple[Reason, ...] = ()
    features: dict[str, float] = field(default_factory=dict)
    competitor_of: str | None = None
