"""The shared normalisations of the ranking core, in one place.

Every similarity is rescaled per query over that query's candidates (e5 cosines live in a narrow
band, BM25 has no fixed range). The one-query path and the bulk path both call these, so the same pair
gets the same numbers on either.

The score a person sees, the 匹配度, is :class:`ScoreScale`: the percentile of a pair's raw ranker
score among a reference set of raw scores of the same kind of institution (fund, base or platform),
so it says "better than this share of pairs" on every page, does not depend on the rest of the list,
and reaches 100 for no pair. :func:`rescale_0_100` (lowest to highest candidate of one query) remains
for bulk tables that compare within a query.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ScoreScale",
    "bm25_scaled",
    "rescale_0_100",
    "row_moments",
    "zscore",
    "zscore_known",
    "zscore_rows",
    "zscore_with",
]

_EPS_STD = 1e-9
_EPS_SPAN = 1e-12


def zscore(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Standardise values (mean 0, sd 1); constant values become 0."""
    if values.size == 0:
        return values
    std = float(values.std())
    if std < _EPS_STD:
        return np.zeros_like(values)
    return (values - values.mean()) / std


def zscore_known(raw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Z-score the known values of a 1-d array; unknown (NaN) values become the mean (0)."""
    out = np.zeros_like(raw, dtype=np.float64)
    ok = ~np.isnan(raw)
    if ok.any():
        out[ok] = zscore(raw[ok])
    return out


def zscore_rows(raw: NDArray[np.float64], mask: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
    """Apply :func:`zscore_known` to every row of a 2-d array, over the columns in mask only.

    Columns outside mask (a row's excluded candidates) take no part in the mean and deviation and
    come out as 0, like NaN values.
    """
    raw = np.asarray(raw, dtype=np.float64)
    ok = ~np.isnan(raw)
    if mask is not None:
        ok &= mask
    mean, std = row_moments(raw, ok)
    return zscore_with(raw, ok, mean, std)


def row_moments(
    raw: NDArray[np.float64], ok: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return the (n, 1) mean and standard deviation of each row of raw over its ok columns."""
    n = ok.sum(axis=1, keepdims=True)
    vals = np.where(ok, raw, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = vals.sum(axis=1, keepdims=True) / np.maximum(n, 1)
        dev = np.where(ok, raw - mean, 0.0)
        std = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / np.maximum(n, 1))
    return mean, std


def zscore_with(
    raw: NDArray[np.float64],
    ok: NDArray[np.bool_],
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return (raw - mean) / std where ok and the deviation is not zero, else 0 (see :func:`zscore_rows`).

    mean and std broadcast against raw: a row's moments (:func:`row_moments`) apply to any of its
    columns, so a pair's z-score needs its own value and its row's two numbers only.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.where(ok, raw - mean, 0.0)
        return np.where(ok & (std >= _EPS_STD), dev / np.where(std >= _EPS_STD, std, 1.0), 0.0)


def bm25_scaled(raw: NDArray[np.float64], axis: int | None = None) -> NDArray[np.float64]:
    """Divide BM25 scores by the query's best candidate score (0..1); all-zero stays zero."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size == 0:
        return raw
    if axis is None:
        top = float(raw.max())
        return raw / top if top > 0 else raw
    top = raw.max(axis=axis, keepdims=True)
    return np.where(top > 0, raw / np.where(top > 0, top, 1.0), raw)


def rescale_0_100(
    raw: NDArray[np.float64], lo: float | NDArray[np.float64], hi: float | NDArray[np.float64]
) -> NDArray[np.float64]:
    """Map raw ranker scores onto 0-100 by the query's lowest and highest candidate (all 100 when flat)."""
    raw = np.asarray(raw, dtype=np.float64)
    span = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
    flat = span <= _EPS_SPAN
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * (raw - lo) / np.where(flat, 1.0, span)
    return np.where(flat, 100.0, out)


class ScoreScale:
    """Raw ranker scores -> 匹配度 (0-100): the percentile among a reference set of raw scores.

    Inside the reference range the percentile is interpolated linearly between the mid-ranks of the
    sorted distinct reference values; beyond it, it approaches 0 or 100 exponentially (over the
    reference's spread). The map is continuous and strictly increasing, so ranking by the 匹配度 and by
    the raw score is the same, and no raw score reaches 100 (nor 0).

    Args:
        reference: raw scores of sampled pairs (NaN and infinities are ignored).
    """

    def __init__(self, reference: NDArray[np.float64] | list[float]) -> None:
        ref = np.asarray(reference, dtype=np.float64)
        ref = np.sort(ref[np.isfinite(ref)])
        self.size = int(ref.size)
        if ref.size == 0:
            self._x = np.zeros(1)
            self._q = np.full(1, 50.0)
            self.spread = 1.0
            return
        values, first, counts = np.unique(ref, return_index=True, return_counts=True)
        # Mid-rank percentile of each distinct value: (values below + half of its ties) / n.
        self._x = values
        self._q = 100.0 * (first + 0.5 * counts) / ref.size
        spread = float(np.subtract(*np.percentile(ref, [90, 10])))
        self.spread = spread if spread > _EPS_SPAN else max(float(abs(ref).mean()), 1.0)

    def degree(self, raw: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Return the 匹配度 of raw scores (same shape; NaN stays NaN)."""
        raw = np.asarray(raw, dtype=np.float64)
        x, q, s = self._x, self._q, self.spread
        inside = np.interp(raw, x, q)
        with np.errstate(over="ignore", invalid="ignore"):
            low = q[0] * np.exp(np.minimum(0.0, raw - x[0]) / s)
            high = 100.0 - (100.0 - q[-1]) * np.exp(-np.maximum(0.0, raw - x[-1]) / s)
        out = np.where(raw < x[0], low, np.where(raw > x[-1], high, inside))
        if x.size == 1:
            out = np.where(raw == x[0], q[0], out)
        return np.where(np.isnan(raw), np.nan, out)

    def shown_many(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return :meth:`shown` of each raw score (one interpolation for all)."""
        values = self.degree(np.asarray(raw, dtype=np.float64).reshape(-1)).tolist()
        return np.array([_one_decimal(v) for v in values])

    def shown(self, raw: float) -> float:
        """Return the 匹配度 as shown (one decimal; at most 99.9, at least 0.1)."""
        return _one_decimal(float(self.degree(raw)))


def _one_decimal(value: float) -> float:
    """Return a 匹配度 to one decimal within 0.1..99.9 (0 for NaN).

    The value is first snapped to six decimals: a pair's raw score computed in another batch differs
    in its last bits, and a 匹配度 at a reference point can sit exactly on a rounding boundary (x.x5).
    """
    if value != value:
        return 0.0
    return min(99.9, max(0.1, round(round(value, 6), 1)))
