"""Learning-to-rank features of (project, institution) pairs from a dated investment log.

Everything here is arrays: an :class:`InvestmentLog` (one row per dated investment event), the
project content (:class:`ProjectContent`: unit text vectors, a TF-IDF matrix, category one-hots)
and a :class:`Snapshot` of what was known strictly before a reference day. :func:`pair_block`
turns a block of query projects x candidate institutions into one float32 feature matrix with
matrix products and segment reductions, no Python loop over pairs.

Leakage rule: the features of a pair at day ``t`` read only events dated before ``t`` (an event on
day ``t`` itself is not visible). A test pins that deleting or shuffling later events leaves every
feature unchanged.

Feature groups (:data:`FEATURE_GROUPS`), each of which the evaluation drops in turn:

- ``activity``: how much and how recently the institution invests (popularity).
- ``portfolio_sim``: cosine of the project's vector to the institution's portfolio, as mean, max,
  top-3 mean, recency-weighted mean, and an item-kNN vote (the project's nearest earlier projects
  and who backed them).
- ``fund_profile``: per-institution text profiles learned from what it invested in: the portfolio
  centroid contrasted with the population's (dense) and a TF-IDF term profile.
- ``transition``: industry and round transitions: the share of the institution's deals in the
  project's categories (and its lift over the market), in the round the project raises next (the
  stage after its latest round, and in expectation over the market's next-round rates for companies
  in its state), and its taste for new companies versus follow-on rounds.
- ``graph``: the co-investment graph: personalised PageRank from the project's earlier investors
  and direct co-investment counts with them.
- ``stated``: what the institution says of itself in its registered profile
  (:class:`StatedProfiles`): how many deals it reports, how many in the round the project raises
  next (in expectation, as ``tr_expected_round``), and how close its description reads to the
  project. A profile is static (it has no date), so these columns read the same on every day;
  NaN where an institution has no profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = [
    "EXTRA_GROUP",
    "FEATURE_GROUPS",
    "LTR_FEATURES",
    "InvestmentLog",
    "ProjectContent",
    "Snapshot",
    "StatedProfiles",
    "as_mapping",
    "day_number",
    "feature_names",
    "group_columns",
    "next_stage",
    "pair_block",
    "snapshot",
]

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "activity": ("act_log_count", "act_recent_fast", "act_recent_slow", "act_idle", "act_partners"),
    # sim_mean, sim_top3, sim_recency and both profiles are z-scored within the query (see _standardise)
    "portfolio_sim": ("sim_mean", "sim_max", "sim_top3", "sim_recency", "sim_knn"),
    "fund_profile": ("prof_dense", "prof_tfidf"),
    "transition": (
        "tr_category",
        "tr_category_lift",
        "tr_next_round",
        "tr_next_round_count",
        "tr_expected_round",
        "tr_stage_lift",
        "tr_newco",
    ),
    "graph": ("g_ppr", "g_coinvest", "g_n_backers"),
    "stated": ("st_deals", "st_expected_round", "st_text"),
}
#: Column order of every block returned by :func:`pair_block`.
LTR_FEATURES: tuple[str, ...] = tuple(f for names in FEATURE_GROUPS.values() for f in names)
#: The name of the optional group of extra columns a ProjectContent may supply.
EXTRA_GROUP = "service"
_COL = {name: j for j, name in enumerate(LTR_FEATURES)}

FAST_HALF_LIFE = 182.0
SLOW_HALF_LIFE = 730.0
MAX_IDLE = 3650.0
KNN = 20
PPR_ALPHA = 0.15  # restart probability
PPR_STEPS = 20
_NEG = np.float32(-9.0)  # below any cosine: pads segments in the top-k sort


def day_number(iso: str | None) -> int | None:
    """Return days since 1970-01-01 of an ISO date (first 10 characters), None when missing."""
    if not iso:
        return None
    return int(np.datetime64(iso[:10], "D").astype(np.int64))


@dataclass(frozen=True)
class InvestmentLog:
    """Dated investment events as parallel arrays (institution, project as dense indexes)."""

    n_institutions: int
    n_projects: int
    inst: NDArray[np.int64]
    proj: NDArray[np.int64]
    day: NDArray[np.int64]  # days since epoch
    stage: NDArray[np.int64]  # round stage index of the event, -1 unknown
    #: True for an event of a company outside the ranked set, read from a public event feed: it
    #: counts toward the institutions' state (activity, rounds, co-investors) like any other event,
    #: but its company is never a query or a target and its days do not place the time windows.
    #: None = every event is the set's own.
    outside: NDArray[np.bool_] | None = None

    @classmethod
    def build(
        cls,
        n_institutions: int,
        n_projects: int,
        inst: Sequence[int],
        proj: Sequence[int],
        day: Sequence[int],
        stage: Sequence[int] | None = None,
        outside: Sequence[bool] | None = None,
    ) -> InvestmentLog:
        n = len(inst)
        if not (len(proj) == len(day) == n) or any(x is not None and len(x) != n for x in (stage, outside)):
            raise ValueError("inst, proj, day (and stage, outside) must have the same length")
        return cls(
            n_institutions,
            n_projects,
            np.asarray(inst, dtype=np.int64),
            np.asarray(proj, dtype=np.int64),
            np.asarray(day, dtype=np.int64),
            np.full(n, -1, dtype=np.int64) if stage is None else np.asarray(stage, dtype=np.int64),
            None if outside is None or not any(outside) else np.asarray(outside, dtype=bool),
        )

    @property
    def own(self) -> NDArray[np.bool_]:
        """Return the mask of the set's own events (not from an outside feed)."""
        return np.ones(len(self.day), dtype=bool) if self.outside is None else ~self.outside


@dataclass(frozen=True)
class StatedProfiles:
    """The institutions' registered profiles: deals reported per stage and a description vector.

    ``stage_counts`` (n_institutions, n_stages): the portfolio counts the institution states per
    round stage (all zero = no stated counts); ``vectors`` (n_institutions, dim): unit vectors of its
    description (zero rows = none), in the same space as the project vectors.
    """

    stage_counts: NDArray[np.float64]
    vectors: NDArray[np.float32]


@dataclass(frozen=True)
class ProjectContent:
    """Static project content: unit text vectors (zero rows = no text), TF-IDF rows, categories."""

    vectors: NDArray[np.float32]  # (n_projects, dim), unit rows or zeros
    tfidf: sp.csr_matrix  # (n_projects, vocab), L2-normalised rows
    categories: sp.csr_matrix  # (n_projects, n_categories), 0/1
    founded_year: NDArray[np.int64] | None = None  # (n_projects,) founding year, -1 unknown
    #: Optional extra columns (the ``EXTRA_GROUP`` group) appended to every block: a callable
    #: (as_of day, query projects, institutions) -> (n_q, n_i, len(extra_names)) that must read
    #: only what was known before the day, e.g. the service's own feature vector built from the
    #: profiles of the visible events.
    extra: Callable[[int, NDArray[np.int64], NDArray[np.int64]], NDArray[np.floating]] | None = None
    extra_names: tuple[str, ...] = ()
    #: The institutions' own registered profiles (the ``stated`` group); None = no institution says
    #: anything of itself, and the group's columns are NaN.
    stated: StatedProfiles | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Return the names of every column of this content's blocks."""
        return LTR_FEATURES + (self.extra_names if self.extra is not None else ())

    def columns(self, drop: str | None = None) -> NDArray[np.int64]:
        """Return the block columns of every group it fills (the extra one included) minus ``drop``."""
        if drop == EXTRA_GROUP:
            return group_columns(self.groups)
        base = group_columns(self.groups, drop=drop)
        if self.extra is None:
            return base
        extra = np.arange(len(LTR_FEATURES), len(LTR_FEATURES) + len(self.extra_names), dtype=np.int64)
        return np.concatenate([base, extra])

    @property
    def groups(self) -> tuple[str, ...]:
        """Return the feature groups this content fills (``stated`` only with stated profiles)."""
        return tuple(g for g in FEATURE_GROUPS if g != "stated" or self.stated is not None)

    @property
    def has_vector(self) -> NDArray[np.bool_]:
        return np.asarray(np.abs(self.vectors).sum(axis=1) > 0)


@dataclass
class Snapshot:
    """What the log says strictly before ``as_of`` (a day number), per institution and project."""

    as_of: int
    n_stages: int
    port: sp.csr_matrix  # (n_inst, n_proj) 1 where the institution backed the project
    port_weight: sp.csr_matrix  # same pattern, 0.5 ** (age of the latest event / SLOW_HALF_LIFE)
    port_vec: sp.csr_matrix  # port restricted to projects with a vector
    port_vec_weight: sp.csr_matrix  # port_weight restricted the same way (same pattern as port_vec)
    count: NDArray[np.float64]  # distinct projects per institution
    recent_fast: NDArray[np.float64]
    recent_slow: NDArray[np.float64]
    idle: NDArray[np.float64]  # days since the latest event (capped)
    partners: NDArray[np.float64]  # distinct co-investors
    coinvest: sp.csr_matrix  # (n_inst, n_inst) projects co-backed, zero diagonal
    transition: sp.csr_matrix  # row-stochastic co-investment walk
    centroid: NDArray[np.float32]  # (n_inst, dim) unit contrast profile (zeros without vectors)
    term_profile: sp.csr_matrix  # (n_inst, vocab) unit TF-IDF profile
    category_share: NDArray[np.float64]  # (n_inst, n_cat) share of portfolio per category
    market_category: NDArray[np.float64]  # (n_cat,) share of all portfolio items per category
    stage_counts: NDArray[np.float64]  # (n_inst, n_stages) labelled events per stage
    newco_share: NDArray[np.float64]  # share of events that were a company's first round
    n_events: NDArray[np.float64]  # visible events per institution (a project backed twice counts twice)
    backers: sp.csc_matrix  # port as CSC: column p = the project's earlier backers
    last_stage: NDArray[np.int64]  # latest known round stage per project, -1 unknown
    #: (n_stages + 2, n_stages) market rate of the stage a company raises next, per company state:
    #: its latest round's stage, or n_stages = no round yet and young, n_stages + 1 = no round, older
    stage_next: NDArray[np.float64]
    visible_vec: NDArray[np.bool_]  # projects with a vector and at least one visible event
    active: NDArray[np.bool_]  # institutions with at least one visible event


def snapshot(log: InvestmentLog, content: ProjectContent, as_of: int, n_stages: int = 6) -> Snapshot:
    """Return the institutions' and projects' state from the events dated before ``as_of``."""
    keep = log.day < as_of
    inst, proj, day, stage = log.inst[keep], log.proj[keep], log.day[keep], log.stage[keep]
    n_i, n_p = log.n_institutions, log.n_projects
    age = (as_of - day).astype(np.float64)
    ones = np.ones(len(inst))
    port = sp.csr_matrix((ones, (inst, proj)), shape=(n_i, n_p))
    port.data[:] = 1.0
    # Recency of a pair = its latest event: max of the decayed weights over duplicates.
    w = 0.5 ** (age / SLOW_HALF_LIFE)
    order = np.lexsort((-w, proj, inst))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (inst[order][1:] != inst[order][:-1]) | (proj[order][1:] != proj[order][:-1])
    sel = order[first]
    port_weight = sp.csr_matrix((w[sel], (inst[sel], proj[sel])), shape=(n_i, n_p))
    has_vec = content.has_vector
    keep_vec = sp.diags(has_vec.astype(np.float64))
    port_vec = (port @ keep_vec).tocsr()
    port_vec.eliminate_zeros()
    port_vec.sort_indices()
    port_vec_weight = (port_weight @ keep_vec).tocsr()
    port_vec_weight.eliminate_zeros()
    port_vec_weight.sort_indices()
    count = np.asarray(port.sum(axis=1)).ravel()
    recent_fast = np.bincount(inst, weights=0.5 ** (age / FAST_HALF_LIFE), minlength=n_i).astype(np.float64)
    recent_slow = np.bincount(inst, weights=w, minlength=n_i).astype(np.float64)
    idle = np.full(n_i, MAX_IDLE)
    if len(inst):
        np.minimum.at(idle, inst, np.minimum(age, MAX_IDLE))
    co = (port @ port.T).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    partners = np.diff(co.indptr).astype(np.float64)
    out_w = np.asarray(co.sum(axis=1)).ravel()
    transition = (sp.diags(np.divide(1.0, out_w, out=np.zeros(n_i), where=out_w > 0)) @ co).tocsr()
    # Dense profile: mean portfolio vector minus the mean of every visible portfolio vector.
    vec_counts = np.asarray(port_vec.sum(axis=1)).ravel()
    sums = port_vec @ content.vectors.astype(np.float64)
    means = np.divide(sums, vec_counts[:, None], out=np.zeros_like(sums), where=vec_counts[:, None] > 0)
    total = vec_counts.sum()
    market = sums.sum(axis=0) / total if total else np.zeros(content.vectors.shape[1])
    contrast = np.where(vec_counts[:, None] > 0, means - market, 0.0)
    norms = np.linalg.norm(contrast, axis=1, keepdims=True)
    centroid = np.divide(contrast, norms, out=np.zeros_like(contrast), where=norms > 0).astype(np.float32)
    term = (port @ content.tfidf).tocsr()
    term_norm = np.sqrt(np.asarray(term.multiply(term).sum(axis=1)).ravel())
    term_profile = (
        sp.diags(np.divide(1.0, term_norm, out=np.zeros(n_i), where=term_norm > 0)) @ term
    ).tocsr()
    cat_counts = (port @ content.categories).toarray()
    category_share = np.divide(
        cat_counts, count[:, None], out=np.zeros_like(cat_counts), where=count[:, None] > 0
    )
    market_category = cat_counts.sum(axis=0) / max(count.sum(), 1.0)
    labelled = stage >= 0
    stage_counts = np.zeros((n_i, n_stages))
    np.add.at(stage_counts, (inst[labelled], np.minimum(stage[labelled], n_stages - 1)), 1.0)
    # An event is a company's first round when no visible event of the project is earlier.
    first_day = np.full(n_p, np.iinfo(np.int64).max)
    if len(proj):
        np.minimum.at(first_day, proj, day)
    newco = (day <= first_day[proj]).astype(np.float64)
    events = np.bincount(inst, minlength=n_i).astype(np.float64)
    newco_share = np.divide(
        np.bincount(inst, weights=newco, minlength=n_i), events, out=np.full(n_i, np.nan), where=events > 0
    )
    last_stage = np.full(n_p, -1, dtype=np.int64)
    if labelled.any():
        np.maximum.at(last_stage, proj[labelled], stage[labelled])
    stage_next = _stage_transitions(proj[labelled], day[labelled], stage[labelled], content, n_stages)
    seen_proj = np.zeros(n_p, dtype=bool)
    seen_proj[proj] = True
    active = np.zeros(n_i, dtype=bool)
    active[inst] = True
    return Snapshot(
        as_of=as_of,
        n_stages=n_stages,
        port=port,
        port_weight=port_weight,
        port_vec=port_vec,
        port_vec_weight=port_vec_weight,
        count=count,
        recent_fast=recent_fast,
        recent_slow=recent_slow,
        idle=idle,
        partners=partners,
        coinvest=co,
        transition=transition,
        centroid=centroid,
        term_profile=term_profile,
        category_share=category_share,
        market_category=market_category,
        stage_counts=stage_counts,
        newco_share=newco_share,
        n_events=events,
        backers=port.tocsc(),
        last_stage=last_stage,
        stage_next=stage_next,
        visible_vec=seen_proj & has_vec,
        active=active,
    )


STAGE_NEXT_SMOOTHING = 0.5  # pseudo-count per (state, stage) of the market's next-round rates


def _year(day: NDArray[np.int64] | int) -> NDArray[np.int64]:
    """Return the calendar year of day numbers."""
    days = np.asarray(day, dtype=np.int64).astype("datetime64[D]")
    return days.astype("datetime64[Y]").astype(np.int64) + 1970


def _company_state(
    last: NDArray[np.int64], founded: NDArray[np.int64] | None, year: NDArray[np.int64], n_stages: int
) -> NDArray[np.int64]:
    """Return a company's state: its latest round's stage, else n_stages (young) or n_stages + 1."""
    young = np.zeros(len(last), dtype=bool)
    if founded is not None:
        age = year - founded
        young = (founded > 0) & (age >= 0) & (age <= YOUNG_YEARS)
    return np.where(last >= 0, np.minimum(last, n_stages - 1), np.where(young, n_stages, n_stages + 1))


def _stage_transitions(
    proj: NDArray[np.int64],
    day: NDArray[np.int64],
    stage: NDArray[np.int64],
    content: ProjectContent,
    n_stages: int,
) -> NDArray[np.float64]:
    """Return the smoothed rate of each next round stage per company state from labelled events.

    A round is one (project, day); its stage is the highest labelled on that day, and the state
    before it is the highest stage of the project's earlier rounds (or young / older without one).
    """
    counts = np.zeros((n_stages + 2, n_stages))
    if len(proj):
        order = np.lexsort((-stage, day, proj))
        p, d, s = proj[order], day[order], np.minimum(stage[order], n_stages - 1)
        first = np.ones(len(p), dtype=bool)
        first[1:] = (p[1:] != p[:-1]) | (d[1:] != d[:-1])
        p, d, s = p[first], d[first], s[first]
        # highest stage of the same project's earlier rounds (rows are sorted by project, then day)
        new_proj = np.ones(len(p), dtype=bool)
        new_proj[1:] = p[1:] != p[:-1]
        # running max within each project: offsets per project keep the runs apart
        offset = (n_stages + 1) * np.cumsum(new_proj)
        run = np.maximum.accumulate(s + offset) - offset
        prev = np.full(len(p), -1, dtype=np.int64)
        prev[1:] = np.where(new_proj[1:], -1, run[:-1])
        founded = None if content.founded_year is None else content.founded_year[p]
        state = _company_state(prev, founded, _year(d), n_stages)
        np.add.at(counts, (state, s), 1.0)
    counts += STAGE_NEXT_SMOOTHING
    return counts / counts.sum(axis=1, keepdims=True)


def _segment_stats(
    sims: NDArray[np.float32], weights_csr: sp.csr_matrix, pattern: sp.csr_matrix, insts: NDArray[np.int64]
) -> tuple[NDArray[np.float32], ...]:
    """Return (mean, max, top-3 mean, weighted mean) of sims over each institution's portfolio row.

    sims: (n_q, n_proj) cosines; pattern: portfolio rows with a vector; weights_csr: recency weights
    with exactly the same sparsity pattern. NaN where an institution has no portfolio vector.
    """
    sub = pattern[insts]
    sub.sort_indices()
    indptr, indices = sub.indptr, sub.indices
    lengths = np.diff(indptr)
    n_q, n_i = sims.shape[0], len(insts)
    nan = np.full((n_q, n_i), np.nan, dtype=np.float32)
    if indices.size == 0:
        return nan, nan.copy(), nan.copy(), nan.copy()
    wsub = weights_csr[insts]
    wsub.sort_indices()
    if not (np.array_equal(wsub.indptr, indptr) and np.array_equal(wsub.indices, indices)):
        raise ValueError("weights must share the portfolio pattern")
    w = wsub.data
    g = sims[:, indices]  # (n_q, nnz)
    has = lengths > 0
    starts = indptr[:-1][has]
    sums = np.add.reduceat(g, starts, axis=1)
    mx = np.maximum.reduceat(g, starts, axis=1)
    wsum = np.add.reduceat(g * w[None, :].astype(np.float32), starts, axis=1)
    wtot = np.add.reduceat(w, starts)
    # Top-3: sort each row with the segment id as the major key; the last 3 of a segment are its top 3.
    seg = np.repeat(np.arange(has.sum()), lengths[has]).astype(np.float64)
    keyed = (np.sort(g + 4.0 * seg[None, :], axis=1) - 4.0 * seg[None, :]).astype(np.float32)
    ends = np.cumsum(lengths[has])
    top = np.zeros((n_q, has.sum()), dtype=np.float32)
    lens = lengths[has]
    for k in range(3):  # three gathers, not a loop over pairs
        idx = ends - 1 - k
        ok = k < lens
        top[:, ok] += keyed[:, idx[ok]]
    top /= np.minimum(lens, 3)[None, :].astype(np.float32)
    mean = nan.copy()
    mean[:, has] = sums / lens[None, :]
    mxo = nan.copy()
    mxo[:, has] = mx
    t3 = nan.copy()
    t3[:, has] = top
    rec = nan.copy()
    rec[:, has] = wsum / np.maximum(wtot, 1e-12)[None, :].astype(np.float32)
    return mean, mxo, t3, rec


def _ppr(snap: Snapshot, seeds: sp.csc_matrix) -> NDArray[np.float64]:
    """Return personalised PageRank (n_inst, n_q) over the co-investment walk from each seed column."""
    col_sum = np.asarray(seeds.sum(axis=0)).ravel()
    start = (
        seeds @ sp.diags(np.divide(1.0, col_sum, out=np.zeros_like(col_sum), where=col_sum > 0))
    ).toarray()
    r = start.copy()
    walk_t = snap.transition.T.tocsr()
    for _ in range(PPR_STEPS):
        r = PPR_ALPHA * start + (1.0 - PPR_ALPHA) * (walk_t @ r)
    return r


STAGE_SMOOTHING = 0.1
#: A company without a visible round founded at most this many calendar years before the day is a
#: start-up (stage index 2, 初创期); older ones without rounds have no known stage.
YOUNG_YEARS = 2
_YOUNG_STAGE = 2


def next_stage(snap: Snapshot, content: ProjectContent, queries: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the stage index each project raises for next as of the snapshot day, -1 unknown.

    The stage after its latest visible round; without one, a start-up when it was founded at
    most YOUNG_YEARS before (the founding year is a static fact, not an event).
    """
    last = snap.last_stage[queries]
    out = np.where(last >= 0, np.minimum(last + 1, snap.n_stages - 1), -1)
    if content.founded_year is not None:
        year = int(str(np.datetime64(int(snap.as_of), "D"))[:4])
        founded = content.founded_year[queries]
        young = (founded > 0) & (year - founded >= 0) & (year - founded <= YOUNG_YEARS)
        out = np.where((out < 0) & young, _YOUNG_STAGE, out)
    return out


def pair_block(
    snap: Snapshot,
    content: ProjectContent,
    queries: Sequence[int] | NDArray[np.int64],
    insts: Sequence[int] | NDArray[np.int64],
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Return (features (n_q, n_i, len(LTR_FEATURES)), earlier-backer mask (n_q, n_i)) of a block.

    The mask marks pairs already linked before the snapshot's day: not a new match, and a
    project's own vector sits in those portfolios, so callers leave them out of the ranking.
    """
    q = np.asarray(queries, dtype=np.int64)
    ii = np.asarray(insts, dtype=np.int64)
    n_q, n_i = len(q), len(ii)
    X = np.zeros((n_q, n_i, len(LTR_FEATURES)), dtype=np.float32)

    def put(name: str, value: NDArray[np.floating] | float) -> None:
        X[:, :, _COL[name]] = value

    # activity
    put("act_log_count", np.log1p(snap.count[ii])[None, :])
    put("act_recent_fast", np.log1p(snap.recent_fast[ii])[None, :])
    put("act_recent_slow", np.log1p(snap.recent_slow[ii])[None, :])
    put("act_idle", np.log1p(snap.idle[ii] / 30.0)[None, :])
    put("act_partners", np.log1p(snap.partners[ii])[None, :])
    # portfolio similarity
    qv = content.vectors[q]
    q_has = np.abs(qv).sum(axis=1) > 0
    sims = (qv @ content.vectors.T).astype(np.float32)  # (n_q, n_proj)
    sims[np.arange(n_q), q] = np.nan  # a project never counts as its own neighbour
    safe = np.where(np.isnan(sims), _NEG, sims)
    mean, mx, t3, rec = _segment_stats(np.nan_to_num(sims, nan=0.0), snap.port_vec_weight, snap.port_vec, ii)
    for name, val in (("sim_mean", mean), ("sim_max", mx), ("sim_top3", t3), ("sim_recency", rec)):
        val[~q_has] = np.nan
        put(name, val)
    # kNN vote: the project's KNN nearest earlier projects, each voting its similarity to its backers.
    cand = np.where(snap.visible_vec[None, :], safe, _NEG)
    k = min(KNN, cand.shape[1])
    if k > 0 and snap.visible_vec.any():
        nn = np.argpartition(-cand, k - 1, axis=1)[:, :k]
        nn_sim = np.take_along_axis(cand, nn, axis=1)
        nn_sim = np.where(nn_sim > _NEG, np.maximum(nn_sim, 0.0), 0.0)
        votes = sp.csr_matrix(
            (nn_sim.ravel().astype(np.float64), (np.repeat(np.arange(n_q), k), nn.ravel())),
            shape=(n_q, content.vectors.shape[0]),
        )
        knn = np.asarray((votes @ snap.port[ii].T).todense(), dtype=np.float32)
        knn[~q_has] = np.nan
        put("sim_knn", knn)
    else:
        put("sim_knn", np.nan)
    # fund profiles
    contrast = np.where(q_has[:, None], qv, 0.0).astype(np.float32)
    prof = contrast @ snap.centroid[ii].T
    prof[~q_has] = np.nan
    put("prof_dense", prof)
    put("prof_tfidf", np.asarray((content.tfidf[q] @ snap.term_profile[ii].T).todense(), dtype=np.float32))
    # transitions
    qc = content.categories[q].toarray()
    n_cat = qc.sum(axis=1, keepdims=True)
    qc_norm = np.divide(qc, n_cat, out=np.zeros_like(qc), where=n_cat > 0)
    share = qc_norm @ snap.category_share[ii].T  # mean share of the project's categories
    market = qc_norm @ snap.market_category
    lift = np.log((share + 0.01) / (market[:, None] + 0.01))
    no_cat = n_cat.ravel() == 0
    share[no_cat] = np.nan
    lift[no_cat] = np.nan
    put("tr_category", share)
    put("tr_category_lift", lift)
    nxt = next_stage(snap, content, q)
    sc = snap.stage_counts[ii]  # (n_i, n_stages)
    labelled = sc.sum(axis=1)
    at_next = sc[:, np.maximum(nxt, 0)].T  # (n_q, n_i)
    rate = np.divide(
        at_next, labelled[None, :], out=np.full_like(at_next, np.nan), where=labelled[None, :] > 0
    )
    rate[nxt < 0] = np.nan
    put("tr_next_round", rate)
    put("tr_next_round_count", np.where(nxt[:, None] >= 0, np.log1p(at_next), np.nan))
    # The institution's deals in the round the project raises next, in expectation over the market's
    # next-round rates for companies in the project's state (defined for every project).
    state = _company_state(
        snap.last_stage[q],
        None if content.founded_year is None else content.founded_year[q],
        _year(np.full(n_q, snap.as_of, dtype=np.int64)),
        snap.n_stages,
    )
    put("tr_expected_round", np.log1p(snap.stage_next[state] @ sc.T))
    # log((n_s + a) / a), a = STAGE_SMOOTHING x the institution's deals: how much likelier than its
    # activity says it joins the round the project raises next.
    prior = STAGE_SMOOTHING * snap.n_events[ii]
    lift_stage = np.log1p(
        np.divide(at_next, prior[None, :], out=np.zeros_like(at_next), where=prior[None, :] > 0)
    )
    put("tr_stage_lift", np.where(nxt[:, None] >= 0, lift_stage, np.nan))
    backers = snap.backers[:, q]  # (n_inst, n_q)
    n_back = np.asarray(backers.sum(axis=0)).ravel()
    warm = n_back > 0
    newco = snap.newco_share[ii][None, :]
    put("tr_newco", np.where(warm[:, None], 1.0 - newco, newco))
    # co-investment graph
    if warm.any():
        ppr = _ppr(snap, backers.tocsc())[ii].T  # (n_q, n_i)
        co = np.asarray((backers.T @ snap.coinvest[:, ii]).todense())
    else:
        ppr = np.zeros((n_q, n_i))
        co = np.zeros((n_q, n_i))
    put("g_ppr", np.where(warm[:, None], np.log1p(1e4 * ppr), np.nan))
    put("g_coinvest", np.where(warm[:, None], np.log1p(co), np.nan))
    put("g_n_backers", np.log1p(n_back)[:, None])
    # what the institution states of itself
    if content.stated is not None:
        counts = content.stated.stage_counts[ii][:, : snap.n_stages]  # (n_i, n_stages)
        says = counts.sum(axis=1) > 0
        put("st_deals", np.where(says, np.log1p(counts.sum(axis=1)), np.nan)[None, :])
        put("st_expected_round", np.where(says[None, :], np.log1p(snap.stage_next[state] @ counts.T), np.nan))
        iv = content.stated.vectors[ii]
        described = np.abs(iv).sum(axis=1) > 0
        text = (qv @ iv.T).astype(np.float32)
        text[:, ~described] = np.nan
        text[~q_has] = np.nan
        put("st_text", text)
    else:
        for name in FEATURE_GROUPS["stated"]:
            put(name, np.nan)
    linked = np.asarray(backers[ii].T.todense()) > 0
    _standardise(X, linked)
    if content.extra is not None:
        extra = np.asarray(content.extra(int(snap.as_of), q, ii), dtype=np.float32)
        if extra.shape != (n_q, n_i, len(content.extra_names)):
            raise ValueError(
                f"extra features have shape {extra.shape}, want {(n_q, n_i, len(content.extra_names))}"
            )
        X = np.concatenate([X, extra], axis=2)
    return X, linked


#: Text similarities are compared within a query: a cosine level that is high for one project's
#: text is ordinary for another's. These columns become z-scores over the query's candidates.
QUERY_STANDARDISED: tuple[str, ...] = (
    "sim_mean",
    "sim_top3",
    "sim_recency",
    "prof_dense",
    "prof_tfidf",
    "st_text",
)


def _standardise(X: NDArray[np.float32], linked: NDArray[np.bool_]) -> None:
    """Z-score the QUERY_STANDARDISED columns per query over its open candidates (in place)."""
    for name in QUERY_STANDARDISED:
        v = X[:, :, _COL[name]].astype(np.float64)
        ok = ~np.isnan(v) & ~linked
        n = ok.sum(axis=1, keepdims=True)
        mu = np.divide(
            np.where(ok, v, 0.0).sum(axis=1, keepdims=True), n, out=np.zeros((len(v), 1)), where=n > 0
        )
        dev = np.where(ok, v - mu, 0.0)
        sd = np.sqrt(
            np.divide((dev**2).sum(axis=1, keepdims=True), n, out=np.zeros((len(v), 1)), where=n > 1)
        )
        z = np.divide(v - mu, sd, out=np.full_like(v, np.nan), where=(sd > 0) & ~np.isnan(v))
        X[:, :, _COL[name]] = z


def group_columns(groups: Sequence[str] | None = None, drop: str | None = None) -> NDArray[np.int64]:
    """Return the LTR_FEATURES column indexes of the given groups (default all) minus ``drop``."""
    names = list(FEATURE_GROUPS) if groups is None else list(groups)
    if drop is not None and drop not in FEATURE_GROUPS:
        raise ValueError(f"unknown feature group {drop!r}; groups: {sorted(FEATURE_GROUPS)}")
    cols = [_COL[f] for g in names if g != drop for f in FEATURE_GROUPS[g]]
    return np.asarray(cols, dtype=np.int64)


def feature_names(cols: NDArray[np.int64]) -> tuple[str, ...]:
    """Return the names of the given LTR_FEATURES columns."""
    return tuple(LTR_FEATURES[j] for j in cols)


def as_mapping(row: NDArray[np.float32], cols: NDArray[np.int64] | None = None) -> Mapping[str, float]:
    """Return one feature row as {name: value} (for reports and tests)."""
    idx = np.arange(len(LTR_FEATURES)) if cols is None else cols
    return {LTR_FEATURES[j]: float(row[n]) for n, j in enumerate(idx)}
