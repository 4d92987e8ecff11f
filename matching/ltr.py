"""LambdaMART (LightGBM ``LGBMRanker``, lambdarank) over :mod:`matching.ltr_features`.

Training never looks past the day it is asked to predict: each rolling window takes the events of
``[start, end)`` as new links (targets) of the projects they name and builds every feature from
the events before ``start``. Each target project is a query group; its negatives are sampled from
that group's own candidates (the active institutions that had not backed it yet): half the hardest
under a cheap candidate score (what a first-stage retriever would return), half uniformly.

Model choice and hyper-parameters are picked on the newest slice of the given history only (the
windows then end where that slice begins), joined by the slices before it while the slices so far
hold fewer than ``min_validation_queries`` target projects (each older slice scored by models
trained on the windows ending where it begins); :func:`fit_final` retrains the chosen setting on
windows ending at the end of the history. The choice is made over every validation project and again
per segment (:data:`SEGMENTS`: new projects, projects with earlier investors), where the text and the
market speak for the first and the co-investment graph and rounds also for the second. A learned model
is chosen over the best single-feature scorer only when it leads by more than one standard error of
their paired per-query difference (on a few dozen validation queries a smaller lead is the luck of
the slice, and it flips with the last bits of the inputs). A segment picks only the kind of model
(the LambdaMART whose hyper-parameters validate best on every query, or a single scorer) and keeps
the overall choice unless its own leads that by more than one standard error. Everything is
seeded and single-threaded, so two runs agree.

The trees start from a fixed prior (LightGBM init_score) the grid chooses: none, recent activity, or
stage-aware popularity (the institution's deals in the round the project raises next); a prior that
is one value on every training row (a set without round labels) is skipped, as it ranks like none.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matching.ltr_features import (
    FEATURE_GROUPS,
    LTR_FEATURES,
    InvestmentLog,
    ProjectContent,
    Snapshot,
    pair_block,
    snapshot,
)

__all__ = [
    "DEFAULT_GRID",
    "SEGMENTS",
    "SIMPLE_SCORERS",
    "ColumnScorer",
    "LTRSettings",
    "LambdaMART",
    "Selection",
    "TrainingSet",
    "fit_final",
    "lgbm_ranker",
    "ndcg10",
    "query_segments",
    "rank_queries",
    "select_model",
    "training_set",
    "validation_slices",
    "window_bounds",
    "window_targets",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LTRSettings:
    """Settings shared by every set (nothing here is tuned per set)."""

    windows: int = 6  # rolling target windows
    train_fraction: float = 0.8  # latest share of the events (before the cut) used as window targets
    validation_fraction: float = 0.15  # newest share of history that picks the model
    #: The model is picked on up to this many consecutive validation slices (newest first, each
    #: ``validation_fraction`` of the events), adding older slices only while the slices so far
    #: hold fewer than ``min_validation_queries`` target projects: on a small history a single
    #: slice holds a few dozen projects and its choice is mostly noise.
    max_validation_slices: int = 4
    min_validation_queries: int = 150
    #: A segment of queries (:data:`SEGMENTS`: new projects, projects with earlier investors) gets a
    #: choice of its own when the validation slices hold at least this many of its projects; else it
    #: takes the choice over every query.
    min_segment_queries: int = 40
    negatives: int = 200  # sampled negatives per query group
    hard_share: float = 0.1  # share of negatives taken from the top of the candidate score
    max_queries: int = 300  # per window and on the validation slice (seeded sample beyond)
    chunk: int = 96  # query projects per feature block
    seed: int = 0
    bags: int = 3  # LambdaMART models per fit, seeds seed .. seed + bags - 1, scores averaged ...
    bag_below_rows: int = 150_000  # ... when the training set has fewer rows (else one model)

    def bags_for(self, rows: int) -> int:
        """Return the models per fit for a training set of that many rows.

        A bag cuts the seed-to-seed variance of a model fit on few target projects; on a large
        training set one model varies little and a bag would only multiply the fitting time.
        """
        return self.bags if rows < self.bag_below_rows else 1


#: The activity feature a prior reads unless a grid point names another ("prior_feature").
PRIOR_FEATURE = "act_recent_slow"
#: The other prior the grid offers: the institution's deals in the round the project raises next,
#: in expectation over the market's next-round rates (stage-aware popularity; constant, and then
#: skipped, on a set without round labels).
STAGE_PRIOR_FEATURE = "tr_expected_round"
#: Hyper-parameter grid; every point is also scored at each of ``iterations`` boosting rounds.
#: Stumps (2 leaves) make an additive model, one learned curve per feature on top of the prior:
#: on a few hundred target projects (itjuzi_ai) deeper trees fit the training windows' noise, and
#: every feature group then ablates negative.
DEFAULT_GRID: tuple[dict[str, Any], ...] = tuple(
    {
        "num_leaves": leaves,
        "min_child_samples": 50,
        "learning_rate": 0.05,
        "reg_lambda": 5.0,
        "prior": prior,
        **({"prior_feature": feature} if feature != PRIOR_FEATURE else {}),
    }
    for prior, feature in (
        (0.0, PRIOR_FEATURE),
        (1.0, PRIOR_FEATURE),
        (4.0, PRIOR_FEATURE),
        (1.0, STAGE_PRIOR_FEATURE),
        (4.0, STAGE_PRIOR_FEATURE),
    )
    for leaves in (2, 4, 15)
)
ITERATIONS: tuple[int, ...] = (25, 50, 100)
#: Single-feature rankers that compete with the learned model on the validation slice.
SIMPLE_SCORERS: tuple[str, ...] = (
    "act_recent_slow",
    "act_log_count",
    "sim_mean",
    "sim_top3",
    STAGE_PRIOR_FEATURE,
)


def lgbm_ranker(params: Mapping[str, Any], n_estimators: int, seed: int = 0) -> Any:
    """Return an unfitted ``lightgbm.LGBMRanker`` (lambdarank), seeded and single-threaded.

    The one constructor every LambdaMART here uses (the evaluation's and the product's): row
    and column subsampling are seeded and ``deterministic`` with one thread makes refits equal.
    """
    from lightgbm import LGBMRanker

    return LGBMRanker(
        objective="lambdarank",
        n_estimators=n_estimators,
        random_state=seed,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        lambdarank_truncation_level=20,
        verbose=-1,
        **dict(params),
    )


class LambdaMART:
    """A LightGBM lambdarank model over chosen LTR_FEATURES columns (seeded, one thread).

    With ``bags`` > 1 it is a bag of that many models fit on the same rows with seeds ``seed``,
    ``seed + 1``, ...: their row and column subsamples differ, and the score is their mean. On the
    few hundred target projects of a set a single model's ranking moves with its seed; the mean does
    much less.
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        columns: NDArray[np.int64],
        n_estimators: int = 400,
        seed: int = 0,
        names: Sequence[str] = LTR_FEATURES,
        bags: int = 1,
    ):
        if bags < 1:
            raise ValueError(f"bags must be at least 1, got {bags}")
        self.names = tuple(names)
        params = dict(params)
        #: Weight of a fixed popularity prior (log of the 2-year-decayed deal count) the trees start
        #: from (LightGBM init_score): the trees then only learn corrections to who-is-active.
        self.prior_weight = float(params.pop("prior", 0.0))
        #: The column the prior reads: 2-year-decayed deals, or ``act_log_count`` (all-time distinct
        #: projects, the popularity baseline's own order).
        self.prior_feature = str(params.pop("prior_feature", PRIOR_FEATURE))
        self._prior_col = LTR_FEATURES.index(self.prior_feature)
        self.params = params
        self.columns = np.asarray(columns, dtype=np.int64)
        self.n_estimators = n_estimators
        self.seed = seed
        self.bags = bags
        self.num_iteration: int | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.names[j] for j in self.columns)

    def fit(self, X: NDArray[np.float32], y: NDArray[np.int64], group: NDArray[np.int64]) -> LambdaMART:
        """Fit on rows X (n, len(LTR_FEATURES)), 0/1 labels y and query group sizes."""
        self.models_ = []
        for b in range(self.bags):
            model = lgbm_ranker(self.params, self.n_estimators, self.seed + b)
            model.fit(
                X[:, self.columns],
                y,
                group=group,
                feature_name=list(self.feature_names),
                init_score=self._prior(X),
            )
            self.models_.append(model)
        self.model_ = self.models_[0]
        return self

    def _predict(self, X: NDArray[np.float32], it: int | None, **kwargs: Any) -> NDArray[np.float64]:
        """Return the bag's mean raw prediction (or mean contributions with pred_contrib=True)."""
        cols = X[:, self.columns]
        out = [
            np.asarray(m.booster_.predict(cols, num_iteration=it, num_threads=1, **kwargs), dtype=np.float64)
            for m in self.models_
        ]
        return np.mean(out, axis=0)

    def _prior(self, X: NDArray[np.float32]) -> NDArray[np.float64]:
        if not self.prior_weight:
            return np.zeros(X.shape[0])
        return self.prior_weight * np.nan_to_num(X[:, self._prior_col].astype(np.float64))

    def score(self, X: NDArray[np.float32], num_iteration: int | None = None) -> NDArray[np.float64]:
        """Return one score per row of X (n, len(LTR_FEATURES)); higher ranks first."""
        it = num_iteration if num_iteration is not None else self.num_iteration
        return self._predict(X, it) + self._prior(X)

    def contributions(self, X: NDArray[np.float32]) -> NDArray[np.float64]:
        """Return exact per-feature (TreeSHAP) contributions, (n, n_columns); the last bias column dropped."""
        # TreeSHAP is additive: the bag's mean score splits into the mean of its models' contributions.
        contrib = self._predict(X, self.num_iteration, pred_contrib=True)[:, :-1]
        if self.prior_weight and self._prior_col in self.columns:
            contrib[:, int(np.flatnonzero(self.columns == self._prior_col)[0])] += self._prior(X)
        return contrib

    def importances(self) -> dict[str, float]:
        """Return the total split gain per feature (the bag's mean)."""
        gain = np.mean([m.booster_.feature_importance(importance_type="gain") for m in self.models_], axis=0)
        return {n: float(g) for n, g in zip(self.feature_names, gain, strict=True)}

    def label(self) -> str:
        return _label(self.params, self.prior_weight, self.num_iteration, self.bags, self.prior_feature)


def _constant_prior(params: Mapping[str, Any], X: NDArray[np.float32], names: Sequence[str]) -> bool:
    """Return whether a grid point has a prior whose column is the same on every training row."""
    if not params.get("prior"):
        return False
    v = X[:, list(names).index(str(params.get("prior_feature", PRIOR_FEATURE)))]
    v = v[~np.isnan(v)]
    return v.size == 0 or bool(np.all(v == v[0]))


def _label(
    params: Mapping[str, Any],
    prior: float,
    iterations: int | None,
    bags: int = 1,
    prior_feature: str = PRIOR_FEATURE,
) -> str:
    bag = f",bags={bags}" if bags > 1 else ""
    on = f"*{prior_feature}" if prior and prior_feature != PRIOR_FEATURE else ""
    return (
        f"lambdamart(leaves={params.get('num_leaves')},min_child={params.get('min_child_samples')},"
        f"prior={prior:g}{on},iter={iterations}{bag})"
    )


@dataclass
class ColumnScorer:
    """Rank by one feature (NaN last): the simple references the learned model must beat."""

    name: str

    def score(self, X: NDArray[np.float32]) -> NDArray[np.float64]:
        v = X[:, LTR_FEATURES.index(self.name)].astype(np.float64)
        return np.where(np.isnan(v), -np.inf, v)

    def label(self) -> str:
        return f"single({self.name})"


def window_bounds(day: NDArray[np.int64], end: int, fraction: float, windows: int) -> list[tuple[int, int]]:
    """Return rolling [start, stop) day ranges covering the latest ``fraction`` of events before ``end``."""
    days = np.sort(day[day < end])
    if days.size == 0:
        return []
    cuts = [
        int(days[min(int(days.size * (1.0 - fraction * (windows - k) / windows)), days.size - 1)])
        for k in range(windows)
    ]
    cuts.append(end)
    out: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(cuts):
        if b > a and (not out or a >= out[-1][1]):
            out.append((a, b))
    return out


def window_targets(log: InvestmentLog, start: int, stop: int) -> dict[int, set[int]]:
    """Return project -> institutions newly linked in [start, stop), active before start, new pairs.

    Only the set's own events are targets (:attr:`InvestmentLog.outside` events are not); an
    institution counts as active by any earlier event, its outside deals included.
    """
    before = log.day < start
    active = np.zeros(log.n_institutions, dtype=bool)
    active[log.inst[before]] = True
    linked = set(zip(log.inst[before].tolist(), log.proj[before].tolist(), strict=True))
    inside = (log.day >= start) & (log.day < stop) & log.own
    out: dict[int, set[int]] = {}
    for i, p in zip(log.inst[inside].tolist(), log.proj[inside].tolist(), strict=True):
        if active[i] and (i, p) not in linked:
            out.setdefault(p, set()).add(i)
    return out


def _sample(rng: np.random.Generator, items: Sequence[int], n: int) -> list[int]:
    items = sorted(items)
    if len(items) <= n:
        return items
    return sorted(rng.choice(items, size=n, replace=False).tolist())


def candidate_score(X: NDArray[np.float32]) -> NDArray[np.float64]:
    """Return a cheap first-stage score per (query, candidate) of a (n_q, n_i, F) block.

    The per-query z-scores of recent activity, top-3 portfolio similarity, term-profile similarity
    and co-investment PageRank, summed (missing = 0): what a retriever would put on top.
    """
    total = np.zeros(X.shape[:2])
    for name in ("act_recent_slow", "sim_top3", "prof_tfidf", "g_ppr"):
        v = X[:, :, LTR_FEATURES.index(name)].astype(np.float64)
        ok = ~np.isnan(v)
        n = ok.sum(axis=1, keepdims=True)
        filled = np.where(ok, v, 0.0)
        mu = np.divide(filled.sum(axis=1, keepdims=True), n, out=np.zeros((len(v), 1)), where=n > 0)
        dev = np.where(ok, v - mu, 0.0)
        sd = np.sqrt(
            np.divide((dev**2).sum(axis=1, keepdims=True), n, out=np.zeros((len(v), 1)), where=n > 0)
        )
        total += np.divide(dev, sd, out=np.zeros_like(dev), where=sd > 0)
    return total


def _blocks(
    snap: Snapshot, content: ProjectContent, queries: Sequence[int], insts: NDArray[np.int64], chunk: int
) -> Iterator[tuple[list[int], NDArray[np.float32], NDArray[np.bool_]]]:
    for a in range(0, len(queries), chunk):
        q = list(queries[a : a + chunk])
        X, linked = pair_block(snap, content, q, insts)
        yield q, X, linked


@dataclass
class TrainingSet:
    """Rows of all windows: features (all LTR_FEATURES columns), labels and query group sizes."""

    X: NDArray[np.float32]
    y: NDArray[np.int64]
    group: NDArray[np.int64]
    windows: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n_queries(self) -> int:
        return len(self.group)


def training_set(
    log: InvestmentLog, content: ProjectContent, end: int, settings: LTRSettings = LTRSettings()
) -> TrainingSet:
    """Return the LambdaMART rows of the rolling windows ending at ``end`` (no event on/after end read)."""
    rng = np.random.default_rng(settings.seed)
    bounds = window_bounds(log.day[log.own], end, settings.train_fraction, settings.windows)
    Xs, ys, groups = [], [], []
    for start, stop in bounds:
        targets = window_targets(log, start, stop)
        if not targets:
            continue
        queries = _sample(rng, list(targets), settings.max_queries)
        snap = snapshot(log, content, start)
        insts = np.flatnonzero(snap.active)
        pos_of = {int(i): n for n, i in enumerate(insts)}
        for q, X, linked in _blocks(snap, content, queries, insts, settings.chunk):
            cand = candidate_score(X)
            for r, pid in enumerate(q):
                pos = np.array(sorted(pos_of[i] for i in targets[pid] if i in pos_of), dtype=np.int64)
                if pos.size == 0:
                    continue
                free = ~linked[r]
                free[pos] = False
                pool = np.flatnonzero(free)
                n_hard = min(round(settings.negatives * settings.hard_share), pool.size)
                hard = pool[np.argsort(-cand[r, pool], kind="stable")[:n_hard]]
                rest = np.setdiff1d(pool, hard)
                n_uni = min(settings.negatives - n_hard, rest.size)
                uni = rng.choice(rest, size=n_uni, replace=False) if n_uni else np.zeros(0, dtype=np.int64)
                rows = np.concatenate([pos, hard, np.sort(uni)])
                Xs.append(X[r, rows])
                ys.append(
                    np.r_[np.ones(pos.size, dtype=np.int64), np.zeros(rows.size - pos.size, dtype=np.int64)]
                )
                groups.append(rows.size)
    if not Xs:
        return TrainingSet(
            np.zeros((0, len(content.feature_names)), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            bounds,
        )
    return TrainingSet(np.vstack(Xs), np.concatenate(ys), np.asarray(groups, dtype=np.int64), bounds)


def rank_queries(
    log: InvestmentLog,
    content: ProjectContent,
    as_of: int,
    queries: Sequence[int],
    scorers: Mapping[str, Any],
    top_n: int = 100,
    chunk: int = 96,
    iterations: Mapping[str, int | None] | None = None,
) -> dict[str, dict[int, list[int]]]:
    """Return, per scorer name, query project -> its top_n institutions (earlier backers left out).

    Candidates are the institutions active before ``as_of``; every scorer reads the same feature
    blocks (computed once per chunk). ``iterations`` optionally gives a LambdaMART's rounds per name.
    """
    snap = snapshot(log, content, as_of)
    insts = np.flatnonzero(snap.active)
    out: dict[str, dict[int, list[int]]] = {name: {} for name in scorers}
    for q, X, linked in _blocks(snap, content, list(queries), insts, chunk):
        flat = X.reshape(-1, X.shape[2])
        for name, scorer in scorers.items():
            it = (iterations or {}).get(name)
            s = scorer.score(flat, it) if it is not None else scorer.score(flat)
            s = np.asarray(s, dtype=np.float64).reshape(len(q), len(insts))
            s = np.where(linked, -np.inf, s)
            # Ties break by institution index so the ranking is deterministic.
            order = np.lexsort((np.broadcast_to(insts, s.shape), -s), axis=1)[:, :top_n]
            for r, pid in enumerate(q):
                keep = order[r][~linked[r, order[r]]]
                out[name][pid] = insts[keep].tolist()
    return out


def ndcg10(ranked: Mapping[int, Sequence[int]], relevant: Mapping[int, set[int]]) -> float:
    """Return the mean NDCG@10 (binary gains) over the relevant map's queries."""
    scores = []
    for q, rel in relevant.items():
        got = ranked.get(q, [])[:10]
        dcg = sum(1.0 / np.log2(r + 2) for r, i in enumerate(got) if i in rel)
        idcg = sum(1.0 / np.log2(r + 2) for r in range(min(len(rel), 10)))
        scores.append(dcg / idcg if idcg else 0.0)
    return float(np.mean(scores)) if scores else 0.0


#: Query segments that may each get their own model: a project with no investor before the day it is
#: ranked on ("cold": only its text, category and the market speak for it) or with earlier investors
#: ("warm": its co-investment graph and rounds speak too). The same rule on every set.
SEGMENTS: tuple[str, ...] = ("cold", "warm")


def query_segments(log: InvestmentLog, projects: Sequence[int], as_of: int) -> list[str]:
    """Return the segment of each project ranked on day ``as_of`` (warm: an event before that day)."""
    seen = np.zeros(log.n_projects, dtype=bool)
    seen[log.proj[log.day < as_of]] = True
    return ["warm" if seen[int(p)] else "cold" for p in projects]


@dataclass
class Selection:
    """The model chosen on the newest history slices and the score of every candidate there."""

    kind: str  # "lambdamart" or "single"
    params: dict[str, Any]
    iterations: int | None
    feature: str | None
    validation: dict[str, float]
    cut: int  # first day of the newest validation slice
    n_validation_queries: int  # over every slice used
    #: The best LambdaMART setting on the same slices (params, iterations), also when a single
    #: scorer wins: the learned model the evaluation reports and ablates next to the choice.
    best_lambdamart: tuple[dict[str, Any], int] | None = None
    #: The choice made on one segment's validation queries alone (:data:`SEGMENTS`), for each segment
    #: with enough of them; a segment missing here takes this (overall) choice.
    segments: dict[str, Selection] = field(default_factory=dict)
    #: The chosen candidate's name in ``validation``.
    name: str = ""

    def label(self) -> str:
        """Return the chosen model's name as the validation table names it."""
        if self.kind == "single":
            return f"single({self.feature})"
        prior_feature = str(self.params.get("prior_feature", PRIOR_FEATURE))
        return _label(self.params, float(self.params.get("prior", 0.0)), self.iterations, 1, prior_feature)

    def for_segment(self, segment: str) -> Selection:
        """Return the choice a query of the segment is ranked with."""
        return self.segments.get(segment, self)


def validation_slices(
    day: NDArray[np.int64], end: int, fraction: float, max_slices: int
) -> list[tuple[int, int]]:
    """Return up to ``max_slices`` consecutive [cut, stop) validation slices, newest first.

    Each covers ``fraction`` of the events before ``end``; the newest one ends at ``end``.
    """
    days = np.sort(day[day < end])
    if days.size == 0:
        return []
    out: list[tuple[int, int]] = []
    stop = end
    for k in range(1, max_slices + 1):
        cut = int(days[min(max(int(days.size * (1.0 - fraction * k)), 0), days.size - 1)])
        if cut >= stop or (out and cut <= int(days[0])):
            break
        out.append((cut, stop))
        stop = cut
    return out


def select_model(
    log: InvestmentLog,
    content: ProjectContent,
    end: int,
    settings: LTRSettings = LTRSettings(),
    grid: Sequence[Mapping[str, Any]] = DEFAULT_GRID,
    iterations: Sequence[int] = ITERATIONS,
    columns: NDArray[np.int64] | None = None,
) -> Selection:
    """Choose model and hyper-parameters by NDCG@10 on the newest slices of the events before ``end``.

    The newest slice always counts; older slices (each scored by models trained on the windows
    ending where it begins) are added while the slices so far hold fewer than
    ``settings.min_validation_queries`` target projects. A candidate's score is its mean NDCG@10
    over every validation query of every slice.
    """
    cols = content.columns() if columns is None else columns
    slices = validation_slices(
        log.day[log.own], end, settings.validation_fraction, settings.max_validation_slices
    )
    # NDCG@10 per candidate and validation query (slice, project); a candidate missing from a slice
    # (no model could be fit there) scores 0 on its queries.
    per_query: dict[str, dict[tuple[int, int], float]] = {}
    segment_of: dict[tuple[int, int], str] = {}
    fitted: dict[str, tuple[Mapping[str, Any], int]] = {}
    n_queries = 0
    for k, (cut, stop) in enumerate(slices):
        if k and n_queries >= settings.min_validation_queries:
            break
        relevant = window_targets(log, cut, stop)
        rng = np.random.default_rng(settings.seed + 7 + k)
        queries = _sample(rng, list(relevant), settings.max_queries)
        if not queries:
            continue
        relevant = {q: relevant[q] for q in queries}
        n_queries += len(queries)
        train = training_set(log, content, cut, settings)
        scorers: dict[str, Any] = {f"single({n})": ColumnScorer(n) for n in SIMPLE_SCORERS}
        iters: dict[str, int | None] = {}
        if train.n_queries and train.y.sum() and (train.y == 0).any():
            for params in grid:
                if _constant_prior(params, train.X, content.feature_names):
                    continue  # a constant prior ranks exactly as no prior: the grid's prior-0 point
                model = LambdaMART(
                    params,
                    cols,
                    n_estimators=max(iterations),
                    seed=settings.seed,
                    names=content.feature_names,
                    bags=settings.bags_for(train.X.shape[0]),
                )
                model.fit(train.X, train.y, train.group)
                for it in iterations:
                    # (named without the bag size, which may differ between slices)
                    name = _label(params, model.prior_weight, it, 1, model.prior_feature)
                    scorers[name] = model
                    iters[name] = it
                    fitted.setdefault(name, (params, it))
        ranked = rank_queries(
            log, content, cut, queries, scorers, top_n=10, chunk=settings.chunk, iterations=iters
        )
        segment_of.update(
            zip(((k, q) for q in relevant), query_segments(log, list(relevant), cut), strict=True)
        )
        for name, r in ranked.items():
            scores = per_query.setdefault(name, {})
            scores.update(((k, q), ndcg10(r, {q: rel})) for q, rel in relevant.items())
    newest = slices[0][0] if slices else end
    overall = _chosen(per_query, fitted, list(segment_of), newest)
    # A segment picks the kind of model only: the LambdaMART whose hyper-parameters validate best
    # on every query, or a single scorer. Picking hyper-parameters again on a segment's few dozen
    # queries would find the luckiest of some sixty settings, not the best one.
    top = _best_learned(overall.validation, fitted)
    shortlist = {n: v for n, v in per_query.items() if n not in fitted or n == top}
    for segment in SEGMENTS:
        keys = [key for key, seg in segment_of.items() if seg == segment]
        if len(keys) >= settings.min_segment_queries:
            # ... and departs from the overall choice only on its own clear evidence
            overall.segments[segment] = _chosen(shortlist, fitted, keys, newest, keep=overall.name)
    return overall


def _best_learned(validation: Mapping[str, float], fitted: Mapping[str, Any]) -> str | None:
    """Return the name of the LambdaMART setting with the best validation score, None without one."""
    learned = [n for n in validation if n in fitted]
    return max(learned, key=lambda n: round(validation[n], 12)) if learned else None


def _leads(
    per_query: Mapping[str, Mapping[tuple[int, int], float]], a: str, b: str, keys: Sequence[tuple[int, int]]
) -> bool:
    """Return whether ``a`` beats ``b`` by more than the standard error of their paired difference."""
    diff = np.array([per_query[a].get(k, 0.0) - per_query[b].get(k, 0.0) for k in keys])
    return diff.size >= 2 and bool(diff.mean() > diff.std(ddof=1) / np.sqrt(diff.size))


def _chosen(
    per_query: Mapping[str, Mapping[tuple[int, int], float]],
    fitted: Mapping[str, tuple[Mapping[str, Any], int]],
    keys: Sequence[tuple[int, int]],
    newest: int,
    keep: str | None = None,
) -> Selection:
    """Return the candidate with the best mean NDCG@10 over the validation queries ``keys``.

    One-standard-error rule: a learned model wins only when its lead over the best single scorer
    exceeds one standard error, and when ``keep`` (the choice over every query, for a segment) is
    given, another candidate replaces it only by the same margin on these queries.
    """
    n = len(keys)
    validation = {
        name: float(sum(v.get(key, 0.0) for key in keys)) / max(n, 1) for name, v in per_query.items()
    }
    if not validation:
        validation = {f"single({n})": 0.0 for n in SIMPLE_SCORERS}
    # The best validation score wins; ties go to the simpler model (single scorers are listed first).
    best = max(validation, key=lambda n: (round(validation[n], 12), n.startswith("single")))
    singles = [n for n in validation if n not in fitted]
    # On a few dozen validation projects a lead is mostly the luck of the slice (and flips with the
    # last bits of the inputs): the simpler choice stays unless the lead is larger than its noise.
    if best in fitted and singles:
        simple = max(singles, key=lambda n: round(validation[n], 12))
        if not _leads(per_query, best, simple, keys):
            best = simple
    if keep is not None and keep in per_query and best != keep and not _leads(per_query, best, keep, keys):
        best = keep
    top = _best_learned(validation, fitted)
    best_lambdamart = (dict(fitted[top][0]), fitted[top][1]) if top is not None else None
    if best in fitted:
        params, it = fitted[best]
        return Selection(
            "lambdamart", dict(params), it, None, validation, newest, n, best_lambdamart, name=best
        )
    feature = best[len("single(") : -1]
    return Selection("single", {}, None, feature, validation, newest, n, best_lambdamart, name=best)


def fit_final(
    log: InvestmentLog,
    content: ProjectContent,
    end: int,
    params: Mapping[str, Any],
    iterations: int,
    settings: LTRSettings = LTRSettings(),
    drop_groups: Sequence[str | None] = (None,),
    train: TrainingSet | None = None,
) -> tuple[dict[str | None, LambdaMART], TrainingSet]:
    """Fit the chosen setting on windows ending at ``end``, once per dropped group (None = all groups)."""
    data = train if train is not None else training_set(log, content, end, settings)
    models: dict[str | None, LambdaMART] = {}
    for drop in drop_groups:
        model = LambdaMART(
            params,
            content.columns(drop),
            n_estimators=iterations,
            seed=settings.seed,
            names=content.feature_names,
            bags=settings.bags_for(data.X.shape[0]),
        )
        model.fit(data.X, data.y, data.group)
        model.num_iteration = iterations
        models[drop] = model
    return models, data


def groups() -> tuple[str, ...]:
    """Return the feature group names in column order."""
    return tuple(FEATURE_GROUPS)
