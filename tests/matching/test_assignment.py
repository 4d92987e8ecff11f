"""The global assignment solver, its infeasibility report, the baselines and the timetable."""

from __future__ import annotations

import numpy as np
import pytest

from matching.assignment import (
    AssignmentProblem,
    GroupRule,
    assign_reviewers,
    brute_force,
    build_timetable,
    check_assignment,
    check_timetable,
    greedy_top_k,
    minmax_two_stage,
    solve_assignment,
)


def _random_problem(rng: np.random.Generator, n_p: int, n_i: int, **kw: object) -> AssignmentProblem:
    scores = np.round(rng.uniform(0, 100, size=(n_p, n_i)), 1)
    allowed = rng.uniform(size=(n_p, n_i)) > 0.2
    return AssignmentProblem(scores=scores, allowed=allowed, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(12))
def test_optimal_against_brute_force_on_tiny_instances(seed):
    rng = np.random.default_rng(seed)
    n_p, n_i = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    allowed = rng.uniform(size=(n_p, n_i)) > 0.25
    while allowed.sum() > 16:
        allowed[rng.integers(n_p), rng.integers(n_i)] = False
    req = [tuple(map(int, np.argwhere(allowed)[0]))] if seed % 3 == 0 and allowed.any() else []
    groups = [GroupRule(0, (0, 1), 1, "银行")] if seed % 4 == 1 else []
    problem = AssignmentProblem(
        scores=np.round(rng.uniform(-5, 100, size=(n_p, n_i)), 1),
        allowed=allowed,
        required=req,
        capacity=rng.integers(1, 3, size=n_i),
        project_min=int(seed % 2),
        project_max=2,
        slots=2 if seed % 5 else 1,
        groups=groups,
    )
    best = brute_force(problem)
    result = solve_assignment(problem)
    if best is None:
        assert result.status == "infeasible" and result.blocking
        assert result.pairs == []
    else:
        assert result.status == "optimal", [b.as_dict() for b in result.blocking]
        assert check_assignment(problem, result.pairs) == []
        assert result.objective == pytest.approx(best[0])


def test_floor_capacity_forbidden_required_and_slots_hold():
    rng = np.random.default_rng(7)
    problem = _random_problem(
        rng,
        20,
        12,
        capacity=rng.integers(3, 12, size=12),
        project_min=2,
        project_max=4,
        slots=5,
        required=[(0, 3), (1, 3)],
    )
    problem.allowed[0, 3] = False  # a required pair is allowed even if the mask says otherwise
    result = solve_assignment(problem)
    assert result.status == "optimal" and result.proven_optimal
    assert check_assignment(problem, result.pairs) == []
    per_project = np.bincount([p for p, _ in result.pairs], minlength=20)
    per_inst = np.bincount([i for _, i in result.pairs], minlength=12)
    assert per_project.min() >= 2 and per_project.max() <= 4
    assert (per_inst <= np.minimum(problem.capacity, 5)).all()
    assert {(0, 3), (1, 3)} <= set(result.pairs)
    forbidden = {(int(p), int(i)) for p, i in np.argwhere(~problem.allowed_mask())}
    assert not forbidden & set(result.pairs)


def test_top_n_restriction_with_pricing_reaches_the_full_optimum():
    rng = np.random.default_rng(3)
    # popular institutions: everybody's top-5 are the same few, so a top-5 start must add columns
    base = rng.uniform(0, 30, size=(120, 40))
    base[:, :5] += 60
    problem = AssignmentProblem(scores=base, capacity=6, project_min=1, project_max=3, slots=4)
    full = solve_assignment(problem, top_n=0)
    narrow = solve_assignment(problem, top_n=5)
    assert narrow.restricted_top_n is not None or narrow.n_variables == full.n_variables
    assert narrow.status == "optimal" and narrow.proven_optimal
    assert narrow.objective == pytest.approx(full.objective)
    assert narrow.n_variables < full.n_variables
    assert check_assignment(problem, narrow.pairs) == []


def test_total_capacity_blocker_says_what_to_relax():
    problem = AssignmentProblem(scores=np.ones((10, 3)), capacity=2, project_min=1, project_max=2, slots=3)
    result = solve_assignment(problem)
    assert result.status == "infeasible" and result.pairs == []
    kinds = {b.constraint for b in result.blocking}
    assert "total_capacity" in kinds
    b = next(b for b in result.blocking if b.constraint == "total_capacity")
    assert (b.needed, b.available) == (10, 6)
    assert "提高机构容量" in b.message_zh and "raise capacities by 4" in b.message_en


def test_project_without_enough_allowed_partners_is_named():
    allowed = np.ones((3, 4), dtype=bool)
    allowed[2, :3] = False
    problem = AssignmentProblem(
        scores=np.ones((3, 4)), allowed=allowed, capacity=3, project_min=2, project_max=3
    )
    result = solve_assignment(problem)
    blockers = [b.as_dict(project_ids=[101, 102, 103]) for b in result.blocking]
    assert blockers[0]["constraint"] == "project_candidates"
    assert blockers[0]["subject"] == {"project": 103}
    assert "项目 103 只有 1 家" in blockers[0]["message_zh"]


def test_required_pairs_beyond_capacity_and_slots():
    problem = AssignmentProblem(
        scores=np.ones((3, 2)), required=[(0, 0), (1, 0), (2, 0)], capacity=5, project_max=2, slots=2
    )
    result = solve_assignment(problem)
    b = result.blocking[0].as_dict(institution_ids=["甲", "乙"])
    assert b["constraint"] == "required_capacity" and b["subject"] == {"institution": "甲"}
    assert (b["needed"], b["available"]) == (3, 2)
    floor_over_slots = solve_assignment(
        AssignmentProblem(scores=np.ones((2, 5)), project_min=4, project_max=5, slots=3)
    )
    assert floor_over_slots.blocking[0].constraint == "slots"


def test_hidden_infeasibility_is_found_by_the_slack_model():
    # projects 0 and 1 need 2 meetings each but may only meet institutions 0 and 1 (capacity 1 each);
    # every exact count check passes (2 allowed each; total floor 4 <= usable capacity 6)
    allowed = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]], dtype=bool)
    problem = AssignmentProblem(
        scores=np.ones((4, 3)), allowed=allowed, capacity=[1, 1, 10], project_min=[2, 2, 0, 0], project_max=2
    )
    result = solve_assignment(problem)
    assert result.status == "infeasible" and result.pairs == []
    floors = [b for b in result.blocking if b.constraint == "project_floor"]
    assert {b.subject["project"] for b in floors} <= {0, 1}
    assert sum(b.needed - b.available for b in floors) == 2
    assert all(b.subject["full_institutions"] == [0, 1] for b in floors)
    assert "可会谈的机构已满" in floors[0].message_zh


def test_group_rule_is_respected_and_reported():
    scores = np.array([[90.0, 80.0, 10.0]])
    ok = solve_assignment(
        AssignmentProblem(
            scores=scores, capacity=1, project_min=1, project_max=2, groups=[GroupRule(0, (2,), 1, "银行")]
        )
    )
    assert ok.status == "optimal" and (0, 2) in ok.pairs and len(ok.pairs) == 2
    allowed = np.array([[True, True, False]])
    bad = solve_assignment(
        AssignmentProblem(
            scores=scores, allowed=allowed, capacity=1, project_max=2, groups=[GroupRule(0, (2,), 1, "银行")]
        )
    )
    assert bad.status == "infeasible" and bad.blocking[0].constraint == "group_rule"
    assert "银行" in bad.blocking[0].message_zh


def test_baselines_are_worse_or_unfair_on_popular_institutions():
    rng = np.random.default_rng(11)
    scores = rng.uniform(0, 40, size=(50, 10))
    scores[:, :2] += 50  # two popular institutions
    problem = AssignmentProblem(scores=scores, capacity=12, project_min=1, project_max=3)
    opt = solve_assignment(problem)
    greedy = greedy_top_k(problem)
    uncapped = greedy_top_k(problem, respect_capacity=False)
    minmax = minmax_two_stage(problem)
    value = lambda pairs: sum(scores[p, i] for p, i in pairs)  # noqa: E731
    assert check_assignment(problem, minmax) == []  # MinMax keeps the floor
    assert value(minmax) <= opt.objective + 1e-6
    assert value(greedy) <= opt.objective + 1e-6
    assert check_assignment(problem, greedy)  # greedy leaves late projects below the floor
    assert np.bincount([i for _, i in uncapped]).max() == 50  # every list names the popular ones


def test_judges_get_exact_coverage_without_conflicts():
    rng = np.random.default_rng(5)
    expertise = rng.uniform(0, 1, size=(20, 12))
    conflicts = rng.uniform(size=(20, 12)) > 0.8
    result = assign_reviewers(expertise, conflicts, load=9, coverage=5)
    assert result.status == "optimal"
    per_project = np.bincount([p for p, _ in result.pairs], minlength=20)
    per_judge = np.bincount([j for _, j in result.pairs], minlength=12)
    assert (per_project == 5).all() and per_judge.max() <= 9
    assert not any(conflicts[p, j] for p, j in result.pairs)
    short = assign_reviewers(expertise, conflicts, load=4, coverage=5)
    assert short.status == "infeasible" and short.blocking[0].constraint == "total_capacity"


def test_timetable_has_no_double_booking_and_respects_unavailable_slots():
    rng = np.random.default_rng(2)
    problem = _random_problem(rng, 40, 10, capacity=6, project_min=2, project_max=4, slots=6)
    plan = solve_assignment(problem)
    meetings = [(("p", p), ("i", i)) for p, i in plan.pairs]
    unavailable = {("i", 0): {0, 1}, ("p", 3): {5}}
    tt = build_timetable(meetings, 6, unavailable=unavailable)
    if tt.status != "ok":  # institution 0 may hold 6 meetings but only 4 free slots
        assert tt.blocking[0].constraint == "party_slots"
        unavailable = {("i", 0): {0}, ("p", 3): {5}}
        tt = build_timetable(meetings, 6, unavailable={("p", 3): {5}})
    assert tt.status == "ok"
    assert check_timetable(meetings, tt.slots, tt.tables, 6, None, {("p", 3): {5}}) == []


def test_timetable_with_tables_people_and_the_checker_catching_clashes():
    # a person attends for two institutions: their meetings must not share a slot
    meetings = [("p1", "i1", "张三"), ("p2", "i2", "张三"), ("p1", "i2"), ("p2", "i1")]
    tt = build_timetable(meetings, 3, n_tables=2, unavailable={"i1": {0}})
    assert tt.status == "ok"
    assert check_timetable(meetings, tt.slots, tt.tables, 3, 2, {"i1": {0}}) == []
    assert tt.slots[0] != tt.slots[1]
    clash = check_timetable(meetings, [0, 0, 1, 2], [0, 1, 0, 0], 3, 2, {"i1": {0}})
    assert any("double-booked" in e for e in clash) and any("unavailable" in e for e in clash)
    full = build_timetable(meetings, 2, n_tables=1)
    assert full.status == "infeasible" and full.blocking[0].constraint == "tables"


def test_kempe_repair_reaches_konig_bound():
    # a complete bipartite K_{6,6} needs exactly 6 slots; first-fit alone often paints itself in
    rng = np.random.default_rng(0)
    pairs = [(p, i) for p in range(6) for i in range(6)]
    rng.shuffle(pairs)
    meetings = [(("p", p), ("i", i)) for p, i in pairs]
    tt = build_timetable(meetings, 6)
    assert tt.status == "ok" and tt.method == "greedy"
    assert check_timetable(meetings, tt.slots, tt.tables, 6) == []


def test_timetable_falls_back_to_milp_when_unavailability_blocks_greedy():
    rng = np.random.default_rng(4)
    pairs = [(p, i) for p in range(5) for i in range(5) if rng.uniform() < 0.8]
    meetings = [(("p", p), ("i", i)) for p, i in pairs]
    unavailable = {("p", 0): {5}, ("i", 1): {4}, ("i", 2): {0}}
    tt = build_timetable(meetings, 6, unavailable=unavailable)
    assert tt.status == "ok"
    assert check_timetable(meetings, tt.slots, tt.tables, 6, None, unavailable) == []


def test_pricing_stopped_by_its_time_budget_reports_a_certified_bound():
    rng = np.random.default_rng(8)
    base = rng.uniform(0, 30, size=(150, 40))
    base[:, :4] += 60
    problem = AssignmentProblem(scores=base, capacity=10, project_min=1, project_max=3, slots=10)
    full = solve_assignment(problem, top_n=0)
    early = solve_assignment(problem, top_n=8, time_budget=0.0)
    assert early.status == "optimal" and not early.proven_optimal
    assert check_assignment(problem, early.pairs) == []
    assert early.upper_bound is not None
    assert early.objective <= full.objective + 1e-6 <= early.upper_bound + 2e-6
    priced = solve_assignment(problem, top_n=8)
    assert priced.proven_optimal and priced.objective == pytest.approx(full.objective)


def test_blocker_keeps_braces_of_a_group_label():
    """A label typed by a person may hold braces: the message names the subject and keeps them."""
    scores = np.array([[90.0, 80.0, 10.0]])
    allowed = np.array([[True, True, False]])
    label = "银行{合作}{project}"
    bad = solve_assignment(
        AssignmentProblem(
            scores=scores, allowed=allowed, capacity=1, project_max=2, groups=[GroupRule(0, (2,), 1, label)]
        )
    )
    plain = bad.blocking[0].as_dict(project_ids=[501], institution_ids=[7, 8, 9])
    assert "501" in plain["message_zh"] and "银行{合作}" in plain["message_zh"]
    assert "501" in plain["message_en"]
