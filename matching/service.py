"""The matching service: ranking over the store, behind one thread-safe object.

The web app builds one :class:`MatchingService` from stored profiles and vectors, keeps it in
``app.extensions["matching"]`` and calls it for every ranked list. The work is split by stage:

- :mod:`matching.store`: profiles, FAISS and BM25 indexes, edits, persistence (the base class);
- :mod:`matching.evidence`: what portfolios say (evidence, portfolio vectors, co-investment);
- :mod:`matching.candidates`: filters first, then the candidate pool (everything when small;
  else dense ANN, BM25, portfolio-neighbour, co-investment and activity retrieval);
- :mod:`matching.scoring`: one vectorised feature pass over all candidates, one ranker call;
- :mod:`matching.normalize`: the shared z-scores, BM25 scaling and the 匹配度 scale;
- :mod:`matching.explanation`: reasons, built only for the k pairs shown;
- :mod:`matching.competitors`: candidates that nearly copy a backed project (ranked by the
  institution's ``competitor_policy``).

The 匹配度 of a pair is one function of the pair (:meth:`MatchingService._pair_scores`): the
project's raw scores against every institution of that side, placed on the side's reference
distribution (:class:`matching.normalize.ScoreScale`), so the project's page, the institution's
page, the API and the exports show the same number for the same pair and view.

:meth:`MatchingService.score_block` scores a whole block of projects x institutions at once.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings import Embedder
from embeddings.stores import VectorBackend
from matching.candidates import ANN_MIN_SIZE, institution_pool, project_pool, restrict
from matching.competitors import COPY_COSINE_FLOOR, NearCopies, avoids
from matching.evidence import (
    PortfolioMatrix,
    add_coinvest_counts,
    all_evidence,
    coinvest_partners,
    evidence_without,
    partner_counts,
    portfolio_matrix,
    portfolio_sims,
)
from matching.explain import PairContext, pair_reasons
from matching.explanation import pair_context
from matching.features import FEATURES, Evidence
from matching.lexical import Tokenizer
from matching.normalize import (
    ScoreScale,
    bm25_scaled,
    rescale_0_100,
    row_moments,
    zscore_known,
    zscore_rows,
    zscore_with,
)
from matching.ranker import HandWeightedRanker, Ranker
from matching.scoring import InstitutionTable, block_features, linear_form, linear_scores
from matching.store import MatchingStore
from matching.types import (
    Filters,
    InstitutionProfile,
    Match,
    NeedProfile,
    ProjectProfile,
    Side,
    public_view,
)

__all__ = ["MatchingService"]

logger = logging.getLogger(__name__)

#: Projects sampled (evenly over the ids) for the reference distribution of raw scores of one side.
REFERENCE_PROJECTS = 60
#: Each sampled project's best pairs that enter the reference: the 匹配度 compares a pair with the
#: pairs a ranked list shows first (against every pair, all shown pairs would read 99).
REFERENCE_TOP = 10
#: Share of the records that may change (edits applied since the reference was drawn) before the 匹配度
#: reference is drawn again; below it the reference moves by less than its own sampling noise.
SCALE_TOLERANCE = 0.02
#: Candidates of an institution's list scored as pairs (its 匹配度 and order), whatever k is asked for.
PAIR_SCORED_TOP = 100
#: An institution's BM25 query over many projects leaves out terms more than this share of them hold.
LEXICAL_POOL_MAX_SHARE = 0.05
#: Pair score rows kept (project x side x view); cleared whenever the store or the ranker changes.
_PAIR_CACHE_SIZE = 4096
#: Ranked lists and candidate pools kept per state, each in its own budget (pair rows never evict them).
_KEPT_SIZE = {"list": 8192, "pool": 2048}
#: Kinds of institution list (k, filters, explain) the warmer ranks for every institution: the latest
#: asked, each with k up to WARM_LIST_MAX_K, and all of them within the kept lists' budget.
WARM_LIST_SHAPES = 2
WARM_LIST_MAX_K = 20
#: Projects whose row statistics are computed in one batch (bounds the (projects, portfolio rows) product).
_STATS_CHUNK = 512
#: Pairs whose row statistics warm_pair_rows computes per hold of the service's lock (tens of ms).
_WARM_PAIRS = 65_536


class _QueryRows:
    """Each project's document as a BM25 query over one side block's term rows, packed by table row.

    A list's candidates and a bulk block need the same rows: each project's are looked up once per
    state (after :meth:`MatchingService.warm_pair_rows`, never again) and kept in one growing int32
    buffer, 4 bytes a term, rather than as one small array per project.
    """

    def __init__(self) -> None:
        self.start = np.full(0, -1, dtype=np.int64)
        self.length = np.zeros(0, dtype=np.int64)
        self.buf = np.empty(4096, dtype=np.int32)
        self.used = 0

    def get(self, row: int) -> NDArray[np.int32] | None:
        if row >= self.start.shape[0] or self.start[row] < 0:
            return None
        a = int(self.start[row])
        return self.buf[a : a + int(self.length[row])]

    def put(self, row: int, terms: NDArray[np.int32]) -> None:
        if row >= self.start.shape[0]:
            size = max(2 * self.start.shape[0], row + 1, 1024)
            self.start = np.concatenate((self.start, np.full(size - self.start.shape[0], -1, dtype=np.int64)))
            self.length = np.concatenate((self.length, np.zeros(size - self.length.shape[0], dtype=np.int64)))
        if self.used + terms.size > self.buf.shape[0]:
            grown = np.empty(max(2 * self.buf.shape[0], self.used + terms.size), dtype=np.int32)
            grown[: self.used] = self.buf[: self.used]
            self.buf = grown
        self.buf[self.used : self.used + terms.size] = terms
        self.start[row], self.length[row] = self.used, terms.size
        self.used += terms.size


@dataclass
class _SideBlock:
    """The institutions of one side and view, prepared for pair rows (see MatchingService._side_block)."""

    side: Side
    evidence: bool
    ids: list[int]
    col: dict[int, int]
    itab: InstitutionTable
    irows: NDArray[np.int64]
    has_iv: NDArray[np.bool_]  # per institution: holds a vector usable in this view
    iv_row: NDArray[np.int64]  # per institution: its row in iv (-1: none)
    iv: NDArray[np.float32]
    iv64: NDArray[np.float64]
    seg_start: NDArray[np.int64]  # per institution: first row of its portfolio in port_vecs
    seg_len: NDArray[np.int64]  # per institution: portfolio rows (0: none, or no evidence)
    port_vecs: NDArray[np.float32]  # every institution's portfolio vectors, in institution order
    port64: NDArray[np.float64]
    port_pids: NDArray[np.int64]
    terms: Mapping[str, int]
    w_ptr: NDArray[np.int64]  # BM25 weights, CSR over terms: row t's institutions and weights
    w_idx: NDArray[np.int64]
    w_val: NDArray[np.float64]
    w_csc: Any  # the same weights, sparse (terms, institutions) by column


@dataclass
class _Values:
    """Raw similarities of projects x some institutions of a block, before per-row scaling."""

    raw: dict[str, NDArray[np.float64]]  # dense, dense_port_max, dense_port_mean, bm25, coinvest
    mask: NDArray[np.bool_]  # the pair is a candidate (not a link the project already has)
    closest: NDArray[np.int64]  # nearest portfolio project of the pair (-1: none or not asked)


#: Columns of the per-project row statistics: mean and deviation of each z-scored similarity over
#: the project's candidates (every institution of the side), then its best BM25 score.
_Z_CHANNELS = ("dense", "dense_port_max", "dense_port_mean")
_N_STATS = 2 * len(_Z_CHANNELS) + 1


class MatchingService(MatchingStore):
    """Rank institutions for projects, projects for institutions and needs, and search both.

    Args:
        embedder: encodes free-text queries (stored records arrive with their vectors).
        index_dir: where FAISS indexes persist; None keeps them in memory only.
        ranker: a fitted ranker; None uses :class:`HandWeightedRanker`.
        pool_size: candidate sets up to this size are scored whole; larger ones are pooled.
        half_life_days: recency half-life of portfolio activity.
        exclude_known: leave out pairs already linked by a portfolio item (nothing to recommend).
        save_delay_s: debounce of index saves after edits; 0 saves within the edit call.
            A restart never depends on it: :meth:`load` checks saved indexes against the stored
            vectors and rebuilds on any difference.
        tokenizer: text -> tokens for BM25 and phrase matching; default ``embeddings.tokenize``.
        max_reasons: reasons kept per match.
    """

    def __init__(
        self,
        embedder: Embedder,
        index_dir: Path | str | None = None,
        ranker: Ranker | None = None,
        *,
        pool_size: int = 300,
        half_life_days: float = 365.0,
        exclude_known: bool = True,
        save_delay_s: float = 2.0,
        tokenizer: Tokenizer | None = None,
        max_reasons: int = 6,
        as_of: str | None = None,
        ann_min_size: int = ANN_MIN_SIZE,
        vector_backend: VectorBackend | None = None,
    ) -> None:
        self.ranker: Ranker = ranker if ranker is not None else HandWeightedRanker()
        self.pool_size = pool_size
        self.exclude_known = exclude_known
        self.max_reasons = max_reasons
        self._asked_rows: set[tuple[Side, bool]] = set()  # (side, evidence) of the row statistics used
        #: (k, filters, explain) of the institution lists asked for, the latest last (see start_warming)
        self._asked_lists: dict[tuple[int, Filters | None, bool], None] = {}
        self._warm_stop = threading.Event()
        super().__init__(
            embedder,
            index_dir,
            half_life_days=half_life_days,
            save_delay_s=save_delay_s,
            tokenizer=tokenizer,
            as_of=as_of,
            ann_min_size=ann_min_size,
            vector_backend=vector_backend,
        )

    def set_ranker(self, ranker: Ranker | None) -> None:
        """Swap the ranker (None restores the hand-set fallback)."""
        with self._lock:
            self.ranker = ranker if ranker is not None else HandWeightedRanker()
            self._edits = getattr(self, "_edits", 0) + 1  # every 匹配度 changes with the ranker

    def evidence(self, institution_id: int) -> Evidence:
        """Return what the institution's portfolio says about it."""
        with self._lock:
            self._refresh_evidence()
            return self._evidence.get(institution_id, Evidence())

    # ------------------------------------------------------------------ evidence
    def _refresh_evidence(self) -> None:
        if not self._evidence_dirty:
            return
        self._evidence, self._as_of_used = all_evidence(
            self._institutions, self._projects, self.as_of, self.half_life_days
        )
        insts = list(self._institutions.values())
        self._itab = InstitutionTable(self._vocabs, insts, [self._evidence[i.id] for i in insts])
        self._itab_plain = None  # rebuilt on demand from the same institutions
        self._evidence_dirty = False
        self._edits = getattr(self, "_edits", 0) + 1  # pair scores drawn from the old tables are stale

    def _evidence_for(self, institution_id: int, leave_out: int | None) -> Evidence:
        """Return an institution's evidence, recomputed without one project when it is in the portfolio."""
        ev = self._evidence.get(institution_id, Evidence())
        if leave_out is None or leave_out not in self._portfolio.get(institution_id, ()):
            return ev
        inst = self._institutions[institution_id]
        return evidence_without(inst, leave_out, self._projects, self._as_of_used, self.half_life_days)

    def _portfolio_matrix(self) -> PortfolioMatrix:
        if self._port_matrix is None:
            self._port_matrix = portfolio_matrix(self._portfolio, self._proj_index, int(self.embedder.dim))
        return self._port_matrix

    # ------------------------------------------------------------------ similarity helpers
    def _dense_to_institutions(
        self, q: NDArray[np.float32] | None, inst_ids: Sequence[int]
    ) -> NDArray[np.float64]:
        """Return raw cosines of q to each institution's vector (NaN where either is missing).

        A FAISS search restricted to inst_ids by its ID selector: only candidates are scored.
        """
        out = np.full(len(inst_ids), np.nan)
        if q is None or not inst_ids:
            return out
        found = self._inst_index.search_one(q, len(inst_ids), allowed_ids=inst_ids)
        where = {i: j for j, i in enumerate(inst_ids)}
        for inst_id, score in found:
            out[where[inst_id]] = score
        return out

    def _portfolio_sims(
        self, q: NDArray[np.float32] | None, inst_ids: Sequence[int], leave_out: int | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """Return (max, mean, argmax project id) cosine of q to each institution's portfolio."""
        return portfolio_sims(self._portfolio_matrix(), q, inst_ids, leave_out)

    def _coinvest_for_project(self, project_id: int, inst_ids: Sequence[int]) -> NDArray[np.float64]:
        """Return log(1 + projects each institution co-backed with the project's current backers)."""
        out = np.zeros(len(inst_ids))
        if self._backers.get(project_id):
            col = {i: j for j, i in enumerate(inst_ids)}
            add_coinvest_counts(out, project_id, self._backers, self._partner_counts, col.get)
        return np.log1p(out)

    def _coinvest_partners(self, project_id: int, institution_id: int) -> tuple[str, ...]:
        return coinvest_partners(
            project_id, institution_id, self._backers, self._portfolio, lambda i: self._institutions[i].name
        )

    def _partner_counts(self, institution_id: int) -> Counter[int]:
        """Return the institution's co-backing counts, kept per state (read, never changed, by callers)."""
        cache = self._pair_cache()
        key = ("partners", institution_id)
        found = cache.get(key)
        if found is None:
            found = cache[key] = partner_counts(institution_id, self._backers, self._portfolio)
        return found

    # ------------------------------------------------------------------ ranking core
    @staticmethod
    def _rescaled(raw: NDArray[np.float64]) -> NDArray[np.float64]:
        """Z-score the known values over the candidates; unknown (NaN) become the mean (0)."""
        return zscore_known(raw)

    def _institution_table(self, evidence: bool = True) -> InstitutionTable:
        """Return the encoded institutions of the current evidence (call under the lock).

        Without evidence: the same institutions encoded with empty evidence (nothing drawn from
        signed connections), for rankings outside the pipeline owner's view.
        """
        self._refresh_evidence()
        assert self._itab is not None
        if evidence:
            return self._itab
        if self._itab_plain is None:
            insts = list(self._institutions.values())
            self._itab_plain = InstitutionTable(self._vocabs, insts, [Evidence()] * len(insts))
        return self._itab_plain

    def _institution_sims(
        self, project_id: int, inst_ids: Sequence[int], leave_out: bool, evidence: bool = True
    ) -> tuple[dict[str, NDArray[np.float64]], dict[str, Any]]:
        """Return per-query rescaled similarities of a project to institutions, and raw evidence.

        Without evidence, nothing derived from signed connections enters: no portfolio similarity or
        co-investment, no vector derived from a portfolio, BM25 on the institutions' own texts.
        """
        proj = self._projects[project_id]
        q = self._project_vector(project_id)
        dense = self._dense_to_institutions(q, inst_ids)
        n = len(inst_ids)
        if evidence:
            pmax, pmean, parg = self._portfolio_sims(q, inst_ids, project_id if leave_out else None)
            coinvest = self._coinvest_for_project(project_id, inst_ids)
            lex = self._inst_lex
        else:
            pmax, pmean = np.full(n, np.nan), np.full(n, np.nan)
            parg = np.full(n, -1, dtype=np.int64)
            coinvest = np.zeros(n)
            lex = self._inst_lex_own
            derived = [j for j, i in enumerate(inst_ids) if i not in self._own_vector]
            dense[derived] = np.nan  # a derived vector is the mean of a portfolio
        bm = lex.score(self._proj_lex.as_query(project_id, self._project_doc(proj)), inst_ids)
        bm_raw = np.array([bm.get(i, 0.0) for i in inst_ids])
        sims = {
            "dense": zscore_known(dense),
            "dense_port_max": zscore_known(pmax),
            "dense_port_mean": zscore_known(pmean),
            "bm25": bm25_scaled(bm_raw),
            "coinvest": coinvest,
        }
        return sims, {"dense_raw": dense, "closest": parg}

    def _institution_features(
        self,
        project_id: int,
        inst_ids: Sequence[int],
        rows: Sequence[int] | None = None,
        leave_out: bool = False,
        computed: tuple[dict[str, NDArray[np.float64]], dict[str, Any]] | None = None,
        public: bool = False,
        evidence: bool = True,
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """Return feature rows of one project against inst_ids[rows], rescaled over all inst_ids.

        One vectorised pass (:func:`matching.scoring.block_features`); with leave_out, the
        project's own backers are scored on their evidence without it.
        """
        itab = self._institution_table(evidence)
        sims, info = computed or self._institution_sims(project_id, inst_ids, leave_out, evidence)
        sel = np.arange(len(inst_ids)) if rows is None else np.asarray(rows, dtype=np.int64)
        sel_ids = [inst_ids[r] for r in sel.tolist()]
        irows = itab.rows(sel_ids)
        if leave_out and evidence:
            own = [i for i in dict.fromkeys(sel_ids) if i in self._backers.get(project_id, ())]
            if own:
                # Only the selected rows are copied; the project's backers are re-encoded without it.
                uniq = list(dict.fromkeys(sel_ids))
                itab = itab.subset(itab.rows(uniq)).with_rows(
                    [self._institutions[i] for i in own], [self._evidence_for(i, project_id) for i in own]
                )
                irows = itab.rows(sel_ids)
        picked = {k: v[sel][None, :] for k, v in sims.items()}
        X = block_features(self._ptab, self._ptab.rows([project_id]), itab, irows, picked, public=public)
        info = {
            "dense_raw": info["dense_raw"][sel],
            "closest": info["closest"][sel],
            "sims": sims,
        }
        return X, info

    def _finish(
        self,
        ids: Sequence[int],
        X: NDArray[np.float64],
        k: int,
        explain: Any,
        raw: NDArray[np.float64] | None = None,
        span: tuple[float, float] | None = None,
        scale: ScoreScale | None = None,
        rivals: Mapping[int, ProjectProfile] | None = None,
        demoted: Collection[int] = (),
    ) -> list[Match]:
        """Rank pool rows by the ranker, attach the 匹配度 and the reasons of the top k.

        raw: the ranker's scores of X when already computed; scale: the 匹配度 scale (else a 0-100
        rescale over span, the (lowest, highest) raw score of the query's candidates, default these
        rows); rivals: row -> the backed project that row's candidate nearly copies; demoted: rows
        ranked after every other row (competitors of an institution that avoids them).
        """
        if len(ids) == 0 or k <= 0:
            return []
        if raw is None:
            raw = self.ranker.score(X)
        rivals = rivals or {}
        down = np.zeros(len(ids), dtype=bool)
        down[sorted(demoted)] = True
        # Demoted rows after every other row, then the first k: a shorter list is a prefix of a longer one.
        order = np.lexsort((np.asarray(ids), -raw, down))[:k]
        if scale is not None:
            points = 100.0 / scale.spread
            scores = scale.shown_many(raw[order])
        else:
            lo, hi = span if span is not None else (float(raw.min()), float(raw.max()))
            width = hi - lo
            points = 100.0 / width if width > 1e-12 else 0.0
            scores = rescale_0_100(raw[order], lo, hi)
        contrib = self.ranker.contributions(X[order]) * points if explain is not None else None
        out = []
        for rank, row in enumerate(order):
            feats = {name: float(X[row, j]) for j, name in enumerate(FEATURES)}
            reasons: tuple[Any, ...] = ()
            if contrib is not None:
                c = {name: float(contrib[rank, j]) for j, name in enumerate(FEATURES)}
                reasons = explain(int(row), feats, c)
            rival = rivals.get(int(row))
            out.append(
                Match(
                    id=int(ids[row]),
                    score=round(float(scores[rank]), 2),
                    reasons=reasons,
                    features=feats,
                    competitor_of=rival.name if rival is not None else None,
                )
            )
        return out

    # ------------------------------------------------------------------ 匹配度 and competitors
    def _counted(self, edit: Callable[..., None], *args: Any) -> None:
        """Apply a store edit under the lock and count it (pair scores drawn before it are stale)."""
        with self._lock:
            self._edits = getattr(self, "_edits", 0) + 1
            edit(*args)

    def upsert_project(self, profile: ProjectProfile, vector: NDArray[np.floating] | None) -> None:
        self._counted(super().upsert_project, profile, vector)

    def remove_project(self, project_id: int) -> None:
        self._counted(super().remove_project, project_id)

    def upsert_institution(self, profile: InstitutionProfile, vector: NDArray[np.floating] | None) -> None:
        self._counted(super().upsert_institution, profile, vector)

    def remove_institution(self, institution_id: int) -> None:
        self._counted(super().remove_institution, institution_id)

    def _state_key(self) -> tuple[Any, ...]:
        """Return what pair scores depend on besides the pair (call under the lock, evidence fresh).

        Any edit counts (a profile field outside the texts changes features too), and so does a
        rebuild of the evidence tables (a load or a background index rebuild marks them stale).
        """
        return (
            getattr(self, "_edits", 0),
            id(self.ranker),
            self._proj_lex.generation,
            self._inst_lex.generation,
            self._inst_lex_own.generation,
            len(self._projects),
            len(self._institutions),
            self._n_links,
            getattr(self, "_as_of_used", None),
        )

    def state_token(self) -> tuple[Any, ...]:
        """Return a value that changes whenever any ranked list may change (an edit, a ranker change,
        an evidence refresh, an index rebuild or the lexical-only fallback); equal tokens mean every
        list and score is the same, so callers may keep what they built from them (e.g. answers)."""
        with self._lock:
            return (self.degraded, *self._pair_cache()["key"])

    def _pair_cache(self) -> dict[Any, Any]:
        """Return the cache of pair rows and lists for the current state (cleared when it changed)."""
        self._refresh_evidence()  # a refresh counts as an edit: first, so the key below holds
        key = self._state_key()
        cache: dict[Any, Any] = self.__dict__.setdefault("_pair_scores_cache", {})
        if cache.get("key") != key:
            cache.clear()
            cache["key"] = key
        return cache

    def _row_stats(self, pids: Sequence[int], blk: _SideBlock, cache: dict[Any, Any]) -> NDArray[np.float64]:
        """Return each project's row statistics against a side block, (len(pids), _N_STATS).

        A project's row is its similarities to every institution of the side; the statistics
        (mean and deviation of the z-scored channels, best BM25) are all a pair needs of it besides
        its own values. They are kept per state, in arrays over the project table's rows, and the
        missing ones are computed in one batch (:meth:`warm_pair_rows` computes them all).
        """
        ck = ("stats", blk.side, blk.evidence)
        self._asked_rows.add((blk.side, blk.evidence))
        cap = int(self._ptab.stage.shape[0])
        store = cache.get(ck)
        if store is None or store[0].shape[0] < cap:
            grown = (np.zeros((cap, _N_STATS)), np.zeros(cap, dtype=bool))
            if store is not None:
                grown[0][: store[0].shape[0]] = store[0]
                grown[1][: store[1].shape[0]] = store[1]
            store = cache[ck] = grown
        values, valid = store
        prow = self._ptab.rows(pids)
        todo = np.flatnonzero(~valid[prow])
        if todo.size:
            missing = list(dict.fromkeys(pids[j] for j in todo.tolist()))
            for start in range(0, len(missing), _STATS_CHUNK):
                part = missing[start : start + _STATS_CHUNK]
                # exact: a row's statistics must not depend on the batch that computed them (in float32
                # they move in the sixth digit, and a shown 匹配度 with them)
                got = self._pair_values(part, blk, exact=True)
                rows = self._ptab.rows(part)
                for c, name in enumerate(_Z_CHANNELS):
                    x = got.raw[name]
                    mean, std = row_moments(x, ~np.isnan(x) & got.mask)
                    values[rows, 2 * c] = mean[:, 0]
                    values[rows, 2 * c + 1] = std[:, 0]
                bm = got.raw["bm25"]
                values[rows, -1] = bm.max(axis=1) if bm.shape[1] else 0.0
                valid[rows] = True
        return values[prow]

    def warm_pair_rows(self, side: Side = "fund", evidence: bool = True, chunk: int | None = None) -> int:
        """Compute the row statistics of every project against a side now; return how many were missing.

        The institutions' lists then score their candidates as pairs without computing any row
        (until the next edit). Optional: missing statistics are otherwise computed on first use.
        The lock is taken one chunk at a time, so rankings go on meanwhile; an edit in between
        ends the pass early (what was computed is gone with the state it was computed for).
        """
        with self._lock:
            cache = self._pair_cache()
            key = cache["key"]
            pids = sorted(self._projects)
            missing = len(pids) - self.warmed_rows(side, evidence)
            if chunk is None:  # about _WARM_PAIRS pairs per hold of the lock
                chunk = max(16, _WARM_PAIRS // max(1, len(self._side_block(side, evidence, cache).ids)))
        for start in range(0, len(pids), chunk):
            with self._lock:
                cache = self._pair_cache()
                if cache["key"] != key:
                    break
                self._row_stats(pids[start : start + chunk], self._side_block(side, evidence, cache), cache)
        return missing

    def warmed_rows(self, side: Side = "fund", evidence: bool = True) -> int:
        """Return how many projects' row statistics against a side are kept for the current state."""
        with self._lock:
            store = self._pair_cache().get(("stats", side, evidence))
            return 0 if store is None else int(store[1].sum())

    def start_warming(self, interval_s: float = 5.0) -> threading.Thread:
        """Keep the rankings asked for warm, in a background thread; return it.

        Every interval_s the thread looks at the ranking state: once it has held still for a whole
        interval, once per state, it computes the row statistics of every (side, evidence) a list
        was ranked with since the start (:meth:`warm_pair_rows`), then ranks every institution's
        list of the latest WARM_LIST_SHAPES kinds asked for (:meth:`warm_lists`). First views then
        skip the per-row work, whose cost grows with the number of institutions of the side, and an
        institution's list (thousands of funds browsing during an event) is a kept one.
        """

        def loop() -> None:
            seen: Any = None
            done: set[tuple[Any, ...]] = set()
            while not self._warm_stop.wait(interval_s):
                with self._lock:
                    key = self._pair_cache()["key"]
                    asked = sorted(self._asked_rows)
                if key != seen:  # changed since the last look: wait until it holds still
                    seen = key
                    continue
                for side, evidence in asked:
                    if (key, side, evidence) not in done:
                        try:
                            self.warm_pair_rows(side, evidence)
                        except Exception:  # a warm pass is an optimisation: log it, never stop the thread
                            logger.exception("warming the %s row statistics failed", side)
                        done.add((key, side, evidence))
                with self._lock:
                    shapes = list(self._asked_lists)
                for shape in shapes:
                    if (key, shape) not in done:
                        try:
                            self.warm_lists(*shape)
                        except Exception:
                            logger.exception("warming the institutions' lists failed")
                        done.add((key, shape))
                done = {d for d in done if d[0] == key}

        thread = threading.Thread(target=loop, name="ranking-warmer", daemon=True)
        thread.start()
        return thread

    def warm_lists(self, k: int = 10, filters: Filters | None = None, explain: bool = True) -> int:
        """Rank every institution's list of one kind now (kept until the next edit); return how many
        were ranked. One list per hold of the lock, so rankings go on meanwhile; an edit in between
        ends the pass (its lists are gone with the state they were ranked in). Nothing is ranked
        when the lists would not all fit in the kept lists' budget.
        """
        with self._lock:
            key = self._pair_cache()["key"]
            ids = sorted(self._institutions)
        if len(ids) * WARM_LIST_SHAPES > _KEPT_SIZE["list"] // 2:
            return 0
        ranked = 0
        for iid in ids:
            with self._lock:
                cache = self._pair_cache()
                if cache["key"] != key:
                    break
                key_of = ("institution", iid, k, filters, explain)
                if self._list_key(key_of) in cache.get(("kept", "list"), {}):
                    continue
                try:
                    self._listed(key_of, functools.partial(self._match_institution, *key_of[1:]))
                except KeyError:  # removed meanwhile
                    continue
                ranked += 1
        return ranked

    def stop_warming(self) -> None:
        """Ask the warming thread to end (it ends within one interval)."""
        self._warm_stop.set()

    @staticmethod
    def _scaled(values: _Values, stats: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
        """Return the per-query similarity features of pairs from their values and rows' statistics."""
        out = {}
        for c, name in enumerate(_Z_CHANNELS):
            x = values.raw[name]
            out[name] = zscore_with(
                x, ~np.isnan(x) & values.mask, stats[:, 2 * c, None], stats[:, 2 * c + 1, None]
            )
        top = stats[:, -1, None]
        bm = np.where(values.mask, values.raw["bm25"], 0.0)
        out["bm25"] = np.where(top > 0, bm / np.where(top > 0, top, 1.0), bm)
        out["coinvest"] = np.where(values.mask, values.raw["coinvest"], 0.0)
        return out

    @staticmethod
    def _kept(cache: dict[Any, Any], group: str) -> dict[Any, Any]:
        """Return the state cache's store of one kind of kept result ("list" or "pool"), made room in.

        Each kind has its own budget (_KEPT_SIZE), oldest first out, so the many pair rows a ranking
        adds never push the kept lists out (a list asked again stays a cache hit).
        """
        kept: dict[Any, Any] = cache.setdefault(("kept", group), {})
        if len(kept) >= _KEPT_SIZE[group]:
            for k in list(itertools.islice(kept, max(1, _KEPT_SIZE[group] // 4))):
                del kept[k]
        return kept

    @staticmethod
    def _trim_cache(cache: dict[Any, Any], adding: int = 1) -> None:
        """Drop the oldest pair entries when the cache would outgrow _PAIR_CACHE_SIZE (blocks stay)."""
        if len(cache) + adding <= _PAIR_CACHE_SIZE:
            return
        old = [k for k in cache if k != "key" and k[0] == "pair"]
        for k in old[: max(adding, _PAIR_CACHE_SIZE // 4)]:
            cache.pop(k, None)

    def _pair_scores(
        self, project_id: int, side: Side, evidence: bool, public: bool
    ) -> tuple[list[int], NDArray[np.float64], NDArray[np.float64], dict[str, Any], Any]:
        """Return one project's pair scores against every institution of a side: the 匹配度's source.

        Returns (institution ids, feature rows, raw scores, info, similarities). The candidates are
        every institution of the side but the project's own backers (when those are left out), so
        a pair's raw score does not depend on which list shows it; the 匹配度 is
        ``self._score_scale(side, evidence, public).shown(raw)``. Each pair's similarities are its
        own exact values scaled by the project's row statistics (:meth:`_row_stats`), the same
        numbers the institution's list computes for that pair (:meth:`_pair_raw`).
        """
        self._refresh_evidence()
        cache = self._pair_cache()
        ck = ("pair", project_id, side, evidence, public)
        found = cache.get(ck)
        if found is not None:
            return found
        blk = self._side_block(side, evidence, cache)
        stats = self._row_stats([project_id], blk, cache)
        vals = self._pair_values([project_id], blk, exact=True, closest=True)
        sel = np.flatnonzero(vals.mask[0])
        ids = [blk.ids[j] for j in sel.tolist()]
        scaled = self._scaled(vals, stats)
        sims = {name: v[0, sel] for name, v in scaled.items()}
        info = {
            "dense_raw": vals.raw["dense"][0, sel],
            "closest": vals.closest[0, sel],
            "closest_cos": vals.raw["dense_port_max"][0, sel],
            "sims": sims,
        }
        X = block_features(
            self._ptab,
            self._ptab.rows([project_id]),
            blk.itab,
            blk.irows[sel],
            {name: v[None, :] for name, v in sims.items()},
            public=public,
        )
        raw = np.asarray(self.ranker.score(X), dtype=np.float64) if ids else np.empty(0)
        found = (ids, X, raw, info, (sims, info))
        self._trim_cache(cache)
        cache[ck] = found
        return found

    def _pair_raw(
        self, project_ids: Sequence[int], inst: InstitutionProfile, evidence: bool, public: bool
    ) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]
    ]:
        """Return pair features and raw scores of several projects with one institution (see _pair_scores).

        Returns (feature rows, raw scores, raw cosines, nearest portfolio project, scored): the numbers
        the project's page shows for each pair, from one feature pass; ``scored`` is False where the
        pair is never ranked (the institution already backs the project).
        """
        cache = self._pair_cache()
        blk = self._side_block(inst.side, evidence, cache)
        n = len(project_ids)
        c = blk.col.get(inst.id)
        if c is None or n == 0:
            return (
                np.empty((n, len(FEATURES))),
                np.full(n, np.nan),
                np.full(n, np.nan),
                np.full(n, -1, dtype=np.int64),
                np.zeros(n, dtype=bool),
            )
        stats = self._row_stats(project_ids, blk, cache)
        vals = self._pair_values(project_ids, blk, np.array([c], dtype=np.int64), exact=True, closest=True)
        sims = self._scaled(vals, stats)
        X = block_features(
            self._ptab, self._ptab.rows(project_ids), blk.itab, blk.irows[[c]], sims, public=public
        )
        raw = np.asarray(self.ranker.score(X), dtype=np.float64)
        return X, raw, vals.raw["dense"][:, 0], vals.closest[:, 0], vals.mask[:, 0]

    def _score_scale(self, side: Side, evidence: bool, public: bool) -> ScoreScale:
        """Return the 匹配度 scale of a side and view: the best raw scores of sampled projects on that side.

        The reference holds, for projects sampled evenly over the sorted ids, their REFERENCE_TOP best
        raw scores against every institution of the side: 匹配度 80 means a pair better than 80% of the
        pairs at the top of a project's list. Built on first use, and again after a ranker change or
        once the records changed by more than SCALE_TOLERANCE (every page of a process uses the same
        scale at any moment, so a pair shows the same 匹配度 on all of them).
        """
        self._refresh_evidence()
        scales: dict[Any, Any] = self.__dict__.setdefault("_score_scales", {})
        ck = (
            "scale",
            side,
            evidence,
            public,
            id(self.ranker),
            self.degraded,
            getattr(self, "_as_of_used", None),
        )
        edits = getattr(self, "_edits", 0)
        size = len(self._projects) + len(self._institutions)
        found = scales.get(ck)
        # A reference drawn from dozens of lists hardly moves with one edit: it is rebuilt when the ranker
        # changed or when the records changed by more than SCALE_TOLERANCE since it was drawn, not on every
        # edit (which would make the next ranked page after any save pay for the whole reference).
        if found is not None and abs(edits - found[0]) <= max(20, SCALE_TOLERANCE * size):
            return found[1]
        pids = sorted(self._projects)
        step = max(1, len(pids) // REFERENCE_PROJECTS)
        sample = pids[::step][:REFERENCE_PROJECTS]
        cache = self._pair_cache()
        self._row_stats(sample, self._side_block(side, evidence, cache), cache)  # one batch
        rows = [np.sort(self._pair_scores(p, side, evidence, public)[2])[-REFERENCE_TOP:] for p in sample]
        scale = ScoreScale(np.concatenate(rows) if rows else np.empty(0))
        scales[ck] = (edits, scale)
        return scale

    def match_degree(
        self, project_id: int, institution_id: int, *, evidence: bool = True, public: bool = False
    ) -> float | None:
        """Return the 匹配度 of one pair as every list shows it (None when the pair is never ranked)."""
        with self._lock:
            inst = self._institutions.get(institution_id)
            if inst is None or project_id not in self._projects:
                raise KeyError(f"unknown pair {project_id}, {institution_id}")
            ids, _, raw, _, _ = self._pair_scores(project_id, inst.side, evidence, public)
            if institution_id not in ids:
                return None
            return self._score_scale(inst.side, evidence, public).shown(float(raw[ids.index(institution_id)]))

    def _near_copies(self) -> NearCopies:
        copies = self.__dict__.get("_copies")
        if copies is None:
            copies = self.__dict__.setdefault("_copies", NearCopies())
        return copies

    def _rival(
        self, project: ProjectProfile, case_id: int, cosine: float | None = None
    ) -> ProjectProfile | None:
        """Return the backed project case_id when project nearly copies it (a likely competitor)."""
        case = self._projects.get(case_id) if case_id >= 0 else None
        if case is None or case.id == project.id:
            return None
        if cosine is None and project.id in self._proj_index and case.id in self._proj_index:
            v = self._proj_index.vectors_for([project.id, case.id])
            cosine = float(v[0] @ v[1])
        return case if self._near_copies().is_copy(project, case, cosine) else None

    def _pair_context(
        self,
        proj: ProjectProfile,
        inst: InstitutionProfile,
        ev: Evidence,
        feats: Mapping[str, float],
        contrib: Mapping[str, float],
        closest_case: int,
        dense_raw: float | None,
        evidence: bool = True,
        competitor: str | None = None,
        institution_doc: str | None = None,
    ) -> PairContext:
        """Return the explanation context of one shown pair (see matching.explanation).

        Without evidence, shared keywords are weighed on the institutions' own texts and no
        co-investment partner is named. institution_doc: the institution's BM25 document, when the
        caller has it (one list's reasons all share it).
        """
        if institution_doc is None:
            institution_doc = self._institution_doc(inst) if evidence else self._institution_own_doc(inst)

        def partners() -> tuple[str, ...]:
            return self._coinvest_partners(proj.id, inst.id) if evidence else ()

        return pair_context(
            proj,
            inst,
            ev,
            feats,
            contrib,
            closest_case=self._projects.get(closest_case) if closest_case >= 0 else None,
            dense_raw=dense_raw,
            project_doc=self._project_doc(proj),
            project_lex=self._proj_lex,
            institution_lex=self._inst_lex if evidence else self._inst_lex_own,
            coinvest_partners=partners,
            project_clauses=self._proj_clauses,
            institution_clauses=self._inst_clauses,
            competitor=competitor,
            institution_doc=institution_doc,
        )

    # ------------------------------------------------------------------ public ranking
    def match_project(
        self,
        project_id: int,
        side: Side,
        k: int = 10,
        filters: Filters | None = None,
        *,
        explain: bool = True,
    ) -> list[Match]:
        """Return the top-k institutions of one side (fund, base or platform) for a project (kept per
        state: see _listed)."""
        with self._lock:
            key = ("project", project_id, side, k, filters, explain)
            return self._listed(key, lambda: self._match_project(project_id, side, k, filters, explain))

    def _listed(self, key: tuple[Any, ...], rank: Callable[[], list[Match]]) -> list[Match]:
        """Return a ranked list, kept in the state's cache (call under the lock).

        A list depends only on its arguments and the service's state (every edit, ranker change,
        evidence refresh or index rebuild gives a new state and an empty cache), so the same list
        asked for again (a page reloaded, thousands of funds browsing the same event) is not
        ranked again. Matches are frozen; the caller gets its own list.
        """
        ck = self._list_key(key)
        found = self._pair_cache().get(("kept", "list"), {}).get(ck)
        if found is None:
            found = tuple(rank())
            cache = self._pair_cache()  # ranking may refresh the state: store under the key it left
            self._kept(cache, "list")[ck] = found
        return list(found)

    def _list_key(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """Return the key a ranked list is kept under (the lexical-only fallback ranks differently)."""
        return (self.degraded, *key)

    def _match_project(
        self, project_id: int, side: Side, k: int, filters: Filters | None, explain: bool
    ) -> list[Match]:
        with self._lock:
            if project_id not in self._projects:
                raise KeyError(f"unknown project {project_id}")
            evidence = filters is None or filters.evidence
            cands = restrict(self._side_ids[side], filters)
            if self.exclude_known and evidence:
                cands -= self._backers.get(project_id, set())
            if not cands:
                return []
            public = filters is not None and filters.public_only
            # Every institution of the side is scored (one vectorised pass) whatever the filters, so
            # a pair's raw score and 匹配度 are the same in every list; the filters pick the rows.
            universe, X_all, raw_all, info, computed = self._pair_scores(project_id, side, evidence, public)
            allowed = [j for j, i in enumerate(universe) if i in cands]
            ids = [universe[j] for j in allowed]
            activity = np.array(
                [len(self._portfolio.get(i, ())) if evidence else 0 for i in ids], dtype=np.float64
            )
            sub = {key: v[allowed] for key, v in computed[0].items()}
            rows = [allowed[r] for r in institution_pool(ids, sub, activity, self.pool_size)]
            pool = [universe[r] for r in rows]
            X, raw = X_all[rows], raw_all[rows]
            proj = public_view(self._projects[project_id]) if public else self._projects[project_id]
            rivals: dict[int, ProjectProfile] = {}
            if evidence:
                for j, r in enumerate(rows):
                    if info["closest_cos"][r] < COPY_COSINE_FLOOR:
                        continue  # too far apart to be copies (see NearCopies.is_copy)
                    rival = self._rival(
                        self._projects[project_id], int(info["closest"][r]), float(info["closest_cos"][r])
                    )
                    if rival is not None:
                        rivals[j] = rival
            # An institution that avoids competitors ranks this project down: the project sees it lower too.
            demoted = {j for j in rivals if avoids(self._institutions[pool[j]].competitor_policy)}

            def reasons(row: int, feats: dict[str, float], contrib: dict[str, float]) -> tuple[Any, ...]:
                inst_id = pool[row]
                rival = rivals.get(row)
                ctx = self._pair_context(
                    proj,
                    self._institutions[inst_id],
                    self._evidence.get(inst_id, Evidence()) if evidence else Evidence(),
                    feats,
                    contrib,
                    int(info["closest"][rows[row]]),
                    float(info["dense_raw"][rows[row]]),
                    evidence,
                    competitor=rival.name if rival is not None else None,
                )
                return pair_reasons(ctx, self.max_reasons)

            scale = self._score_scale(side, evidence, public)
            return self._finish(
                pool, X, k, reasons if explain else None, raw=raw, scale=scale, rivals=rivals, demoted=demoted
            )

    def rank_institutions(self, project_id: int, side: Side, k: int = 100) -> list[int]:
        """Return the ids of the top-k institutions for a project, without reasons (for evaluation)."""
        return [m.id for m in self.match_project(project_id, side, k, explain=False)]

    def features_for_project(
        self, project_id: int, institution_ids: Sequence[int], *, leave_out: bool = True
    ) -> NDArray[np.float64]:
        """Return feature rows of one project against given institutions, as ranking would see them.

        Similarities are rescaled over every institution of the same sides (the full candidate
        set); with leave_out, an existing link between the pair is ignored, so a recorded outcome
        cannot explain itself (used to train on past outcomes).
        """
        with self._lock:
            sides = {self._institutions[i].side for i in institution_ids}
            universe = sorted(set().union(*(self._side_ids[s] for s in sides))) if sides else []
            row = {i: j for j, i in enumerate(universe)}
            X, _ = self._institution_features(
                project_id, universe, [row[i] for i in institution_ids], leave_out=leave_out
            )
            return X

    def score_block(
        self,
        project_ids: Sequence[int],
        institution_ids: Sequence[int],
        *,
        public: bool = False,
        chunk_pairs: int = 65_536,
    ) -> NDArray[np.float64]:
        """Return the 匹配度 (0-100, unrounded) of every project x institution pair as one matrix.

        The result has shape ``(len(project_ids), len(institution_ids))`` in the order given. Each
        pair gets the number the ranked lists show for it (``match_project``, ``match_institution``,
        rounded there to one decimal): each project is scored against every institution of the
        institution's side (similarities z-scored, BM25 scaled, over those candidates) and the raw
        score is placed on the side's scale (:meth:`_score_scale`), whatever subset is asked for.
        A pair the project's portfolio links already is NaN when ``exclude_known`` is set (the
        one-query path never proposes it either).

        Work is done in chunks of about ``chunk_pairs`` pairs: vector products for the dense
        and portfolio similarities, one sparse product for BM25, one
        :func:`matching.scoring.block_features` pass and one ranker call per chunk.

        Raises:
            KeyError: an unknown project or institution id.
        """
        with self._lock:
            pids = [int(p) for p in project_ids]
            iids = [int(i) for i in institution_ids]
            for pid in pids:
                if pid not in self._projects:
                    raise KeyError(f"unknown project {pid}")
            sides: dict[Side, list[int]] = {}
            for j, i in enumerate(iids):
                inst = self._institutions.get(i)
                if inst is None:
                    raise KeyError(f"unknown institution {i}")
                sides.setdefault(inst.side, []).append(j)
            out = np.full((len(pids), len(iids)), np.nan)
            if not pids:
                return out
            for side, cols in sides.items():
                universe, raw = self._raw_block(pids, side, public, chunk_pairs)
                where = {i: c for c, i in enumerate(universe)}
                picked = raw[:, [where[iids[j]] for j in cols]]
                out[:, cols] = self._score_scale(side, True, public).degree(picked)
            return out

    def _side_block(self, side: Side, evidence: bool, cache: dict[Any, Any] | None = None) -> _SideBlock:
        """Return the institution side of pair rows, built once per state (call under the lock).

        Every institution of the side in id order: vectors, portfolio rows, BM25 term weights. Without
        evidence: no portfolio, no vector derived from one, BM25 on the institutions' own texts.
        """
        self._refresh_evidence()
        cache = self._pair_cache() if cache is None else cache
        ck = ("block", side, evidence)
        found: _SideBlock | None = cache.get(ck)
        if found is not None:
            return found
        iids = sorted(self._side_ids[side])
        itab = self._institution_table(evidence)
        has_iv = np.array(
            [i in self._inst_index and (evidence or i in self._own_vector) for i in iids], dtype=bool
        ).reshape(-1)
        iv_row = np.where(has_iv, np.cumsum(has_iv) - 1, -1).astype(np.int64)
        dim = int(self.embedder.dim)
        iv = (
            self._inst_index.vectors_for([i for i, ok in zip(iids, has_iv.tolist(), strict=True) if ok])
            if has_iv.any()
            else np.empty((0, dim), dtype=np.float32)
        )
        if evidence:
            pm = self._portfolio_matrix()
            bounds = np.array([pm.segments.get(i, (0, 0)) for i in iids], dtype=np.int64).reshape(-1, 2)
        else:
            pm = None
            bounds = np.zeros((len(iids), 2), dtype=np.int64)
        lengths = bounds[:, 1] - bounds[:, 0]
        has_port = lengths > 0
        port_cols = (
            np.concatenate([np.arange(a, b) for a, b in bounds[has_port]])
            if pm is not None and has_port.any()
            else np.empty(0, dtype=np.int64)
        )
        port_vecs = pm.matrix[port_cols] if pm is not None else np.empty((0, dim), dtype=np.float32)
        port_pids = pm.project_ids[port_cols] if pm is not None else np.empty(0, dtype=np.int64)
        lex = self._inst_lex if evidence else self._inst_lex_own
        terms, weights = lex.weight_matrix(iids)
        by_term = weights.T.tocsr()
        found = _SideBlock(
            side=side,
            evidence=evidence,
            ids=iids,
            col={i: j for j, i in enumerate(iids)},
            itab=itab,
            irows=itab.rows(iids),
            has_iv=has_iv,
            iv_row=iv_row,
            iv=iv,
            iv64=iv.astype(np.float64),
            seg_start=(np.cumsum(lengths) - lengths).astype(np.int64),
            seg_len=lengths.astype(np.int64),
            port_vecs=port_vecs,
            port64=port_vecs.astype(np.float64),
            port_pids=port_pids,
            terms=terms,
            w_ptr=by_term.indptr.astype(np.int64),
            w_idx=by_term.indices.astype(np.int64),
            w_val=by_term.data.astype(np.float64),
            w_csc=by_term.tocsc(),
        )
        cache[ck] = found
        return found

    def _query_rows(self, pid: int, blk: _SideBlock, cache: dict[Any, Any]) -> NDArray[np.int32]:
        """Return the block's term rows of a project's document as a BM25 query (kept per state)."""
        kept: _QueryRows = cache.setdefault(("query rows", blk.side, blk.evidence), _QueryRows())
        row = self._ptab.row_of[pid]
        found = kept.get(row)
        if found is None:
            lex = self._inst_lex if blk.evidence else self._inst_lex_own
            rows = (blk.terms.get(t) for t in self._proj_lex.doc_query_terms(pid, lex))
            found = np.fromiter((r for r in rows if r is not None), dtype=np.int32)
            kept.put(row, found)
        return found

    def _bm25_values(
        self, pids: Sequence[int], blk: _SideBlock, cols: NDArray[np.int64] | None, cache: dict[Any, Any]
    ) -> NDArray[np.float64]:
        """Return the BM25 scores of each project's document against the block's institutions cols.

        Each pair's score is its query terms' weights summed in query order (one bincount), so a
        pair gets the same number whether its row or its column is computed.
        """
        n_p = len(pids)
        n_c = len(blk.ids) if cols is None else len(cols)
        bulk = n_p > PAIR_SCORED_TOP  # a block's rows: one sparse product
        qs = [self._query_rows(p, blk, cache) for p in pids]
        if not qs or not n_c:
            return np.zeros((n_p, n_c))
        lengths = np.fromiter((q.size for q in qs), dtype=np.int64, count=n_p)
        owner = np.repeat(np.arange(n_p, dtype=np.int64), lengths)
        terms = np.concatenate(qs) if lengths.sum() else np.empty(0, dtype=np.int64)
        if cols is None and bulk:
            # A bulk block: one sparse product (the same sums, added in another order).
            from scipy.sparse import csr_matrix

            ptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
            queries = csr_matrix(
                (np.ones(terms.size), terms, ptr), shape=(n_p, blk.w_ptr.size - 1), dtype=np.float64
            )
            weights = csr_matrix((blk.w_val, blk.w_idx, blk.w_ptr), shape=(blk.w_ptr.size - 1, n_c))
            return np.asarray((queries @ weights).toarray(), dtype=np.float64)
        if cols is None:
            starts = blk.w_ptr[terms]
            counts = blk.w_ptr[terms + 1] - starts
            total = int(counts.sum())
            if not total:
                return np.zeros((n_p, n_c))
            offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
            bins = np.repeat(owner, counts) * n_c + blk.w_idx[offsets]
            sums = np.asarray(np.bincount(bins, weights=blk.w_val[offsets], minlength=n_p * n_c), np.float64)
            return sums.reshape(n_p, n_c)
        out = np.zeros((n_p, n_c))
        for j, c in enumerate(cols.tolist()):
            ck = ("wcol", blk.side, blk.evidence, c)
            column = cache.get(ck)
            if column is None:
                column = cache[ck] = np.asarray(blk.w_csc[:, [c]].toarray()).ravel()
            out[:, j] = np.bincount(owner, weights=column[terms], minlength=n_p)
        return out

    def _pair_values(
        self,
        pids: Sequence[int],
        blk: _SideBlock,
        cols: NDArray[np.int64] | None = None,
        *,
        exact: bool = False,
        closest: bool = False,
    ) -> _Values:
        """Return the raw similarities of projects x the block's institutions cols (default: all).

        One product each for the dense and portfolio similarities, one sparse product for BM25, the
        co-investment counts, and the candidate mask (every pair but the project's own backers, when
        exclude_known is set and evidence is used). exact: products in float64 (a pair then gets the
        same value, to rounding far below any shown digit, whichever batch computes it); closest:
        also the nearest portfolio project of each pair.
        """
        cache = self._pair_cache()
        cols_arr = np.arange(len(blk.ids), dtype=np.int64) if cols is None else np.asarray(cols, np.int64)
        n_p, n_c = len(pids), len(cols_arr)
        pos = {int(c): j for j, c in enumerate(cols_arr.tolist())}
        mask = np.ones((n_p, n_c), dtype=bool)
        coinvest = np.zeros((n_p, n_c))
        for a, pid in enumerate(pids):
            if blk.evidence:
                backers = self._backers.get(pid, ())
                if self.exclude_known:
                    for b in backers:
                        j = pos.get(blk.col.get(b, -1))
                        if j is not None:
                            mask[a, j] = False
                if backers:
                    add_coinvest_counts(
                        coinvest[a],
                        pid,
                        self._backers,
                        self._partner_counts,
                        lambda i: pos.get(blk.col.get(i, -1)),
                    )
        coinvest = np.log1p(coinvest)
        bm = self._bm25_values(pids, blk, cols_arr if cols is not None else None, cache)
        bm = np.where(mask, bm, 0.0)
        has_pv = self._proj_index.contains(pids)
        dense = np.full((n_p, n_c), np.nan)
        pmax = np.full((n_p, n_c), np.nan)
        pmean = np.full((n_p, n_c), np.nan)
        near = np.full((n_p, n_c), -1, dtype=np.int64)
        if has_pv.any():
            pv32 = self._proj_index.vectors_for([p for p, h in zip(pids, has_pv.tolist(), strict=True) if h])
            pv = pv32.astype(np.float64) if exact else pv32
            iv_rows = blk.iv_row[cols_arr]
            with_iv = iv_rows >= 0
            if with_iv.any():
                iv = blk.iv64 if exact else blk.iv
                sub = iv if cols is None else iv[iv_rows[with_iv]]
                dense[np.ix_(has_pv, with_iv)] = pv @ sub.T
            lengths = blk.seg_len[cols_arr]
            has_port = lengths > 0
            if has_port.any():
                port = blk.port64 if exact else blk.port_vecs
                if cols is None:
                    rows = np.arange(port.shape[0])
                else:
                    starts_all = blk.seg_start[cols_arr][has_port]
                    rows = np.concatenate(
                        [np.arange(a, a + n) for a, n in zip(starts_all, lengths[has_port], strict=True)]
                    )
                    port = port[rows]
                sims = np.asarray(pv @ port.T, dtype=np.float64)
                starts = (np.cumsum(lengths[has_port]) - lengths[has_port]).astype(np.int64)
                seg_max = np.maximum.reduceat(sims, starts, axis=1)
                seg_mean = np.add.reduceat(sims, starts, axis=1) / lengths[has_port][None, :]
                pmax[np.ix_(has_pv, has_port)] = seg_max
                pmean[np.ix_(has_pv, has_port)] = seg_mean
                if closest:
                    # The first portfolio row reaching each segment's maximum.
                    owner = np.repeat(np.arange(len(starts)), lengths[has_port])
                    first = np.where(
                        sims == seg_max[:, owner], np.arange(sims.shape[1])[None, :], sims.shape[1]
                    )
                    arg = np.minimum.reduceat(first, starts, axis=1)
                    near[np.ix_(has_pv, has_port)] = blk.port_pids[rows[arg]]
        raw = {
            "dense": dense,
            "dense_port_max": pmax,
            "dense_port_mean": pmean,
            "bm25": bm,
            "coinvest": coinvest,
        }
        return _Values(raw, mask, near)

    def _raw_block(
        self, pids: list[int], side: Side, public: bool, chunk_pairs: int
    ) -> tuple[list[int], NDArray[np.float64]]:
        """Return the side's institution ids and the raw ranker scores of pids against each of them."""
        blk = self._side_block(side, True)
        n_i = len(blk.ids)
        out = np.full((len(pids), n_i), np.nan)
        if not pids or not n_i:
            return blk.ids, out
        form = linear_form(self.ranker)
        chunk = max(1, chunk_pairs // n_i)
        for start in range(0, len(pids), chunk):
            part = pids[start : start + chunk]
            vals = self._pair_values(part, blk)
            z = {name: zscore_rows(vals.raw[name], vals.mask) for name in _Z_CHANNELS}
            z["bm25"] = bm25_scaled(vals.raw["bm25"], axis=1)
            z["coinvest"] = np.where(vals.mask, vals.raw["coinvest"], 0.0)
            prow = self._ptab.rows(part)
            if form is not None:
                # A linear ranker: float32 features and one matrix-vector product (within 0.001 points).
                X = block_features(self._ptab, prow, blk.itab, blk.irows, z, public=public, dtype=np.float32)
                raw = linear_scores(X, form)
            else:
                X = block_features(self._ptab, prow, blk.itab, blk.irows, z, public=public)
                raw = self.ranker.score(X)
            out[start : start + len(part)] = np.where(vals.mask, raw.reshape(len(part), n_i), np.nan)
        return blk.ids, out

    def _projects_for(
        self,
        inst: InstitutionProfile,
        query_vectors: NDArray[np.float32] | None,
        lexical_doc: str | Sequence[str],
        text_for_phrases: str,
        k: int,
        filters: Filters | None,
        explain: bool,
        pair_scored: bool = False,
    ) -> list[Match]:
        """Rank projects for an institution-like query (the institution itself or one of its needs).

        Candidates that nearly copy a project the institution backed are flagged, and ranked below the
        others when it avoids competitors. pair_scored (the institution's own list): the top k are
        scored as pairs (:meth:`_pair_scores`), so each shows the 匹配度 and reasons it has on the
        project's page, and are ordered by it; a need's list keeps its own scores.
        """
        self._refresh_evidence()
        evidence = filters is None or filters.evidence
        if len(self._projects) > self.pool_size:  # pooled: BM25 picks and orders candidates only
            lexical_doc = self._proj_lex.without_common_terms(lexical_doc, LEXICAL_POOL_MAX_SHARE)
        known = set(self._portfolio.get(inst.id, ())) if self.exclude_known and evidence else set()
        cands: set[int] | None = None  # None: every project but the known links (no set of all ids)
        if filters is not None and filters.allowed_ids is not None:
            cands = restrict(self._projects, filters) - known
        # The pool depends only on the query and the stored records: kept per state (a list is
        # often asked for again, e.g. page after page), dropped on any edit.
        cache = self._pair_cache()
        ck = (
            None if query_vectors is None else query_vectors.tobytes(),
            lexical_doc if isinstance(lexical_doc, str) else tuple(lexical_doc),
            None if cands is None else frozenset(cands),
            frozenset(known),
        )
        pool = cache.get(("kept", "pool"), {}).get(ck)
        if pool is None:
            found = project_pool(
                self._ann_index(),
                self._proj_lex,
                query_vectors,
                lexical_doc,
                cands,
                self._projects.keys(),
                known,
                self.pool_size,
            )
            pool = self._kept(cache, "pool")[ck] = np.asarray(found, dtype=np.int64)  # 8 bytes an id
        pool = pool.tolist()
        if not pool:
            return []
        q = query_vectors[0] if query_vectors is not None and query_vectors.shape[0] else None
        dense = np.full(len(pool), np.nan)
        has_vec = np.flatnonzero(self._proj_index.contains(pool)).tolist()
        pmax, pmean = np.full(len(pool), np.nan), np.full(len(pool), np.nan)
        parg = np.full(len(pool), -1, dtype=np.int64)
        if has_vec:
            P = self._proj_index.vectors_for([pool[j] for j in has_vec])
            if q is not None:
                dense[has_vec] = P @ q
            port = [p for p in self._portfolio.get(inst.id, ()) if p in self._proj_index] if evidence else []
            if port:
                S = P @ self._proj_index.vectors_for(port).T
                best = S.argmax(axis=1)
                pmax[has_vec] = S.max(axis=1)
                pmean[has_vec] = S.mean(axis=1)
                parg[has_vec] = np.asarray(port, dtype=np.int64)[best]
        bm = self._proj_lex.score(lexical_doc, pool)
        bm_raw = np.array([bm.get(i, 0.0) for i in pool])
        partners = self._partner_counts(inst.id) if evidence else Counter()
        co = np.log1p(
            np.array([sum(partners.get(b, 0) for b in self._backers.get(p, ())) for p in pool], dtype=float)
        )
        sims = {
            "dense": zscore_known(dense)[:, None],
            "dense_port_max": zscore_known(pmax)[:, None],
            "dense_port_mean": zscore_known(pmean)[:, None],
            "bm25": bm25_scaled(bm_raw)[:, None],
            "coinvest": co[:, None],
        }
        ev = self._evidence.get(inst.id, Evidence()) if evidence else Evidence()
        public = filters is not None and filters.public_only
        one = InstitutionTable(self._vocabs, [inst], [ev])
        X = block_features(
            self._ptab, self._ptab.rows(pool), one, np.zeros(1, dtype=np.int64), sims, public=public
        )
        phrase_inst = replace(inst, text=text_for_phrases)
        raw = np.asarray(self.ranker.score(X), dtype=np.float64)
        rivals: dict[int, ProjectProfile] = {}
        if evidence:
            for j, pid in enumerate(pool):
                if pmax[j] < COPY_COSINE_FLOOR:
                    continue  # too far apart to be copies (see NearCopies.is_copy)
                cos = float(pmax[j]) if np.isfinite(pmax[j]) else None
                rival = self._rival(self._projects[pid], int(parg[j]), cos)
                if rival is not None:
                    rivals[j] = rival
        demoted = set(rivals) if avoids(inst.competitor_policy) else set()
        if pair_scored:
            # A fixed number of the best candidates are scored as pairs and ranked by that score, so the
            # list for k = 10 is the first ten of the list for k = 100.
            top = np.lexsort((np.asarray(pool), -raw))[: max(k, PAIR_SCORED_TOP)].tolist()
            top_ids = [pool[i] for i in top]
            X_p, raw_p, dense_p, near_p, scored = self._pair_raw(top_ids, inst, evidence, public)
            X, raw = X[top].copy(), raw[top].copy()
            parg, dense = parg[top].copy(), dense[top].copy()
            X[scored], raw[scored] = X_p[scored], raw_p[scored]
            parg[scored], dense[scored] = near_p[scored], dense_p[scored]
            where = {old: new for new, old in enumerate(top)}
            rivals = {where[j]: r for j, r in rivals.items() if j in where}
            demoted = {where[j] for j in demoted if j in where}
            pool = [pool[i] for i in top]

        inst_doc = self._institution_doc(phrase_inst) if evidence else self._institution_own_doc(phrase_inst)

        def reasons(row: int, feats: dict[str, float], contrib: dict[str, float]) -> tuple[Any, ...]:
            proj = self._projects[pool[row]]
            rival = rivals.get(row)
            ctx = self._pair_context(
                public_view(proj) if public else proj,
                phrase_inst,
                ev,
                feats,
                contrib,
                int(parg[row]),
                float(dense[row]),
                evidence,
                competitor=rival.name if rival is not None else None,
                institution_doc=inst_doc,
            )
            return pair_reasons(ctx, self.max_reasons)

        scale = self._score_scale(inst.side, evidence, public)
        return self._finish(
            pool, X, k, reasons if explain else None, raw=raw, scale=scale, rivals=rivals, demoted=demoted
        )

    def match_institution(
        self, institution_id: int, k: int = 10, filters: Filters | None = None, *, explain: bool = True
    ) -> list[Match]:
        """Return the top-k projects for a fund, base or platform (kept per state: see _listed)."""
        with self._lock:
            self._note_asked(k, filters, explain)
            key = ("institution", institution_id, k, filters, explain)
            return self._listed(key, lambda: self._match_institution(institution_id, k, filters, explain))

    def _note_asked(self, k: int, filters: Filters | None, explain: bool) -> None:
        """Record the kind of an institution's list asked for, for the warmer (the latest
        WARM_LIST_SHAPES kinds with k up to WARM_LIST_MAX_K and no record filter; call under the lock)."""
        if k > WARM_LIST_MAX_K or (filters is not None and filters.allowed_ids is not None):
            return
        shape = (k, filters, explain)
        self._asked_lists.pop(shape, None)
        self._asked_lists[shape] = None
        while len(self._asked_lists) > WARM_LIST_SHAPES:
            del self._asked_lists[next(iter(self._asked_lists))]

    def _match_institution(
        self, institution_id: int, k: int, filters: Filters | None, explain: bool
    ) -> list[Match]:
        with self._lock:
            inst = self._institutions.get(institution_id)
            if inst is None:
                raise KeyError(f"unknown institution {institution_id}")
            evidence = filters is None or filters.evidence
            queries = []
            v = self._institution_vector(institution_id)
            if v is not None and (evidence or institution_id in self._own_vector):
                queries.append(v)
            # The latest portfolio projects retrieve neighbours the institution's mean would miss.
            recent = sorted(inst.portfolio, key=lambda it: it.date or "", reverse=True) if evidence else []
            for item in recent[:4]:
                pv = self._project_vector(item.project_id)
                if pv is not None:
                    queries.append(pv)
            qm = np.vstack(queries).astype(np.float32) if queries else None
            if evidence:
                doc = self._inst_lex.as_query(inst.id, self._institution_doc(inst))
            else:
                doc = self._inst_lex_own.as_query(inst.id, self._institution_own_doc(inst))
            return self._projects_for(inst, qm, doc, inst.text, k, filters, explain, pair_scored=True)

    def match_need(
        self,
        need: NeedProfile,
        vector: NDArray[np.floating] | None,
        k: int = 10,
        filters: Filters | None = None,
        *,
        explain: bool = True,
    ) -> list[Match]:
        """Return the top-k projects for a need posted by an institution."""
        with self._lock:
            owner = self._institutions.get(need.institution_id)
            if owner is None:
                raise KeyError(f"unknown institution {need.institution_id}")
            # The need narrows the owner's declared preferences; its portfolio evidence still counts.
            pseudo = replace(
                owner,
                text=need.text,
                industries=need.industries or owner.industries,
                stages=need.stages or owner.stages,
                services=need.services or owner.services,
            )
            qm = None if vector is None else np.asarray(vector, dtype=np.float32).reshape(1, -1)
            doc = " ".join([need.text, *pseudo.industries, *pseudo.services])
            return self._projects_for(pseudo, qm, doc, need.text, k, filters, explain)
