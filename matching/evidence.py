"""The evidence stage: what portfolios say, kept as arrays the ranking reads in one pass.

An institution's :class:`~matching.features.Evidence` (inferred preferences and activity), the
matrix of every portfolio project's vector grouped by institution (for the nearest- and
mean-portfolio similarities), and the co-investment graph read from the portfolio links.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from embeddings.stores import VectorStore
from matching.features import Evidence, build_evidence
from matching.types import InstitutionProfile, ProjectProfile

__all__ = [
    "PortfolioMatrix",
    "add_coinvest_counts",
    "all_evidence",
    "coinvest_counts",
    "coinvest_partners",
    "evidence_without",
    "partner_counts",
    "portfolio_matrix",
    "portfolio_sims",
]


@dataclass
class PortfolioMatrix:
    """All portfolio project vectors in one matrix, grouped by institution (rows contiguous)."""

    matrix: NDArray[np.float32]  # (n_rows, dim)
    project_ids: NDArray[np.int64]  # (n_rows,) the portfolio project of each row
    segments: dict[int, tuple[int, int]]  # institution id -> [start, end) rows


def all_evidence(
    institutions: Mapping[int, InstitutionProfile],
    projects: Mapping[int, ProjectProfile],
    as_of: str | None,
    half_life_days: float,
) -> tuple[dict[int, Evidence], str | None]:
    """Return every institution's evidence and the reference date used (default: newest portfolio date)."""
    if as_of is None:
        dates = [it.date for inst in institutions.values() for it in inst.portfolio if it.date]
        as_of = max(dates) if dates else None
    evidence = {i: build_evidence(inst, projects, as_of, half_life_days) for i, inst in institutions.items()}
    return evidence, as_of


def evidence_without(
    inst: InstitutionProfile,
    leave_out: int,
    projects: Mapping[int, ProjectProfile],
    as_of: str | None,
    half_life_days: float,
) -> Evidence:
    """Return the institution's evidence with one project taken out of its portfolio."""
    trimmed = replace(inst, portfolio=tuple(i for i in inst.portfolio if i.project_id != leave_out))
    return build_evidence(trimmed, projects, as_of, half_life_days)


def portfolio_matrix(
    portfolio: Mapping[int, tuple[int, ...]], project_index: VectorStore, dim: int
) -> PortfolioMatrix:
    """Return the portfolio vectors of every institution, grouped (projects without a vector skipped)."""
    rows: list[int] = []
    segments: dict[int, tuple[int, int]] = {}
    for inst_id in sorted(portfolio):
        pids = [p for p in portfolio[inst_id] if p in project_index]
        segments[inst_id] = (len(rows), len(rows) + len(pids))
        rows.extend(pids)
    ids = np.asarray(rows, dtype=np.int64)
    matrix = project_index.vectors_for(ids) if rows else np.empty((0, dim), dtype=np.float32)
    return PortfolioMatrix(matrix, ids, segments)


def portfolio_sims(
    pm: PortfolioMatrix, q: NDArray[np.float32] | None, inst_ids: Sequence[int], leave_out: int | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Return (max, mean, argmax project id) cosine of q to each institution's portfolio.

    NaN / -1 where an institution has no portfolio vectors; leave_out drops one project
    from every portfolio (its own link must not explain itself).
    """
    n = len(inst_ids)
    mx, mean = np.full(n, np.nan), np.full(n, np.nan)
    arg = np.full(n, -1, dtype=np.int64)
    if q is None or n == 0:
        return mx, mean, arg
    if pm.matrix.shape[0] == 0:
        return mx, mean, arg
    sims = (pm.matrix @ q).astype(np.float64)
    valid = np.ones(len(sims), dtype=bool)
    if leave_out is not None:
        valid = pm.project_ids != leave_out
    bounds = np.array([pm.segments.get(i, (0, 0)) for i in inst_ids], dtype=np.int64)
    # Gather every candidate's rows into one flat array and reduce per segment (no Python loop).
    lengths = bounds[:, 1] - bounds[:, 0]
    has = lengths > 0
    if not has.any():
        return mx, mean, arg
    rows = np.concatenate([np.arange(a, b) for a, b in bounds[has]])
    seg_sims = np.where(valid[rows], sims[rows], -np.inf)
    starts = np.concatenate(([0], np.cumsum(lengths[has])[:-1]))
    seg_max = np.maximum.reduceat(seg_sims, starts)
    counts = np.add.reduceat(valid[rows].astype(np.float64), starts)
    totals = np.add.reduceat(np.where(valid[rows], sims[rows], 0.0), starts)
    # Position of each segment's maximum: the first row equal to it within the segment.
    owner = np.repeat(np.arange(len(starts)), lengths[has])
    is_max = (seg_sims == seg_max[owner]) & np.isfinite(seg_sims)
    first = np.full(len(starts), -1, dtype=np.int64)
    hit_rows = np.flatnonzero(is_max)
    first[owner[hit_rows][::-1]] = rows[hit_rows][::-1]
    ok = counts > 0
    idx = np.flatnonzero(has)
    mx[idx[ok]] = seg_max[ok]
    mean[idx[ok]] = totals[ok] / counts[ok]
    arg[idx[ok]] = pm.project_ids[first[ok]]
    return mx, mean, arg


def coinvest_counts(
    project_id: int, backers: Mapping[int, set[int]], portfolio: Mapping[int, tuple[int, ...]]
) -> Counter[int]:
    """Return, per institution, how many projects it co-backed with the project's current backers."""
    counts: Counter[int] = Counter()
    for backer in backers.get(project_id, ()):
        counts.update(partner_counts(backer, backers, portfolio, skip=project_id))
    return counts


def add_coinvest_counts(
    row: NDArray[np.float64],
    project_id: int,
    backers: Mapping[int, set[int]],
    partners: Callable[[int], Mapping[int, int]],
    column: Callable[[int], int | None],
) -> None:
    """Add :func:`coinvest_counts` into row at column(institution) (None: not in the row).

    partners: each backer's :func:`partner_counts` (e.g. kept per state); the project itself is
    taken out of them (it added one to each of its other backers).
    """
    mine = backers.get(project_id, ())
    for backer in mine:
        for inst_id, count in partners(backer).items():
            j = column(inst_id)
            if j is not None:
                row[j] += count
    if len(mine) > 1:
        for backer in mine:
            j = column(backer)
            if j is not None:
                row[j] -= len(mine) - 1


def coinvest_partners(
    project_id: int,
    institution_id: int,
    backers: Mapping[int, set[int]],
    portfolio: Mapping[int, tuple[int, ...]],
    name_of: Callable[[int], str],
) -> tuple[str, ...]:
    """Return names of the project's backers that co-backed something with the institution."""
    mine = set(portfolio.get(institution_id, ())) - {project_id}
    names = []
    for backer in backers.get(project_id, ()):
        if backer != institution_id and mine & set(portfolio.get(backer, ())):
            names.append(name_of(backer))
    return tuple(sorted(names))


def partner_counts(
    institution_id: int,
    backers: Mapping[int, set[int]],
    portfolio: Mapping[int, tuple[int, ...]],
    skip: int | None = None,
) -> Counter[int]:
    """Return, per other institution, how many projects it co-backed with this one (skip: leave one out)."""
    counts: Counter[int] = Counter()
    for pid in portfolio.get(institution_id, ()):
        if pid == skip:
            continue
        for other in backers.get(pid, ()):
            if other != institution_id:
                counts[other] += 1
    return counts
