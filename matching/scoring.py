"""The scoring stage: the feature matrix of a whole block of pairs with array operations.

Projects and institutions are encoded once into columns of numbers (:class:`ProjectTable`,
:class:`InstitutionTable`); :func:`block_features` then builds the ``(n_projects * n_institutions,
len(FEATURES))`` matrix of every pair of a block by broadcasting and small matrix products, with no
Python loop over pairs. The numbers equal :func:`matching.features.pair_features` of each pair (a
test pins this); that function stays the readable definition of every feature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

import matching.types as mt
from matching.features import (
    FEATURES,
    Evidence,
    award_level,
    project_stage_index,
    stage_fit,
    stage_round_lift,
)
from matching.ranker import HandWeightedRanker, Ranker

__all__ = ["InstitutionTable", "ProjectTable", "Vocab", "block_features"]

_COL = {name: j for j, name in enumerate(FEATURES)}
_N_STAGES = len(mt.STAGES)
_N_SERVICES = len(mt.SERVICE_KINDS)
_SIDE_CODE = {"fund": 0, "base": 1, "platform": 2}


class Vocab:
    """Labels to dense codes; code 0 is 'none' (None or empty). Only grows."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def code(self, label: str | None) -> int:
        if not label:
            return 0
        c = self._codes.get(label)
        if c is None:
            c = len(self._codes) + 1
            self._codes[label] = c
        return c

    def get(self, label: str | None) -> int:
        """Return the code of a known label, else 0 (without adding it)."""
        return self._codes.get(label, 0) if label else 0

    def __len__(self) -> int:
        return len(self._codes) + 1  # with the 'none' column


@dataclass
class Vocabs:
    """The label vocabularies shared by the project and institution tables."""

    industry: Vocab
    province: Vocab
    city: Vocab
    group: Vocab

    @classmethod
    def new(cls) -> Vocabs:
        return cls(Vocab(), Vocab(), Vocab(), Vocab())


class ProjectTable:
    """Per-project columns the features read, one row per project id; rows are reused after removal."""

    def __init__(self, vocabs: Vocabs, capacity: int = 1024) -> None:
        self.vocabs = vocabs
        self.row_of: dict[int, int] = {}
        self._free: list[int] = []
        self._n = 0
        self._alloc(capacity, 4)

    def _alloc(self, capacity: int, width: int) -> None:
        self.stage = np.full(capacity, -1, dtype=np.int64)
        self.industries = np.zeros((capacity, width), dtype=np.int64)  # codes, 0 padded, primary first
        self.province = np.zeros(capacity, dtype=np.int64)
        self.city = np.zeros(capacity, dtype=np.int64)
        self.amount = np.full(capacity, np.nan)
        self.has_needs = np.zeros(capacity, dtype=bool)
        self.need_side = np.zeros((capacity, 3), dtype=bool)  # needs financing / landing / a service
        self.wanted = np.zeros((capacity, _N_SERVICES))  # service needs, counted
        self.award = np.zeros(capacity)
        self.group = np.zeros(capacity, dtype=np.int64)

    def _grow(self, capacity: int, width: int) -> None:
        old = {k: getattr(self, k) for k in _PROJECT_COLUMNS}
        self._alloc(capacity, width)
        n = old["stage"].shape[0]
        for k, arr in old.items():
            target = getattr(self, k)
            if k == "industries":
                target[:n, : arr.shape[1]] = arr
            else:
                target[:n] = arr

    def upsert(self, p: mt.ProjectProfile) -> int:
        """Encode one project (replacing its previous row); return its row."""
        inds = [c for c in (self.vocabs.industry.code(x) for x in dict.fromkeys(p.industries)) if c]
        row = self.row_of.get(p.id)
        if row is None:
            row = self._free.pop() if self._free else self._n
            if row == self._n:
                self._n += 1
        cap, width = self.stage.shape[0], self.industries.shape[1]
        if row >= cap or len(inds) > width:
            self._grow(max(cap, 2 * row + 2), max(width, len(inds)))
        self.row_of[p.id] = row
        st = project_stage_index(p)
        self.stage[row] = -1 if st is None else st
        self.industries[row] = 0
        self.industries[row, : len(inds)] = inds
        self.province[row] = self.vocabs.province.code(p.province)
        self.city[row] = self.vocabs.city.code(p.city)
        self.amount[row] = float(p.amount_wan) if p.amount_wan else np.nan
        needs = tuple(p.needs)
        self.has_needs[row] = bool(needs)
        self.need_side[row] = (
            mt.NEED_FINANCING in needs,
            mt.NEED_LANDING in needs,
            any(n in mt.SERVICE_KINDS for n in needs),
        )
        self.wanted[row] = 0.0
        for n in needs:
            if n in mt.SERVICE_KINDS:
                self.wanted[row, mt.SERVICE_KINDS.index(n)] += 1.0
        self.award[row] = award_level(p.award)
        self.group[row] = self.vocabs.group.code(p.group)
        return row

    def remove(self, project_id: int) -> None:
        row = self.row_of.pop(project_id, None)
        if row is not None:
            self._free.append(row)

    def rows(self, ids: Iterable[int]) -> NDArray[np.int64]:
        """Return the rows of known project ids (KeyError for an unknown one)."""
        row_of = self.row_of
        return np.fromiter((row_of[i] for i in ids), dtype=np.int64)


_PROJECT_COLUMNS = (
    "stage",
    "industries",
    "province",
    "city",
    "amount",
    "has_needs",
    "need_side",
    "wanted",
    "award",
    "group",
)


class InstitutionTable:
    """Per-institution columns (profile and evidence), one row per (institution, evidence) given."""

    def __init__(
        self,
        vocabs: Vocabs,
        institutions: Sequence[mt.InstitutionProfile],
        evidences: Sequence[Evidence],
    ) -> None:
        self.vocabs = vocabs
        n = len(institutions)
        for inst, ev in zip(institutions, evidences, strict=True):
            # Register every label first: a project coded later must find the same column.
            for label in (*inst.industries, *(ev.industry_share or {})):
                vocabs.industry.code(label)
            for place in (inst.province, *(ev.province_share or {})):
                vocabs.province.code(place)
            vocabs.city.code(inst.city)
            for label in ev.group_share or {}:
                vocabs.group.code(label)
        self.ids = np.fromiter((inst.id for inst in institutions), dtype=np.int64, count=n)
        self.row_of = {int(i): r for r, i in enumerate(self.ids.tolist())}
        n_ind, n_prov, n_group = len(vocabs.industry), len(vocabs.province), len(vocabs.group)
        self.side = np.zeros(n, dtype=np.int64)
        self.declared = np.zeros((n, n_ind))
        self.has_declared = np.zeros(n, dtype=bool)
        self.stage_fit = np.zeros((n, _N_STAGES + 1))  # last column: unknown project stage (0)
        self.stage_port = np.zeros((n, _N_STAGES + 1))
        self.stage_round = np.zeros((n, _N_STAGES + 1))
        self.ticket_min = np.full(n, np.nan)
        self.ticket_max = np.full(n, np.nan)
        self.province = np.zeros(n, dtype=np.int64)
        self.city = np.zeros(n, dtype=np.int64)
        self.offered = np.zeros((n, _N_SERVICES))
        self.ind_share = np.zeros((n, n_ind))
        self.prov_share = np.zeros((n, n_prov))
        self.group_share = np.zeros((n, n_group))
        self.n_items = np.zeros(n)
        self.n_with_stage = np.zeros(n)
        self.per_inst = np.zeros((n, 5))  # activity, recency, recency_fast, recency_slow, idle
        for r, (inst, ev) in enumerate(zip(institutions, evidences, strict=True)):
            self._encode(r, inst, ev)

    def _encode(self, r: int, inst: mt.InstitutionProfile, ev: Evidence) -> None:
        v = self.vocabs
        self.side[r] = _SIDE_CODE[inst.side]
        for label in set(inst.industries):
            self.declared[r, v.industry.get(label)] = 1.0
        self.has_declared[r] = bool(set(inst.industries))
        for s in range(_N_STAGES):
            self.stage_fit[r, s] = stage_fit(s, inst.stages)
            self.stage_round[r, s] = stage_round_lift(s, ev)
            if ev.n_with_stage:
                lo, hi = max(0, s - 1), min(_N_STAGES, s + 2)
                self.stage_port[r, s] = float(sum(ev.stage_share[lo:hi]))
        self.ticket_min[r] = np.nan if inst.ticket_min_wan is None else float(inst.ticket_min_wan)
        self.ticket_max[r] = np.nan if inst.ticket_max_wan is None else float(inst.ticket_max_wan)
        self.province[r] = v.province.get(inst.province)
        self.city[r] = v.city.get(inst.city)
        offered = set(inst.services)
        self.offered[r] = [1.0 if s in offered else 0.0 for s in mt.SERVICE_KINDS]
        for label, share in (ev.industry_share or {}).items():
            self.ind_share[r, v.industry.get(label)] = share
        for label, share in (ev.province_share or {}).items():
            self.prov_share[r, v.province.get(label)] = share
        for label, share in (ev.group_share or {}).items():
            self.group_share[r, v.group.get(label)] = share
        # Code 0 is 'none': a project without the label must never read a share.
        self.declared[r, 0] = 0.0
        self.ind_share[r, 0] = self.prov_share[r, 0] = self.group_share[r, 0] = 0.0
        self.n_items[r] = ev.n_items
        self.n_with_stage[r] = ev.n_with_stage
        self.per_inst[r] = (
            np.log1p(ev.n_portfolio),
            np.log1p(ev.recency),
            np.log1p(ev.recency_fast),
            np.log1p(ev.recency_slow),
            np.log1p(ev.idle_days / 30.0),
        )

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def with_rows(
        self, institutions: Sequence[mt.InstitutionProfile], evidences: Sequence[Evidence]
    ) -> InstitutionTable:
        """Return a copy where the given institutions' rows are re-encoded (e.g. with trimmed evidence)."""
        out = object.__new__(InstitutionTable)
        out.__dict__.update(
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        )
        for inst, ev in zip(institutions, evidences, strict=True):
            r = out.row_of[inst.id]
            for arr in (out.declared, out.stage_fit, out.stage_port, out.stage_round, out.offered):
                arr[r] = 0.0
            for arr in (out.ind_share, out.prov_share, out.group_share):
                arr[r] = 0.0
            out._encode(r, inst, ev)
        return out

    def subset(self, rows: NDArray[np.int64]) -> InstitutionTable:
        """Return a table of the given rows only (in that order; each row once)."""
        out = object.__new__(InstitutionTable)
        out.__dict__.update(
            {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        )
        out.row_of = {int(i): r for r, i in enumerate(out.ids.tolist())}
        return out

    def rows(self, ids: Iterable[int]) -> NDArray[np.int64]:
        row_of = self.row_of
        return np.fromiter((row_of[i] for i in ids), dtype=np.int64)


def _multi_hot(codes: NDArray[np.int64], width: int, skip_first: bool = False) -> NDArray[np.float64]:
    """Return (n, width) 0/1 rows from padded code rows (0 = padding; codes >= width are dropped)."""
    n = codes.shape[0]
    out = np.zeros((n, width))
    cols = codes[:, 1:] if skip_first else codes
    r, c = np.nonzero((cols > 0) & (cols < width))
    out[r, cols[r, c]] = 1.0
    out[:, 0] = 0.0
    return out


def block_features(
    projects: ProjectTable,
    p_rows: NDArray[np.int64],
    institutions: InstitutionTable,
    i_rows: NDArray[np.int64],
    sims: Mapping[str, NDArray[np.float64]] | None = None,
    *,
    public: bool = False,
    dtype: type[np.floating] = np.float64,
) -> NDArray[np.float64]:
    """Return the feature matrix of every (project, institution) pair of a block.

    Rows run project-major: pair (a, b) of ``p_rows[a]`` and ``i_rows[b]`` is row
    ``a * len(i_rows) + b``. ``sims`` holds the per-query rescaled similarity features
    (``matching.features.SIMILARITY_FEATURES``), each an array broadcastable to
    ``(len(p_rows), len(i_rows))``; missing ones are 0. ``public`` scores the projects' public
    view (stage, amount, round and needs unknown), like :func:`matching.types.public_view`.
    ``dtype`` float32 halves the memory traffic of bulk scoring (see :func:`linear_scores`).
    """
    n_p, n_i = len(p_rows), len(i_rows)
    # Feature-major: each column is written contiguously; the (pairs, features) result is its transpose.
    X = np.zeros((len(FEATURES), n_p, n_i), dtype=dtype)
    if n_p == 0 or n_i == 0:
        return X.reshape(len(FEATURES), n_p * n_i).T
    pt, it = projects, institutions
    codes = pt.industries[p_rows]
    stage = (
        np.full(n_p, _N_STAGES, dtype=np.int64)
        if public
        else np.where(pt.stage[p_rows] < 0, _N_STAGES, pt.stage[p_rows])
    )
    side = it.side[i_rows]
    n_items = it.n_items[i_rows]

    for name, value in (sims or {}).items():
        X[_COL[name]] = value

    # Industries: declared fit, portfolio share and count.
    width = it.declared.shape[1]
    hot = _multi_hot(codes, width)
    prim = codes[:, 0]
    prim_in = np.where(prim < width, prim, 0)
    declared = it.declared[i_rows]
    prim_hit = declared[:, prim_in].T > 0  # (P, I)
    sec_hit = (_multi_hot(codes, width, skip_first=True) @ declared.T) > 0
    has_inds = codes[:, 0] > 0
    disjoint = has_inds[:, None] & it.has_declared[i_rows][None, :]
    X[_COL["industry"]] = np.where(prim_hit, 1.0, np.where(sec_hit, 0.5, np.where(disjoint, -1.0, 0.0)))
    ind_port = np.minimum(1.0, hot @ it.ind_share[i_rows].T)
    X[_COL["industry_portfolio"]] = ind_port
    X[_COL["industry_count"]] = np.log1p(ind_port * n_items[None, :])

    # Stages: tables per institution, indexed by the project's stage (last column = unknown).
    ii = i_rows[None, :]
    ss = stage[:, None]
    X[_COL["stage"]] = it.stage_fit[ii, ss]
    stage_port = it.stage_port[ii, ss]
    X[_COL["stage_portfolio"]] = stage_port
    X[_COL["stage_count"]] = np.log1p(stage_port * it.n_with_stage[i_rows][None, :])
    X[_COL["stage_round"]] = it.stage_round[ii, ss]

    # Amount sought against the ticket range (funds only).
    if not public:
        a = pt.amount[p_rows][:, None]
        tmin, tmax = it.ticket_min[i_rows][None, :], it.ticket_max[i_rows][None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            below = (tmin > 0) & (a < tmin)
            above = ~below & (tmax > 0) & (a > tmax)
            fit = np.where(
                below,
                -np.minimum(1.0, np.log2(tmin / a) / 3.0),
                np.where(above, -np.minimum(1.0, np.log2(a / tmax) / 3.0), 1.0),
            )
        ok = (a > 0) & ~(np.isnan(tmin) & np.isnan(tmax)) & (side == 0)[None, :]
        X[_COL["amount"]] = np.where(ok, fit, 0.0)

    # Region: same city 1.5, same province 1; the base-side copy; the portfolio's province share.
    pc, pp = pt.city[p_rows][:, None], pt.province[p_rows][:, None]
    ic, ip = it.city[i_rows][None, :], it.province[i_rows][None, :]
    region = np.where((pc > 0) & (pc == ic), 1.5, np.where((pp > 0) & (pp == ip), 1.0, 0.0))
    X[_COL["region"]] = region
    X[_COL["region_base"]] = np.where((side == 1)[None, :], region, 0.0)
    prov = pt.province[p_rows]
    prov_in = np.where(prov < it.prov_share.shape[1], prov, 0)
    X[_COL["region_portfolio"]] = np.minimum(1.0, it.prov_share[i_rows][:, prov_in].T)

    # Needs: services offered (bases and platforms) and which side the project needs.
    if not public:
        wanted = pt.wanted[p_rows]
        total = wanted.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            served = np.where(
                total > 0, (wanted @ it.offered[i_rows].T) / np.where(total > 0, total, 1.0), 0.0
            )
        X[_COL["services"]] = np.where((side != 0)[None, :], served, 0.0)
        need_hit = pt.need_side[p_rows][:, side]  # (P, I)
        X[_COL["need_side"]] = np.where(pt.has_needs[p_rows][:, None], np.where(need_hit, 1.0, -1.0), 0.0)

    # Institution-only and project-only columns.
    per = it.per_inst[i_rows]
    for j, name in enumerate(("activity", "recency", "recency_fast", "recency_slow", "idle")):
        X[_COL[name]] = per[None, :, j]
    X[_COL["award"]] = pt.award[p_rows][:, None]
    grp = pt.group[p_rows]
    grp_in = np.where(grp < it.group_share.shape[1], grp, 0)
    X[_COL["group"]] = np.minimum(1.0, it.group_share[i_rows][:, grp_in].T)
    return X.reshape(len(FEATURES), n_p * n_i).T


def linear_form(ranker: Ranker) -> tuple[NDArray[np.float64], float] | None:
    """Return (w, b) with ``ranker.score(X) == X @ w + b`` for a linear ranker, else None.

    The hand-set ranker and the logistic/pairwise learned rankers are linear in the features
    (standardisation and the prior included); probing them with the unit vectors gives the exact
    form. Boosted trees are not linear: None.
    """
    if not isinstance(ranker, HandWeightedRanker) and getattr(ranker, "model", None) not in (
        "logistic",
        "pairwise",
    ):
        return None
    n = len(FEATURES)
    probe = np.vstack([np.zeros(n), np.eye(n)])
    raw = np.asarray(ranker.score(probe), dtype=np.float64)
    return raw[1:] - raw[0], float(raw[0])


def linear_scores(X: NDArray[np.floating], form: tuple[NDArray[np.float64], float]) -> NDArray[np.float64]:
    """Return ``X @ w + b`` of a :func:`block_features` matrix: one pass over its feature-major buffer."""
    w, b = form
    major = X.T  # the contiguous (features, pairs) buffer block_features fills
    return np.asarray(w.astype(major.dtype) @ major, dtype=np.float64) + b
