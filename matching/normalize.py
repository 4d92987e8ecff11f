"""The shared normalisations of the ranking core, in one place.

Every similarity is rescaled per query over that query's candidates (e5 cosines live in a narrow
band, BM25 has no fixed range) and every displayed score is a 0-100 rescale of the ranker's raw
output over the candidates. The one-query path and the bulk path both call these, so the same pair
gets the same numbers on either.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["bm25_scaled", "rescale_0_100", "zscore", "zscore_known", "zscore_rows"]

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
    n = ok.sum(axis=1, keepdims=True)
    vals = np.where(ok, raw, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = vals.sum(axis=1, keepdims=True) / np.maximum(n, 1)
        dev = np.where(ok, raw - mean, 0.0)
        std = np.sqrt((dev * dev).sum(axis=1, keepdims=True) / np.maximum(n, 1))
        out = np.where(ok & (std >= _EPS_STD), dev / np.where(std >= _EPS_STD, std, 1.0), 0.0)
    return out


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
