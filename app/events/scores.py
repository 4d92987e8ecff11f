"""Match scores of project-institution pairs from the product's own ranking (for events and plans)."""

from __future__ import annotations

from collections.abc import Sequence

from matching.service import MatchingService
from matching.types import Filters, Side


def pair_scores(
    service: MatchingService, project_ids: Sequence[int], institution_ids: Sequence[int]
) -> dict[tuple[int, int], float]:
    """Return the 0-100 match score of every (project, institution) pair the ranking scores.

    For each project and each side (fund, base, platform) the ranked list is asked for exactly the
    given institutions of that side (``allowed_ids``) with k = their number, so the scores are those a
    ranked list restricted to the event shows. A pair the ranking leaves out (the institution already
    backs the project, or it fell outside the candidate pool of a very large side) is absent; the
    caller scores it 0.
    """
    by_side: dict[Side, list[int]] = {}
    for i in institution_ids:
        try:
            side = service.institution(i).side
        except KeyError:
            continue
        by_side.setdefault(side, []).append(i)
    known = set(service.project_ids())
    out: dict[tuple[int, int], float] = {}
    for p in project_ids:
        if p not in known:
            continue
        for side, ids in by_side.items():
            matches = service.match_project(
                p,
                side,
                k=len(ids),
                filters=Filters(allowed_ids=frozenset(ids)),
                explain=False,
            )
            for m in matches:
                out[(p, m.id)] = float(m.score)
    return out
