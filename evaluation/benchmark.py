"""Rank institutions for projects on the shared evaluation sets, with the service's own code.

    python -m evaluation.benchmark rank --data DIR --queries IDS.txt --out PRED.jsonl
    python -m evaluation.benchmark eval [--data-root ../shared/data] [--out bench-out] [--ranker ltr|service]

``eval`` (``make eval``) by default runs :mod:`evaluation.ltr_eval`: LambdaMART on the dated feature
groups of :mod:`matching.ltr_features`, chosen on the newest history slice, with the dev_test table
against every baseline, paired bootstrap intervals against the best one and feature-group
ablations; every figure goes to ``bench-out/eval.json``. ``--ranker service`` runs the service's
own ranker instead, as described next.

``rank`` reads projects.csv, institutions.csv and edges_history.csv (never a test-edge file),
learns the ranker on a time split inside the history (earlier edges build the profiles, the
latest ``--train-fraction`` of edge dates are the targets), rebuilds the profiles from the whole
history and writes the top 100 institutions per query project as JSONL. ``eval`` does this for
every set present under the data root, scores it with the shared ``eval_ranking.py`` (all / cold /
warm) next to the shared ``baselines.py`` and prints one table. The data are evaluation-only and
are read in place; encoded vectors are cached under ``.cache/`` (outside git).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

from embeddings import Embedder, institution_text, load_embedder, project_text
from matching.features import FEATURES, parse_date, round_stage_index
from matching.learn import (
    PRODUCT_RANKER,
    LabelledPair,
    TrainingReport,
    feature_rows,
    fit_rows,
    sample_negatives,
)
from matching.ranker import HandWeightedRanker, LearnedModel, LearnedRanker, Ranker
from matching.service import MatchingService
from matching.types import STAGES, InstitutionProfile, PortfolioItem, ProjectProfile

__all__ = [
    "DEFAULT_CACHE",
    "DEFAULT_DATA_ROOT",
    "Edge",
    "Encoded",
    "EvalSet",
    "WindowSettings",
    "build_service",
    "encode_cached",
    "load_set",
    "main",
    "rank_projects",
    "run_baselines",
    "train_ranker",
]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The shared evaluation data sit next to the repository, never inside it.
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
DEFAULT_BENCH = REPO_ROOT.parent / "shared" / "bench"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "matching-bench"
SETS = ("itjuzi_ai", "yc", "cb2013")
TOP_N = 100
FUND_KIND = "创业投资机构"  # every investor of the evaluation sets ranks on the fund side
ModelName = Literal["hand", "blend", "logistic", "pairwise", "hgb", "lambdarank"]


@dataclass(frozen=True)
class Edge:
    """One investment: institution, project, ISO date, round label (of the history or the feed)."""

    institution: str
    project: str
    date: str
    round: str


@dataclass
class EvalSet:
    """One evaluation set read from disk, with string ids mapped to dense integers."""

    name: str
    projects: dict[str, dict[str, str]]
    institutions: dict[str, dict[str, str]]
    history: list[Edge]
    project_int: dict[str, int] = field(default_factory=dict)
    inst_int: dict[str, int] = field(default_factory=dict)
    #: The institutions' deals with companies outside the set, from the market's public event feed
    #: (:data:`MARKET_FEEDS`), dated up to the last history day; ``project`` is ``outside:<company>``.
    outside: list[Edge] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.project_int = {pid: n for n, pid in enumerate(sorted(self.projects), start=1)}
        self.inst_int = {iid: n for n, iid in enumerate(sorted(self.institutions), start=1)}
        self.inst_str = {n: iid for iid, n in self.inst_int.items()}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


#: The public, dated investment-event feed of each set's market, relative to the data root. The
#: SmoothNLP sample holds China's events up to 2019 with the investors' Chinese names, the same
#: names IT桔子 uses; yc and cb2013 have no feed beside them.
MARKET_FEEDS: dict[str, str] = {"itjuzi_ai": "smoothnlp_cn/events.csv"}
EARLIEST_EVENT = "1980-01-01"  # the feed carries a few impossible dates (year 0002, 1970)


def load_set(data_dir: Path, feed: bool = True) -> EvalSet:
    """Read projects, institutions and history edges of one set (never its test edges).

    With ``feed``, the market's event feed (:data:`MARKET_FEEDS`) adds the institutions' deals
    with companies outside the set, dated up to the last history day (:func:`outside_events`).
    """
    projects = {r["project_id"]: r for r in _read(data_dir / "projects.csv")}
    institutions = {r["institution_id"]: r for r in _read(data_dir / "institutions.csv")}
    history = [
        Edge(r["institution_id"], r["project_id"], r.get("date", "") or "", r.get("round", "") or "")
        for r in _read(data_dir / "edges_history.csv")
        if r["institution_id"] in institutions and r["project_id"] in projects
    ]
    outside: list[Edge] = []
    feed_path = data_dir.parent / MARKET_FEEDS[data_dir.name] if data_dir.name in MARKET_FEEDS else None
    if feed and feed_path is not None and feed_path.is_file():
        last = max((e.date[:10] for e in history if e.date), default="")
        outside = outside_events(_read(feed_path), projects, institutions, last)
    return EvalSet(data_dir.name, projects, institutions, history, outside=outside)


def outside_events(
    rows: Sequence[Mapping[str, str]],
    projects: Mapping[str, Mapping[str, str]],
    institutions: Mapping[str, Mapping[str, str]],
    last_day: str,
) -> list[Edge]:
    """Return the feed's (institution, company) deals dated up to ``last_day``, one per round.

    A feed row names a company, an ISO date, a round and its investors separated by spaces; an
    investor counts when it is exactly an institution's name. A company the set itself holds
    (by name or legal name) is left out: the set's own history is what it knows of that company.
    """
    by_name = {r["name"].strip(): iid for iid, r in institutions.items() if (r.get("name") or "").strip()}
    own = {(r.get(k) or "").strip() for r in projects.values() for k in ("name", "legal_name")} - {""}
    out: dict[tuple[str, str, str], Edge] = {}
    for row in rows:
        company = " ".join((row.get("company") or "").split())
        day = (row.get("date") or "").strip()[:10]
        if (
            not company
            or company in own
            or not (EARLIEST_EVENT <= day <= last_day)
            or parse_date(day) is None
        ):
            continue
        for name in (row.get("investors_raw") or "").split():
            if (iid := by_name.get(name)) is not None:
                edge = Edge(iid, f"outside:{company}", day, (row.get("round") or "").strip())
                out.setdefault((iid, edge.project, day), edge)
    return list(out.values())


# ---------------------------------------------------------------------- profiles
def _categories(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.strip() for c in (value or "").split(",") if c.strip()))


def _region(value: str | None) -> tuple[str | None, str | None]:
    """Return (province, city) from "省-市/区" (IT桔子) or "city / state / country" (YC)."""
    if not value:
        return None, None
    if " / " in value:
        parts = [p.strip() for p in value.split(" / ")]
        city = parts[0] or None
        province = parts[1] if len(parts) > 1 and parts[1] else None
        return province, city
    parts = [p.strip() for p in value.split("-")]
    return (parts[0] or None), (parts[1] if len(parts) > 1 and parts[1] else None)


_COUNT_ITEM = re.compile(r"([^\s、,，]+?)(\d+)家")


def _counted(value: str | None) -> list[tuple[str, int]]:
    """Parse "企业服务118家 电商消费114家" or "A轮426家、B轮216家" into (label, count) pairs."""
    return [(m.group(1), int(m.group(2))) for m in _COUNT_ITEM.finditer(value or "")]


def stated_stage_counts(row: Mapping[str, str]) -> Counter[int]:
    """Return the deals an institution row states per STAGES index (``profile_rounds``: "A轮426家、B轮216家";
    a round with no stage, such as 战略融资, is not counted)."""
    counts: Counter[int] = Counter()
    for label, n in _counted(row.get("profile_rounds")):
        if (idx := round_stage_index(label)) is not None:
            counts[idx] += n
    return counts


def _next_stage(rounds: Sequence[str]) -> str | None:
    """Return the stage a project is raising for next, from the rounds it has already closed."""
    seen = [i for i in (round_stage_index(r) for r in rounds) if i is not None]
    if not seen:
        return None
    return STAGES[min(max(seen) + 1, len(STAGES) - 1)]


def _young_stage(founded: str | None, as_of: str | None, max_age: int = 2) -> str | None:
    """Return 初创期 for a company founded at most max_age years before as_of, else None."""
    if not founded or not as_of or not founded[:4].isdigit():
        return None
    age = int(as_of[:4]) - int(founded[:4])
    return STAGES[2] if 0 <= age <= max_age else None


def project_profiles(data: EvalSet, visible: Sequence[Edge]) -> list[ProjectProfile]:
    """Return every project's profile as known at the end of the visible edges.

    The stage a project is raising for is the one after its latest visible round; a project with
    no visible round that was founded at most two years earlier counts as a start-up.
    """
    rounds: dict[str, list[str]] = defaultdict(list)
    for e in visible:
        if e.round:
            rounds[e.project].append(e.round)
    as_of = max((e.date for e in visible if e.date), default=None)
    out = []
    for pid, row in data.projects.items():
        province, city = _region(row.get("region"))
        stage = _next_stage(rounds.get(pid, []))
        if stage is None:
            stage = _young_stage(row.get("founded_year"), as_of)
        out.append(
            ProjectProfile(
                id=data.project_int[pid],
                name=row.get("name", "") or pid,
                text=(row.get("description") or "").strip(),
                industries=_categories(row.get("category")),
                province=province,
                city=city,
                stage=stage,
                needs=("融资",),
                date=row.get("date") or None,
            )
        )
    return out


def institution_profiles(
    data: EvalSet, visible: Sequence[Edge], projects: Mapping[int, ProjectProfile]
) -> list[InstitutionProfile]:
    """Return every institution with the portfolio of its visible edges and its own profile fields."""
    portfolio: dict[str, list[PortfolioItem]] = defaultdict(list)
    for e in sorted(visible, key=lambda e: (e.date, e.project)):
        pid = data.project_int[e.project]
        proj = projects.get(pid)
        portfolio[e.institution].append(
            PortfolioItem(
                project_id=pid,
                date=e.date or None,
                round=e.round or None,
                industries=proj.industries if proj else (),
                outcome="financing",
            )
        )
    out = []
    for iid, row in data.institutions.items():
        industries = tuple(label for label, _ in _counted(row.get("profile_industries"))[:5])
        stage_counts = Counter({STAGES[i]: n for i, n in stated_stage_counts(row).items()})
        total = sum(stage_counts.values())
        stages = tuple(s for s in STAGES if total and stage_counts[s] / total >= 0.25)
        out.append(
            InstitutionProfile(
                id=data.inst_int[iid],
                name=row.get("name", "") or iid,
                kind=FUND_KIND,
                text=(row.get("profile_description") or "").strip(),
                industries=industries,
                stages=stages,
                portfolio=tuple(portfolio.get(iid, ())),
            )
        )
    return out


# ---------------------------------------------------------------------- vectors
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def encode_cached(
    embedder: Embedder, texts: Mapping[int, str], cache_file: Path, batch_size: int = 32
) -> dict[int, NDArray[np.float32]]:
    """Return document vectors of texts, encoding only texts whose SHA-256 is not cached yet."""
    keys = {i: hashlib.sha256(t.encode("utf-8")).hexdigest() for i, t in texts.items()}
    cache: dict[str, NDArray[np.float32]] = {}
    if cache_file.is_file():
        with np.load(cache_file) as npz:
            cache = dict(zip(npz["hashes"].tolist(), npz["vectors"], strict=True))
    missing = sorted({h for h in keys.values() if h not in cache})
    if missing:
        by_hash = {keys[i]: texts[i] for i in texts}
        started = time.perf_counter()
        vecs = embedder.encode_documents([by_hash[h] for h in missing], batch_size=batch_size)
        logger.info("encoded %d texts in %.1fs", len(missing), time.perf_counter() - started)
        cache.update(zip(missing, vecs, strict=True))
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        hashes = sorted(cache)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, hashes=np.asarray(hashes), vectors=np.vstack([cache[h] for h in hashes]))
        tmp.replace(cache_file)
    return {i: np.asarray(cache[h], dtype=np.float32) for i, h in keys.items()}


def set_vectors(
    data: EvalSet, embedder: Embedder, cache_dir: Path
) -> tuple[dict[int, NDArray[np.float32]], dict[int, NDArray[np.float32]]]:
    """Return (project vectors, institution vectors) of a set; records without text get none."""
    ptexts = {}
    for pid, row in data.projects.items():
        desc = (row.get("description") or "").strip()
        if desc:
            ptexts[data.project_int[pid]] = project_text(
                row.get("name"), desc, _categories(row.get("category"))
            )
    itexts = {}
    for iid, row in data.institutions.items():
        desc = (row.get("profile_description") or "").strip()
        if desc:
            industries = [label for label, _ in _counted(row.get("profile_industries"))[:5]]
            itexts[data.inst_int[iid]] = institution_text(row.get("name"), FUND_KIND, desc, industries)
    cache = cache_dir / f"{_slug(data.name)}-{_slug(embedder.name)}.npz"
    vectors = encode_cached(embedder, {**{-k: v for k, v in itexts.items()}, **ptexts}, cache)
    pvecs = {k: v for k, v in vectors.items() if k > 0}
    ivecs = {-k: v for k, v in vectors.items() if k < 0}
    return pvecs, ivecs


# ---------------------------------------------------------------------- service and training
@dataclass(frozen=True)
class Encoded:
    """A set with its encoder and its document vectors (project and institution ids as in EvalSet)."""

    data: EvalSet
    embedder: Embedder
    pvecs: Mapping[int, NDArray[np.float32]]
    ivecs: Mapping[int, NDArray[np.float32]]


def build_service(inputs: Encoded, visible: Sequence[Edge], ranker: Ranker | None = None) -> MatchingService:
    """Return a service whose profiles know only the visible edges."""
    projects = project_profiles(inputs.data, visible)
    by_id = {p.id: p for p in projects}
    # Like institutions.csv at test time, only institutions with a visible edge are candidates.
    institutions = [i for i in institution_profiles(inputs.data, visible, by_id) if i.portfolio]
    service = MatchingService(inputs.embedder, index_dir=None, ranker=ranker)
    service.load(projects, institutions, inputs.pvecs, inputs.ivecs)
    return service


@dataclass(frozen=True)
class WindowSettings:
    """How the service's learned rankers are trained on rolling time splits of the history.

    train_fraction: latest share of dated edges used as targets; windows: rolling target windows;
    negatives: sampled negatives per target project; max_projects: target projects in all (and on
    the validation slice); random_state: seed of the sampling and the learner.
    """

    train_fraction: float = 0.4
    windows: int = 4
    negatives: int = 100
    max_projects: int = 600
    random_state: int = 0


def _cutoff(edges: Sequence[Edge], fraction: float) -> str | None:
    """Return the date before which the given fraction of dated edges fall."""
    dated = sorted(e.date for e in edges if e.date)
    if not dated:
        return None
    return dated[min(int(len(dated) * fraction), len(dated) - 1)]


def _split(edges: Sequence[Edge], train_fraction: float) -> tuple[list[Edge], list[Edge]]:
    """Split edges by date: the latest train_fraction of dated edges become targets."""
    cutoff = _cutoff(edges, 1.0 - train_fraction)
    if cutoff is None:
        return list(edges), []
    return [e for e in edges if e.date < cutoff], [e for e in edges if e.date >= cutoff]


def _windows(
    edges: Sequence[Edge], train_fraction: float, windows: int
) -> list[tuple[list[Edge], list[Edge]]]:
    """Return rolling (profile edges, target edges) splits covering the latest train_fraction.

    Window k builds profiles from every edge before its start and takes the edges up to the next
    window's start as targets, so each target is predicted only from its own past.
    """
    starts = [_cutoff(edges, 1.0 - train_fraction * (windows - k) / windows) for k in range(windows)]
    out = []
    for k, start in enumerate(starts):
        if start is None:
            continue
        end = starts[k + 1] if k + 1 < len(starts) else None
        early = [e for e in edges if e.date < start]
        late = [e for e in edges if e.date >= start and (end is None or e.date < end)]
        if early and late:
            out.append((early, late))
    return out


#: Weights of the activity prior tried on the newest history slice (log-odds per unit of
#: log(1 + 2-year-decayed deal count)); 0 = the learned score alone.
PRIOR_WEIGHTS: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)

#: The simple blend: activity plus stage_round (together a smoothed count of who invests at the
#: round the project raises next) plus these weights per unit of 2-year-decayed activity,
#: co-investment with the project's backers and dense text similarity; every other feature weighs
#: 0. The grid is small on purpose: each point is scored on the newest history slice, which holds
#: few projects.
BLEND_GRID: tuple[dict[str, float], ...] = tuple(
    {"activity": 1.0, "stage_round": 1.0, "recency_slow": r, "coinvest": c, "dense": d}
    for r in (0.0, 0.5, 1.0)
    for c in (0.0, 0.5)
    for d in (0.0, 0.1)
)


def blend_ranker(weights: Mapping[str, float]) -> HandWeightedRanker:
    """Return a linear ranker that reads only the given features (every other weight is 0)."""
    return HandWeightedRanker({**dict.fromkeys(FEATURES, 0.0), **weights})


def _blend_label(weights: Mapping[str, float]) -> str:
    return (
        "blend("
        + ",".join(f"{k}={v:g}" for k, v in weights.items() if k not in ("activity", "stage_round"))
        + ")"
    )


#: Share of training negatives drawn by recent activity rather than uniformly.
HARD_SHARE = 0.5


def _training_pairs(
    data: EvalSet,
    service: MatchingService,
    early: Sequence[Edge],
    late: Sequence[Edge],
    negatives: int,
    max_projects: int,
    random_state: int,
    hard_share: float = HARD_SHARE,
) -> list[LabelledPair]:
    """Return later edges (not already linked earlier) as positives plus sampled negatives.

    As at test time, only institutions with at least one earlier edge are candidates: a model
    trained against never-seen institutions would learn "has a portfolio" instead of fit.
    """
    earlier = {(e.institution, e.project) for e in early}
    active = {data.inst_int[e.institution] for e in early}
    backers: dict[int, set[int]] = defaultdict(set)
    for e in early:
        backers[data.project_int[e.project]].add(data.inst_int[e.institution])
    positives: dict[int, set[int]] = defaultdict(set)
    dates: dict[tuple[int, int], str] = {}
    for e in late:
        if (e.institution, e.project) in earlier:
            continue
        pid, iid = data.project_int[e.project], data.inst_int[e.institution]
        if iid not in active:
            continue
        positives[pid].add(iid)
        dates[(pid, iid)] = e.date
    rng = np.random.default_rng(random_state)
    chosen = sorted(positives)
    if len(chosen) > max_projects:
        chosen = sorted(rng.choice(chosen, size=max_projects, replace=False).tolist())
    positives = {p: positives[p] for p in chosen}
    pairs = [
        LabelledPair(service.project(p), service.institution(i), 1, dates[(p, i)])
        for p in chosen
        for i in sorted(positives[p])
    ]
    # Half the negatives are uniform, half drawn by recent activity: when activity already ranks
    # the busy institutions first, the model must learn which busy institution a project chose.
    n_hard = round(negatives * hard_share)
    drawn = sample_negatives(positives, service, "fund", negatives - n_hard, random_state, backers, active)
    if n_hard:
        activity = {i: service.evidence(i).recency_slow for i in active}
        taken: dict[int, set[int]] = defaultdict(set)
        for p, i in drawn:
            taken[p].add(i)
        exclude = {p: backers.get(p, set()) | taken[p] for p in positives}
        drawn += sample_negatives(
            positives, service, "fund", n_hard, random_state + 1, exclude, active, weights=activity
        )
    for p, i in drawn:
        pairs.append(LabelledPair(service.project(p), service.institution(i), 0, None))
    return pairs


def make_ranker(model: ModelName, random_state: int = 0) -> LearnedRanker | None:
    """Return an unfitted learned ranker of that kind, or None for the hand-set weights."""
    if model in ("hand", "blend"):
        return None
    if model == "lambdarank":
        return LearnedRanker(**{**PRODUCT_RANKER, "random_state": random_state})
    return LearnedRanker(model=cast("LearnedModel", model), random_state=random_state)


def train_ranker(
    inputs: Encoded,
    history: Sequence[Edge],
    model: ModelName = "logistic",
    settings: WindowSettings = WindowSettings(),
) -> tuple[Ranker, TrainingReport | None]:
    """Learn a ranker on rolling time splits inside the given history (no test edges involved)."""
    if model == "hand":
        return HandWeightedRanker(), None
    if model == "blend":
        return blend_ranker(BLEND_GRID[0]), None
    X_parts, y_parts, g_parts = [], [], []
    st = settings
    per_window = max(1, st.max_projects // st.windows)
    for k, (early, late) in enumerate(_windows(history, st.train_fraction, st.windows)):
        service = build_service(inputs, early)
        pairs = _training_pairs(
            inputs.data, service, early, late, st.negatives, per_window, st.random_state + k
        )
        X, y, kept, _ = feature_rows(pairs, service)
        X_parts.append(X)
        y_parts.append(y)
        # Window k's project ids are offset so the same project in two windows is two queries.
        g_parts.append(np.asarray([p.project.id for p in kept], dtype=np.int64) + k * 10**9)
    X_all = np.vstack(X_parts) if X_parts else np.zeros((0, len(FEATURES)))
    y_all = np.concatenate(y_parts) if y_parts else np.zeros(0, dtype=np.int64)
    g_all = np.concatenate(g_parts) if g_parts else np.zeros(0, dtype=np.int64)
    return fit_rows(X_all, y_all, make_ranker(model, st.random_state), groups=g_all)


def rank_projects(
    service: MatchingService, data: EvalSet, query_ids: Iterable[str], top_n: int = TOP_N
) -> dict[str, list[str]]:
    """Return the top_n institution ids (strings) for each query project id."""
    out: dict[str, list[str]] = {}
    for qid in query_ids:
        pid = data.project_int.get(qid)
        if pid is None:
            logger.warning("query project %s is not in projects.csv", qid)
            continue
        out[qid] = [data.inst_str[i] for i in service.rank_institutions(pid, "fund", top_n)]
    return out


def _validation_slice(
    data: EvalSet, validation_fraction: float, max_projects: int
) -> tuple[list[Edge], dict[str, set[str]], list[str]]:
    """Return (older history, new links per project in the newest slice, query projects)."""
    head, tail = _split(data.history, validation_fraction)
    seen = {(e.institution, e.project) for e in head}
    relevant: dict[str, set[str]] = defaultdict(set)
    for e in tail:
        if (e.institution, e.project) not in seen:
            relevant[e.project].add(e.institution)
    return head, relevant, sorted(relevant)[:max_projects]


def _mean_ndcg10(
    ranked: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], queries: Sequence[str]
) -> float:
    """Return the mean NDCG@10 of ranked lists against binary relevance."""
    scores = []
    for q in queries:
        gains = [1.0 if i in relevant[q] else 0.0 for i in ranked.get(q, [])[:10]]
        dcg = sum(g / np.log2(r + 2) for r, g in enumerate(gains))
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(relevant[q]), 10)))
        scores.append(dcg / idcg if idcg else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def _validation_blends(
    inputs: Encoded,
    max_projects: int,
    validation_fraction: float = 0.15,
    grid: Sequence[Mapping[str, float]] = BLEND_GRID,
) -> list[tuple[Mapping[str, float], float]]:
    """Return (blend weights, NDCG@10 on the newest history slice) for every grid point."""
    data = inputs.data
    head, relevant, queries = _validation_slice(data, validation_fraction, max_projects)
    service = build_service(inputs, head)
    out = []
    for weights in grid:
        service.set_ranker(blend_ranker(weights))
        out.append((weights, _mean_ndcg10(rank_projects(service, data, queries, 10), relevant, queries)))
    return out


def _validation_ndcg(
    inputs: Encoded,
    model: ModelName,
    settings: WindowSettings,
    validation_fraction: float = 0.15,
    prior_weights: Sequence[float] = (0.0,),
) -> dict[float, float]:
    """Return NDCG@10 per prior weight of a model trained on older history, scored on the newest slice."""
    data = inputs.data
    head, relevant, queries = _validation_slice(data, validation_fraction, settings.max_projects)
    ranker, _ = train_ranker(inputs, head, model, settings)
    out: dict[float, float] = {}
    weights = prior_weights if isinstance(ranker, LearnedRanker) else (0.0,)
    for weight in weights:
        if isinstance(ranker, LearnedRanker):
            ranker.prior_weight = weight
        service = build_service(inputs, head, ranker)
        out[weight] = _mean_ndcg10(rank_projects(service, data, queries, 10), relevant, queries)
    return out


# ---------------------------------------------------------------------- commands
def run_rank(
    data_dir: Path,
    query_ids: Sequence[str],
    out: Path,
    *,
    model: ModelName | Literal["auto"] = "auto",
    embedder_spec: str = "e5",
    cache_dir: Path = DEFAULT_CACHE,
    settings: WindowSettings = WindowSettings(),
    ranker_out: Path | None = None,
) -> dict[str, Any]:
    """Train on history, rank every institution for each query project, write JSONL; return a summary."""
    started = time.perf_counter()
    data = load_set(data_dir)
    embedder = load_embedder(embedder_spec)
    inputs = Encoded(data, embedder, *set_vectors(data, embedder, cache_dir))
    chosen: ModelName
    validation: dict[str, float] = {}
    prior = 0.0
    best = (-1.0, "hand", 0.0)
    blend: Mapping[str, float] | None = None
    if model in ("auto", "blend"):
        # The simple blend and its weights are chosen on the newest slice of history.
        for weights, ndcg in _validation_blends(inputs, settings.max_projects):
            validation[_blend_label(weights)] = ndcg
            if ndcg > best[0] + 1e-9:
                best, blend = (ndcg, "blend", 0.0), weights
    if model == "auto":
        # Choose the model family and the weight of the activity prior on the newest slice of
        # history, never on test edges. Boosting is left to an explicit --model hgb: it is slower
        # and did not validate better. A learned model must beat the blend to be chosen.
        for candidate in ("hand", "logistic", "pairwise"):
            per_weight = _validation_ndcg(inputs, candidate, settings, prior_weights=PRIOR_WEIGHTS)
            for weight, ndcg in per_weight.items():
                validation[f"{candidate}+prior{weight:g}" if weight else candidate] = ndcg
                if ndcg > best[0] + 1e-9:
                    best = (ndcg, candidate, weight)
        chosen, prior = best[1], best[2]  # type: ignore[assignment]
    else:
        chosen = model
    ranker: Ranker
    report: TrainingReport | None = None
    if chosen == "blend":
        ranker = blend_ranker(blend or BLEND_GRID[0])
    else:
        ranker, report = train_ranker(inputs, data.history, chosen, settings)
    if isinstance(ranker, LearnedRanker):
        ranker.prior_weight = prior
    if ranker_out is not None:
        ranker.save(ranker_out)
    service = build_service(inputs, data.history, ranker)
    ranked = rank_projects(service, data, query_ids)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for qid, inst_ids in ranked.items():
            f.write(json.dumps({"project_id": qid, "ranked_institution_ids": inst_ids}) + "\n")
    return {
        "set": data.name,
        "model": chosen,
        "prior_weight": prior,
        "blend": None if chosen != "blend" else dict(blend or BLEND_GRID[0]),
        "validation_ndcg10": validation,
        "importances": dict(ranker.feature_importances()),
        "training": None if report is None else {"pairs": report.n_pairs, "positives": report.n_positive},
        "queries": len(ranked),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _score(bench: Path, pred: Path, test: Path, subset: str, compare: Path | None = None) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(bench / "eval_ranking.py"),
        "--pred",
        str(pred),
        "--test",
        str(test),
        "--subset",
        subset,
        "--json",
    ]
    if compare is not None:
        cmd += ["--compare", str(compare)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return {}
    return dict(json.loads(res.stdout))


def _has_subset(test: Path, subset: str) -> bool:
    flags = {r.get("project_seen_in_history", "") for r in _read(test)}
    return subset == "all" or ("1" if subset == "warm" else "0") in flags


def run_baselines(bench: Path, data_dir: Path, test: Path, out: Path) -> dict[str, Path]:
    """Run the shared ``baselines.py`` on a set; return method name -> predictions JSONL."""
    subprocess.run(
        [
            sys.executable,
            str(bench / "baselines.py"),
            "--data",
            str(data_dir),
            "--test",
            str(test),
            "--outdir",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return {p.stem: p for p in sorted(out.glob("*.jsonl"))}


def run_eval(
    data_root: Path = DEFAULT_DATA_ROOT,
    bench: Path = DEFAULT_BENCH,
    out_dir: Path = REPO_ROOT / "eval-out",
    sets: Sequence[str] = SETS,
    model: ModelName | Literal["auto"] = "auto",
    cache_dir: Path = DEFAULT_CACHE,
) -> dict[str, Any]:
    """Rank, score and compare with the baselines for every set present; return all results."""
    results: dict[str, Any] = {}
    for name in sets:
        data_dir = data_root / name
        test = data_dir / "edges_dev_test.csv"
        if not (data_dir / "edges_history.csv").is_file() or not test.is_file():
            print(f"[{name}] skipped: {data_dir} not found (evaluation data are optional)")
            continue
        set_out = out_dir / name
        set_out.mkdir(parents=True, exist_ok=True)
        queries = sorted({r["project_id"] for r in _read(test)})
        (set_out / "queries.txt").write_text("\n".join(queries) + "\n", encoding="utf-8")
        print(f"[{name}] ranking {len(queries)} dev_test projects ...", flush=True)
        summary = run_rank(data_dir, queries, set_out / "ours.jsonl", model=model, cache_dir=cache_dir)
        print(
            f"[{name}] model={summary['model']} validation={summary['validation_ndcg10']} "
            f"in {summary['seconds']}s",
            flush=True,
        )
        methods = {"ours": set_out / "ours.jsonl"}
        methods.update(run_baselines(bench, data_dir, test, set_out / "baselines"))
        table: dict[str, dict[str, dict[str, Any]]] = {}
        for method, pred in methods.items():
            table[method] = {}
            for subset in ("all", "cold", "warm"):
                if _has_subset(test, subset):
                    table[method][subset] = _score(bench, pred, test, subset)
        popularity = methods.get("popularity")
        diff = _score(bench, methods["ours"], test, "all", popularity) if popularity else {}
        results[name] = {"summary": summary, "table": table, "vs_popularity": diff}
    return results


def format_table(results: Mapping[str, Any]) -> str:
    """Return the results as a Markdown table (Recall@10 / NDCG@10 / MRR per subset)."""
    lines = ["| set | method | all R@10 / N@10 / MRR | cold | warm |", "|---|---|---|---|---|"]
    for name, res in results.items():
        for method, subsets in res["table"].items():
            cells = []
            for subset in ("all", "cold", "warm"):
                m = subsets.get(subset)
                cells.append(
                    f"{m['recall@10']:.3f} / {m['ndcg@10']:.3f} / {m['mrr']:.3f} (n={m['n_test_projects']})"
                    if m
                    else "–"
                )
            label = f"**{method}**" if method == "ours" else method
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
        d = res.get("vs_popularity") or {}
        if d:
            lines.append(
                f"| {name} | ours − popularity | NDCG@10 {d['diff_ndcg@10']:+.3f} "
                f"[{d['diff_ndcg@10_ci95'][0]:+.3f}, {d['diff_ndcg@10_ci95'][1]:+.3f}] | | |"
            )
    return "\n".join(lines)


def run_ltr_eval(
    data_root: Path,
    bench: Path,
    out_dir: Path,
    sets: Sequence[str],
    cache_dir: Path = DEFAULT_CACHE,
    service_features: bool = False,
    jitter: int | None = None,
    feed: bool = True,
) -> int:
    """LambdaMART per set (chosen on history), the dev_test table with intervals and ablations.

    Prints the report and writes every figure to ``out_dir/eval.json``. ``feed=False`` leaves the
    market's event feed (:data:`MARKET_FEEDS`) out.
    """
    from evaluation.ltr_eval import evaluate_set, format_report

    started = time.perf_counter()
    embedder = load_embedder("e5")
    results: dict[str, Any] = {}
    for name in sets:
        data_dir = data_root / name
        if not (data_dir / "edges_history.csv").is_file() or not (data_dir / "edges_dev_test.csv").is_file():
            print(f"[{name}] skipped: {data_dir} not found (evaluation data are optional)")
            continue
        print(f"[{name}] choosing on history, fitting, ranking dev_test ...", flush=True)
        data = load_set(data_dir, feed=feed)
        if data.outside:
            print(
                f"[{name}] market feed {MARKET_FEEDS[name]}: {len(data.outside)} deals of "
                f"{len({e.institution for e in data.outside})} institutions with "
                f"{len({e.project for e in data.outside})} companies outside the set, up to the last history day",
                flush=True,
            )
        results[name] = evaluate_set(
            data,
            data_dir,
            bench,
            out_dir / name,
            embedder,
            cache_dir,
            service_features=service_features,
            jitter=jitter,
        )
        results[name]["outside_deals"] = len(data.outside)
        print(format_report({name: results[name]}), flush=True)
    seconds = round(time.perf_counter() - started, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(
        json.dumps({"seconds": seconds, "sets": results}, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    print(f"\nall sets in {seconds}s; figures in {out_dir / 'eval.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rank or eval command."""
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        choices=["auto", "hand", "blend", "logistic", "pairwise", "hgb", "lambdarank"],
        default="auto",
        help="ranker; auto picks by NDCG@10 on the newest slice of history",
    )
    common.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="vector cache directory")
    rank = sub.add_parser("rank", parents=[common], help="rank institutions for the query projects")
    rank.add_argument("--data", type=Path, required=True)
    rank.add_argument("--queries", type=Path, required=True, help="one project_id per line")
    rank.add_argument("--out", type=Path, required=True)
    rank.add_argument("--save-ranker", type=Path, default=None, help="also write the fitted ranker (joblib)")
    ev = sub.add_parser("eval", parents=[common], help="rank, score and compare on every set present")
    ev.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    ev.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ev.add_argument("--out", type=Path, default=None, help="output folder (default bench-out/, or eval-out/)")
    ev.add_argument("--sets", default=",".join(SETS))
    ev.add_argument(
        "--ranker",
        choices=["ltr", "service"],
        default="ltr",
        help="ltr: LambdaMART on the dated feature groups, with intervals and ablations (default); "
        "service: the service's own ranker chosen by --model",
    )
    ev.add_argument(
        "--service-features",
        action="store_true",
        help="ltr: add the service's own feature vector (built per day from the visible history) as "
        "one more group; slower (a service per training window)",
    )
    ev.add_argument(
        "--jitter",
        type=int,
        default=None,
        metavar="SEED",
        help="ltr: add seeded noise of sd 1e-6 (float rounding, as between machines) to every vector; "
        "run a few seeds to see that the choice and the figures do not hang on the last bits",
    )
    ev.add_argument(
        "--no-feed",
        dest="feed",
        action="store_false",
        help="ltr: leave out the market's public event feed (the institutions' deals outside the set)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "rank":
        queries = [q.strip() for q in args.queries.read_text(encoding="utf-8").splitlines() if q.strip()]
        summary = run_rank(
            args.data, queries, args.out, model=args.model, cache_dir=args.cache, ranker_out=args.save_ranker
        )
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    if not args.data_root.is_dir():
        print(f"evaluation data skipped: no data at {args.data_root}")
    elif args.ranker == "ltr":
        out = args.out or REPO_ROOT / "bench-out"
        run_ltr_eval(
            args.data_root,
            args.bench,
            out,
            args.sets.split(","),
            args.cache,
            args.service_features,
            args.jitter,
            args.feed,
        )
    else:
        args.out = args.out or REPO_ROOT / "eval-out"
        results = run_eval(args.data_root, args.bench, args.out, args.sets.split(","), args.model, args.cache)
        (args.out / "results.json").write_text(
            json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        print(format_table(results))
    from evaluation.replay import print_replay

    print_replay()  # the demo's own history replayed, next to the real data (either ranker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
