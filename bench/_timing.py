"""Timing helpers shared by the benchmark scripts: a wall-clock timer and latency percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["Timer", "percentiles", "time_calls", "timer"]


@dataclass
class Timer:
    """Elapsed wall-clock time of a ``with timer()`` block, set when the block ends."""

    seconds: float = 0.0

    @property
    def ms(self) -> float:
        """Return the elapsed time in milliseconds."""
        return self.seconds * 1000.0


@contextmanager
def timer() -> Iterator[Timer]:
    """Measure the wall-clock time of a with-block: ``with timer() as t: ...; t.seconds``."""
    result = Timer()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start


def time_calls(
    fn: Callable[[int], object],
    repeat: int,
    warmup: int = 3,
    budget_seconds: float | None = None,
) -> list[float]:
    """Call fn(i) for i in range(repeat) after warmup untimed calls; return each call's time in ms.

    With budget_seconds, stop early once the timed calls have used up the budget (at least one
    call is always timed), so a slow case cannot stretch a benchmark.
    """
    for i in range(warmup):
        fn(i)
    times: list[float] = []
    spent = 0.0
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        elapsed = time.perf_counter() - start
        times.append(elapsed * 1000.0)
        spent += elapsed
        if budget_seconds is not None and spent > budget_seconds:
            break
    return times


def percentiles(ms_list: Sequence[float], qs: Sequence[float] = (50, 99)) -> dict[str, float]:
    """Return {"p50": ..., "p99": ..., "mean": ..., "n": ...} of latencies in ms (NaN when empty)."""
    if len(ms_list) == 0:
        return {**{f"p{q:g}": float("nan") for q in qs}, "mean": float("nan"), "n": 0.0}
    values = np.asarray(ms_list, dtype=np.float64)
    out = {f"p{q:g}": float(np.percentile(values, q)) for q in qs}
    out["mean"] = float(values.mean())
    out["n"] = float(len(values))
    return out
