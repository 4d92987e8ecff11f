"""The event's tables bound the plan: meetings in all at most slots x tables (each slot seats `tables`)."""

from __future__ import annotations

import numpy as np
import pytest

from matching.assignment import (
    AssignmentProblem,
    brute_force,
    build_timetable,
    check_assignment,
    check_timetable,
    solve_assignment,
)


@pytest.mark.parametrize("seed", range(10))
def test_total_cap_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n_p, n_i = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    allowed = rng.uniform(size=(n_p, n_i)) > 0.25
    while allowed.sum() > 16:
        allowed[rng.integers(n_p), rng.integers(n_i)] = False
    problem = AssignmentProblem(
        scores=np.round(rng.uniform(1, 100, size=(n_p, n_i)), 1),
        allowed=allowed,
        capacity=2,
        project_min=int(seed % 2),
        project_max=2,
        slots=2,
        max_total=int(rng.integers(1, 5)),
    )
    best = brute_force(problem)
    result = solve_assignment(problem)
    if best is None:
        assert result.status == "infeasible" and result.blocking
    else:
        assert result.status == "optimal", [b.as_dict() for b in result.blocking]
        assert check_assignment(problem, result.pairs) == []
        assert len(result.pairs) <= problem.max_total
        assert result.objective == pytest.approx(best[0])


def test_the_cap_binds_even_where_the_pricing_path_would_run_and_the_timetable_packs_it():
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(1, 100, size=(60, 30)), 1)
    free = AssignmentProblem(scores=scores, capacity=4, project_min=1, project_max=3, slots=4)
    capped = AssignmentProblem(
        scores=scores, capacity=4, project_min=1, project_max=3, slots=4, max_total=4 * 20
    )
    unlimited = solve_assignment(free, top_n=5)
    result = solve_assignment(capped, top_n=5)
    assert len(unlimited.pairs) > 80
    assert result.status == "optimal" and len(result.pairs) == 80 and result.proven_optimal
    assert check_assignment(capped, result.pairs) == []
    meetings = [(("p", p), ("i", i)) for p, i in result.pairs]
    tt = build_timetable(meetings, 4, 20)
    assert tt.status == "ok" and check_timetable(meetings, tt.slots, tt.tables, 4, 20) == []
    assert max(np.bincount(tt.slots)) <= 20


def test_a_floor_beyond_the_tables_is_reported_with_what_to_relax():
    problem = AssignmentProblem(
        scores=np.ones((10, 5)), capacity=4, project_min=2, project_max=2, slots=4, max_total=3 * 5
    )
    result = solve_assignment(problem)
    assert result.status == "infeasible" and result.pairs == []
    (blocker,) = [b for b in result.blocking if b.constraint == "tables"]
    assert (blocker.needed, blocker.available) == (20, 15)
    assert "时段数 × 桌数最多容纳 15 场" in blocker.message_zh and "增加桌数或时段" in blocker.message_zh
    # a cap that cannot bind changes nothing
    loose = AssignmentProblem(
        scores=np.ones((10, 5)), capacity=4, project_min=2, project_max=2, slots=4, max_total=1000
    )
    assert loose.total_cap() is None and solve_assignment(loose).status == "optimal"
