"""Global assignment of meetings (projects x institutions), judges and mentors, and the timetable.

Pure numpy/scipy: the web app and the ``flask event solve`` command translate ids to row and column
indices and call :func:`solve_assignment`, then :func:`build_timetable`.

The assignment is a 0/1 programme over the allowed pairs only (forbidden pairs are never variables)::

    maximise    sum_e score_e * x_e
    subject to  sum_{e at institution i} x_e <= min(capacity_i, slots)
                project_min_p <= sum_{e at project p} x_e <= min(project_max_p, slots)
                x_e = 1 for required pairs;  sum_{e in group g} x_e >= at_least_g

solved by HiGHS through :func:`scipy.optimize.milp`. Without group rules the constraint matrix is the
incidence matrix of a bipartite graph (totally unimodular), so the linear relaxation already has an
integral optimum. Large instances start from each project's top-N candidates (plus required and
group pairs) and add columns by LP pricing: a left-out pair whose reduced cost shows it could raise
the objective is added and the LP solved again. When no left-out pair prices in, the restricted LP
optimum is the full LP optimum; without group rules that proves the plan optimal over every allowed
pair (``proven_optimal``). With group rules and a restriction the plan is optimal over the candidate
set only, and the result says so. Floors and group rules carry penalised slack in the restricted LP,
so a too-narrow start stays feasible and pricing widens it. When pricing outlasts its time budget the
plan is the best over the candidates found so far and ``upper_bound`` (the LP value plus every
left-out pair's positive gain, a dual bound) caps the full optimum.

An infeasible instance never yields a partial plan: the result has status ``"infeasible"`` and a list
of :class:`Blocker` naming the constraint, the party, what is needed, what is available and what to
relax, in Chinese and English. Exact necessary conditions are checked first (floors above maxima or
slots, too few allowed partners, required pairs beyond a capacity, total capacity below the total
floor, group rules without enough allowed members); when none of them explains it, a relaxed model
with slack on every floor, required pair and group rule is solved and its nonzero slacks are reported
together with the full institutions that cause them.

Baselines for the benchmark: :func:`greedy_top_k` (each project in turn takes its best institutions)
and :func:`minmax_two_stage` (the openreview-matcher MinMax idea, re-implemented: a min-cost flow
first guarantees every project its floor, a second flow then fills the remaining capacity by score).
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

__all__ = [
    "Assignment",
    "AssignmentProblem",
    "Blocker",
    "GroupRule",
    "Timetable",
    "assign_reviewers",
    "brute_force",
    "build_timetable",
    "check_assignment",
    "check_timetable",
    "diagnose",
    "greedy_top_k",
    "minmax_two_stage",
    "solve_assignment",
]

#: Allowed pairs above which the solver starts from each project's top-N candidates (column generation).
AUTO_RESTRICT_PAIRS = 150_000
DEFAULT_TOP_N = 30
_PRICE_PER_ROUND = 5  # columns added per project and pricing round
_TOL = 1e-6


@dataclass(frozen=True)
class GroupRule:
    """Project ``project`` needs at least ``at_least`` meetings with institutions among ``institutions``."""

    project: int
    institutions: tuple[int, ...]
    at_least: int = 1
    label: str = ""


@dataclass(frozen=True)
class AssignmentProblem:
    """An assignment instance in row (project) and column (institution) indices.

    Args:
        scores: (n_projects, n_institutions) match scores; higher is better.
        allowed: boolean mask of pairs that may meet; None allows every pair.
        required: pairs that must meet (always allowed).
        capacity: meetings per institution (scalar or per column).
        project_min: the fairness floor per project (scalar or per row).
        project_max: meetings per project at most (scalar or per row).
        slots: time slots T; a party meets at most T others. None: no slot limit (judges, mentors).
        groups: group rules.
        max_total: meetings in all at most (an event's slots x tables: every slot seats at most `tables`
            meetings, and the timetable packs any plan within this total). None: no limit.
    """

    scores: NDArray[np.floating]
    allowed: NDArray[np.bool_] | None = None
    required: Sequence[tuple[int, int]] = ()
    capacity: int | Sequence[int] | NDArray[np.integer] = 1
    project_min: int | Sequence[int] | NDArray[np.integer] = 0
    project_max: int | Sequence[int] | NDArray[np.integer] = 1
    slots: int | None = None
    groups: Sequence[GroupRule] = ()
    max_total: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.scores.shape[0]), int(self.scores.shape[1]))

    def allowed_mask(self) -> NDArray[np.bool_]:
        """Return the allowed mask with required pairs always allowed."""
        n_p, n_i = self.shape
        mask = np.ones((n_p, n_i), dtype=bool) if self.allowed is None else np.array(self.allowed, dtype=bool)
        for p, i in self.required:
            mask[p, i] = True
        return mask

    def bounds(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Return (institution capacity, project floor, project maximum), each capped by the slots."""
        n_p, n_i = self.shape
        cap = np.broadcast_to(np.asarray(self.capacity, dtype=np.int64), (n_i,)).copy()
        lo = np.broadcast_to(np.asarray(self.project_min, dtype=np.int64), (n_p,)).copy()
        hi = np.broadcast_to(np.asarray(self.project_max, dtype=np.int64), (n_p,)).copy()
        if self.slots is not None:
            cap = np.minimum(cap, self.slots)
            hi = np.minimum(hi, self.slots)
        return cap, lo, hi

    def total_cap(self) -> int | None:
        """Return max_total when it can bind (below what capacities and maxima allow), else None."""
        if self.max_total is None:
            return None
        cap, _lo, hi = self.bounds()
        return self.max_total if self.max_total < min(int(cap.sum()), int(hi.sum())) else None


@dataclass(frozen=True)
class Blocker:
    """One constraint that makes an instance infeasible, and what to relax."""

    constraint: str  # project_bounds | slots | project_candidates | required_project_max |
    # required_capacity | total_capacity | tables | group_rule | project_floor | required_pair |
    # group_shortfall
    subject: dict[str, Any]
    needed: float
    available: float
    message_zh: str
    message_en: str

    def as_dict(
        self, project_ids: Sequence[Any] | None = None, institution_ids: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        """Return the blocker as plain data, row/column indices mapped to ids and named in the messages."""
        subject = dict(self.subject)
        if project_ids is not None and "project" in subject:
            subject["project"] = project_ids[subject["project"]]
        if institution_ids is not None:
            if "institution" in subject:
                subject["institution"] = institution_ids[subject["institution"]]
            if "full_institutions" in subject:
                subject["full_institutions"] = [institution_ids[i] for i in subject["full_institutions"]]
        names = {"project": subject.get("project", ""), "institution": subject.get("institution", "")}
        return {
            "constraint": self.constraint,
            "subject": subject,
            "needed": self.needed,
            "available": self.available,
            "message_zh": _name_subject(self.message_zh, names),
            "message_en": _name_subject(self.message_en, names),
        }


def _name_subject(message: str, names: dict[str, Any]) -> str:
    """Put the subject's ids into a filled-in message: only the {project} and {institution} slots are
    replaced, so braces in user text (a group rule's label, say) are kept as they are."""
    for slot, value in names.items():
        message = message.replace("{" + slot + "}", str(value))
    return message


#: What each blocker says, in Chinese and in English, keyed by its constraint (or by the key _blocker is
#: given). The fields are the blocker's numbers ({needed}, {available}) and the values its check passes;
#: {{project}} and {{institution}} stay in the text for Blocker.as_dict to name the subject.
_SAYS: dict[str, tuple[str, str]] = {
    "solver": (
        "求解器未在时限内得到可行方案，请放宽约束或延长时限。",
        "The solver found no plan within its time limit; relax constraints or allow more time.",
    ),
    "slots": (
        "项目 {{project}} 至少需要 {needed} 场会谈，但活动只有 {available} 个时段："
        "增加时段或把每个项目的最少会谈数降到 {available}。",
        "Project {{project}} needs at least {needed} meetings but the event has only {available} slots: "
        "add slots or lower the per-project minimum to {available}.",
    ),
    "project_bounds": (
        "项目 {{project}} 的最少会谈数 {needed} 大于最多会谈数 {available}：请调整上下限。",
        "Project {{project}}: minimum {needed} exceeds maximum {available}; adjust the bounds.",
    ),
    "project_candidates": (
        "项目 {{project}} 只有 {available} 家可会谈的机构（其余为回避或排除），少于最少会谈数 {needed}："
        "邀请更多机构、撤销部分回避，或降低最少会谈数。",
        "Project {{project}} has only {available} allowed institutions (the rest are forbidden), "
        "fewer than its minimum {needed}: invite more institutions, lift some exclusions or lower "
        "the minimum.",
    ),
    "required_project_max": (
        "项目 {{project}} 有 {needed} 个必须安排的会谈，超过其上限 {available}（最多会谈数或时段数）："
        "减少必须会谈或提高上限。",
        "Project {{project}} has {needed} required meetings, more than its limit {available} "
        "(maximum meetings or slots): drop required pairs or raise the limit.",
    ),
    "required_capacity": (
        "机构 {{institution}} 有 {needed} 个必须安排的会谈，超过其容量 {available}{by_slots}："
        "提高容量或减少必须会谈。",
        "Institution {{institution}} has {needed} required meetings, more than its capacity "
        "{available}: raise its capacity or drop required pairs.",
    ),
    "total_capacity": (
        "全部项目的最少会谈数合计 {needed} 场，而全部机构的可用容量合计只有 {available} 场："
        "提高机构容量（共需增加 {short} 场）、邀请更多机构，或把最少会谈数降到 {per}。",
        "The projects' minimum meetings total {needed} but the institutions' usable capacity totals "
        "{available}: raise capacities by {short}, invite more institutions, or lower the "
        "per-project minimum to {per}.",
    ),
    "tables": (
        "公平底线与必须会谈合计至少需要 {needed} 场会谈，但时段数 × 桌数最多容纳 {available} 场："
        "增加桌数或时段（共需增加 {short} 场的位置），或降低每个项目的最少会谈数。",
        "The floors and required pairs need at least {needed} meetings but slots x tables seat "
        "only {available}: add tables or slots (room for {short} more), or lower the "
        "per-project minimum.",
    ),
    "group_rule": (
        "项目 {{project}} 的分组规则“{label}”要求至少 {needed} 家，"
        "但可会谈且有容量的只有 {usable} 家：邀请更多该类机构或放宽规则。",
        "Project {{project}}'s group rule '{label}' needs {needed} but only "
        "{usable} allowed institutions with capacity are in the group: "
        "invite more of them or relax the rule.",
    ),
    "project_floor": (
        "项目 {{project}} 最多只能安排 {available} 场（需要 {needed} 场）：它可会谈的机构已满"
        "（{full} 家达到容量）。提高这些机构的容量、邀请更多机构，或降低最少会谈数。",
        "Project {{project}} can get only {available} of its {needed} minimum meetings: its allowed "
        "institutions are full ({full} at capacity). Raise their capacity, invite more, "
        "or lower the minimum.",
    ),
    "required_pair": (
        "必须会谈的 项目 {{project}} — 机构 {{institution}} 无法与其他约束同时满足："
        "提高该机构容量或取消该必须会谈。",
        "The required pair project {{project}} - institution {{institution}} cannot be met together "
        "with the other constraints: raise the institution's capacity or drop the requirement.",
    ),
    "group_shortfall": (
        "项目 {{project}} 的分组规则“{label}”无法满足：该组机构容量已被占满，提高其容量或放宽规则。",
        "Project {{project}}'s group rule '{label}' cannot be met: the group's institutions "
        "are full; raise their capacity or relax the rule.",
    ),
    "party_slots": (
        "{party} 有 {needed} 场会谈，但只有 {available} 个可用时段：减少其会谈或开放更多时段。",
        "{party} has {needed} meetings but only {available} available slots: drop meetings or free slots.",
    ),
    "timetable_tables": (
        "共 {needed} 场会谈，但 {slots} 个时段 × {tables} 张桌只容纳 {available} 场：增加桌数或时段。",
        "{needed} meetings but {slots} slots x {tables} tables hold only {available}: add tables or slots.",
    ),
    "timetable": (
        "在各方不可用时段的限制下无法排出无冲突的日程：增加时段、开放不可用时段或减少会谈。",
        "No clash-free timetable exists under the declared unavailable slots: add slots, free "
        "unavailable slots or drop meetings.",
    ),
}


def _blocker(
    constraint: str, subject: dict[str, Any], needed: float, available: float, says: str = "", **values: Any
) -> Blocker:
    """Return the blocker of a constraint with its messages (_SAYS[says or constraint]) filled in."""
    zh, en = _SAYS[says or constraint]
    fields = {"needed": needed, "available": available, **values}
    return Blocker(constraint, subject, needed, available, zh.format(**fields), en.format(**fields))


@dataclass
class Assignment:
    """The solver's answer: pairs (row, column) when feasible, blockers when not."""

    status: str  # "optimal" | "infeasible"
    pairs: list[tuple[int, int]] = field(default_factory=list)
    objective: float = 0.0
    blocking: list[Blocker] = field(default_factory=list)
    proven_optimal: bool = False
    restricted_top_n: int | None = None  # None: every allowed pair was a variable
    upper_bound: float | None = None  # a certified bound on the full optimum when not proven
    n_variables: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- model
def _edges(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    rows, cols = np.nonzero(mask)
    return rows.astype(np.int64), cols.astype(np.int64)


def _incidence(index: NDArray[np.int64], n: int) -> sp.csr_matrix:
    m = index.size
    return sp.csr_matrix((np.ones(m), (index, np.arange(m))), shape=(n, m))


def _group_matrix(
    groups: Sequence[GroupRule], P: NDArray[np.int64], C: NDArray[np.int64], n_i: int
) -> sp.csr_matrix:
    key = {int(p) * n_i + int(i): j for j, (p, i) in enumerate(zip(P, C, strict=True))}
    rows, cols = [], []
    for g, rule in enumerate(groups):
        for i in set(rule.institutions):
            j = key.get(rule.project * n_i + int(i))
            if j is not None:
                rows.append(g)
                cols.append(j)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(groups), P.size))


def _required_mask(problem: AssignmentProblem) -> NDArray[np.bool_]:
    req = np.zeros(problem.shape, dtype=bool)
    for p, i in problem.required:
        req[p, i] = True
    return req


def _solve_milp(
    problem: AssignmentProblem, P: NDArray[np.int64], C: NDArray[np.int64], time_limit: float
) -> tuple[NDArray[np.float64] | None, int]:
    """Solve the 0/1 programme over the given columns; return (x or None, scipy status)."""
    n_p, n_i = problem.shape
    cap, lo, hi = problem.bounds()
    scores = np.asarray(problem.scores, dtype=np.float64)[P, C]
    req = _required_mask(problem)[P, C]
    constraints = [
        LinearConstraint(_incidence(C, n_i), -np.inf, cap),
        LinearConstraint(_incidence(P, n_p), lo, hi),
    ]
    if problem.groups:
        at_least = np.array([g.at_least for g in problem.groups], dtype=float)
        constraints.append(LinearConstraint(_group_matrix(problem.groups, P, C, n_i), at_least, np.inf))
    total = problem.total_cap()
    if total is not None:
        constraints.append(LinearConstraint(sp.csr_matrix(np.ones((1, P.size))), -np.inf, total))
    res = milp(
        -scores,
        integrality=np.ones(P.size),
        bounds=Bounds(req.astype(float), np.ones(P.size)),
        constraints=constraints,
        options={"time_limit": time_limit, "disp": False},
    )
    if res.x is None:
        return None, int(res.status)
    return np.round(res.x), int(res.status)


@dataclass
class _LP:
    """A restricted LP's answer: duals for pricing, the primal, its value and the floor shortfall."""

    y_inst: NDArray[np.float64]
    y_proj: NDArray[np.float64]
    x: NDArray[np.float64]
    value: float  # the restricted LP's maximum (without the artificial penalty)
    shortfall: float  # total artificial slack on floors and group rules


def _lp_duals(problem: AssignmentProblem, P: NDArray[np.int64], C: NDArray[np.int64]) -> _LP | None:
    """Solve the LP relaxation over the columns with penalised slack on every floor and group rule.

    The slack keeps a narrow candidate set feasible so that pricing, not guessing, widens it. Rows in
    ``A_ub x <= b_ub`` form: capacity, project max, -project min, -group. The project dual returned is
    y_max - y_min, so a left-out column (p, i) gains s + y_i + y_p (minus its reduced cost).
    Returns None when even the relaxed LP is infeasible (required pairs beyond a limit).
    """
    n_p, n_i = problem.shape
    cap, lo, hi = problem.bounds()
    scores = np.asarray(problem.scores, dtype=np.float64)[P, C]
    req = _required_mask(problem)[P, C]
    n_g = len(problem.groups)
    # large enough to route a floor unit through a few displaced meetings; were it too small, a shortfall
    # left at convergence only sends the instance to the full model, never to a wrong answer
    penalty = 10.0 * (float(np.abs(problem.scores).max()) + 1.0)
    A_i, A_p = _incidence(C, n_i), _incidence(P, n_p)
    art = sp.identity(n_p + n_g, format="csr")
    blocks = [
        sp.hstack([A_i, sp.csr_matrix((n_i, n_p + n_g))]),
        sp.hstack([A_p, sp.csr_matrix((n_p, n_p + n_g))]),
        sp.hstack([-A_p, -art[:n_p]]),
    ]
    rhs = [cap, hi, -lo]
    if n_g:
        blocks.append(sp.hstack([-_group_matrix(problem.groups, P, C, n_i), -art[n_p:]]))
        rhs.append(-np.array([g.at_least for g in problem.groups], dtype=float))
    c = np.concatenate([-scores, np.full(n_p + n_g, penalty)])
    lb = np.concatenate([req.astype(float), np.zeros(n_p + n_g)])
    ub = np.concatenate([np.ones(P.size), np.full(n_p + n_g, np.inf)])
    res = linprog(
        c,
        A_ub=sp.vstack(blocks).tocsr(),
        b_ub=np.concatenate(rhs).astype(float),
        bounds=np.column_stack([lb, ub]),
        method="highs",
    )
    if res.status != 0:
        return None
    y = res.ineqlin.marginals
    x = res.x[: P.size]
    return _LP(
        y_inst=y[:n_i],
        y_proj=y[n_i : n_i + n_p] - y[n_i + n_p : n_i + 2 * n_p],
        x=x,
        value=float(scores @ x),
        shortfall=float(res.x[P.size :].sum()),
    )


def _dual_bound(
    problem: AssignmentProblem,
    lp: _LP,
    gain: NDArray[np.float64],
    mask: NDArray[np.bool_],
    cols: NDArray[np.bool_],
) -> float:
    """Return an upper bound on the full LP (hence on the full optimum) from the restricted LP's duals.

    The duals stay feasible for the full dual once every left-out pair's positive gain is paid for:
    bound = value + sum of those gains. Raising project p's maximum-row dual by d costs max_p * d and
    lowers each of its gains by d; the best d leaves exactly the project's max_p largest positive gains
    (over all its allowed pairs) to pay, so without required pairs (whose lower bound would change the
    sum) the bound is value + sum_p (top-max_p positive gains - positive gains already in the LP).
    """
    pos = np.where(mask, np.maximum(gain, 0.0), 0.0)
    simple = lp.value + float(pos[~cols].sum())
    if problem.required:
        return simple
    _cap, _lo, hi = problem.bounds()
    inside = float(np.where(cols, pos, 0.0).sum())
    n_i = pos.shape[1]
    k = int(min(max(int(hi.max()), 1), n_i))
    top = -np.partition(-pos, k - 1, axis=1)[:, :k]
    top.sort(axis=1)
    top = top[:, ::-1]
    take = np.arange(k)[None, :] < np.minimum(hi, k)[:, None]
    tight = lp.value + float(np.where(take, top, 0.0).sum()) - inside
    return min(simple, tight)


def _top_n_columns(problem: AssignmentProblem, mask: NDArray[np.bool_], top_n: int) -> NDArray[np.bool_]:
    """Each project's top-N allowed institutions, plus required pairs and every group rule's pairs."""
    scores = np.where(mask, np.asarray(problem.scores, dtype=np.float64), -np.inf)
    n_i = scores.shape[1]
    keep = np.zeros_like(mask)
    if top_n >= n_i:
        return mask.copy()
    top = np.argpartition(-scores, top_n - 1, axis=1)[:, :top_n]
    np.put_along_axis(keep, top, True, axis=1)
    keep &= mask
    keep |= _required_mask(problem)
    for rule in problem.groups:
        cols = np.array(sorted(set(rule.institutions)), dtype=np.int64)
        if cols.size:
            keep[rule.project, cols] |= mask[rule.project, cols]
    return keep


def solve_assignment(
    problem: AssignmentProblem,
    *,
    top_n: int | None = None,
    time_limit: float = 120.0,
    max_rounds: int = 30,
    time_budget: float = 120.0,
) -> Assignment:
    """Return the plan that maximises the total score under every constraint, or the blockers.

    Args:
        problem: the instance.
        top_n: start from each project's top-N candidates and add columns by LP pricing. None: automatic
            (only when the allowed pairs exceed ``AUTO_RESTRICT_PAIRS``); 0: never restrict.
        time_limit: seconds for each HiGHS call.
        max_rounds: pricing rounds before the restriction is dropped.
        time_budget: seconds of pricing after which the plan is solved over the candidates found so
            far (``proven_optimal`` False; ``upper_bound`` bounds the full optimum).
    """
    start = time.perf_counter()
    mask = problem.allowed_mask()
    n_pairs = int(mask.sum())
    if top_n is None:
        top_n = DEFAULT_TOP_N if n_pairs > AUTO_RESTRICT_PAIRS else 0
    static = _static_blockers(problem, mask)
    if static:
        return Assignment("infeasible", blocking=static, seconds=time.perf_counter() - start)

    # a binding total (tables) couples every pair: the pricing LP does not model it, so plan over all pairs
    restricted = top_n > 0 and top_n < problem.shape[1] and problem.total_cap() is None
    cols = _top_n_columns(problem, mask, top_n) if restricted else mask
    proven = not restricted
    x: NDArray[np.float64] | None = None
    bound: float | None = None
    if restricted:
        scores = np.asarray(problem.scores, dtype=np.float64)
        deadline = time.perf_counter() + time_budget
        for _round in range(max_rounds):
            P, C = _edges(cols)
            lp = _lp_duals(problem, P, C)
            if lp is None:  # required pairs the caps cannot hold: let the full model say which
                cols, restricted = mask, False
                break
            gain = scores + lp.y_inst[None, :] + lp.y_proj[:, None]  # = -(reduced cost)
            bound = _dual_bound(problem, lp, gain, mask, cols) if lp.shortfall <= _TOL else None
            gain[~mask | cols] = -np.inf
            positive = gain > _TOL
            if not positive.any():
                if lp.shortfall > _TOL:  # the floor cannot be met even with every allowed pair
                    cols, restricted = mask, False
                    break
                proven = not problem.groups
                # without group rules the LP optimum at a vertex is integral: it is the plan
                if proven and np.all(np.abs(lp.x - np.round(lp.x)) < _TOL):
                    x = np.round(lp.x)
                break
            if time.perf_counter() > deadline:
                # plan over the candidates so far (the LP's vertex is that plan when it is integral);
                # the bound says how far from the full optimum it can be at most
                if (
                    lp.shortfall <= _TOL
                    and not problem.groups
                    and np.all(np.abs(lp.x - np.round(lp.x)) < _TOL)
                ):
                    x = np.round(lp.x)
                break
            # add each project's few most improving columns: the LP stays small, rounds stay fast
            k = min(_PRICE_PER_ROUND, problem.shape[1])
            best = np.argpartition(-gain, k - 1, axis=1)[:, :k]
            add = np.zeros_like(cols)
            np.put_along_axis(add, best, True, axis=1)
            cols |= add & positive
        else:
            cols, restricted = mask, False
        if not restricted:
            proven, bound = True, None
    P, C = _edges(cols)
    status = 0
    if x is None:
        x, status = _solve_milp(problem, P, C, time_limit)
    if x is None and restricted:  # LP feasible but not the integer programme on the candidates
        P, C = _edges(mask)
        restricted, proven = False, True
        x, status = _solve_milp(problem, P, C, time_limit)
    if x is None:
        blocking = diagnose(problem) if status == 2 else []
        if not blocking:
            blocking = [_blocker("solver", {"status": status}, 0, 0)]
        return Assignment(
            "infeasible", blocking=blocking, seconds=time.perf_counter() - start, n_variables=P.size
        )
    chosen = x > 0.5
    pairs = sorted(zip(P[chosen].tolist(), C[chosen].tolist(), strict=True))
    scores = np.asarray(problem.scores, dtype=np.float64)
    objective = float(sum(scores[p, i] for p, i in pairs))
    return Assignment(
        "optimal",
        pairs=pairs,
        objective=objective,
        proven_optimal=proven or not restricted,
        restricted_top_n=top_n if restricted else None,
        upper_bound=None if (proven or not restricted) else bound,
        n_variables=int(P.size),
        seconds=time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------------------------- diagnosis
def _static_blockers(problem: AssignmentProblem, mask: NDArray[np.bool_]) -> list[Blocker]:
    """Exact necessary conditions, checked in order of how plainly they explain themselves."""
    out: list[Blocker] = []
    n_p, n_i = problem.shape
    raw_cap = np.broadcast_to(np.asarray(problem.capacity, dtype=np.int64), (n_i,))
    raw_hi = np.broadcast_to(np.asarray(problem.project_max, dtype=np.int64), (n_p,))
    cap, lo, hi = problem.bounds()
    T = problem.slots
    for p in np.nonzero(lo > hi)[0].tolist():
        if T is not None and lo[p] > T and lo[p] <= raw_hi[p]:
            out.append(_blocker("slots", {"project": p}, int(lo[p]), int(T)))
        else:
            out.append(_blocker("project_bounds", {"project": p}, int(lo[p]), int(hi[p])))
    req = _required_mask(problem)
    n_allowed = mask.sum(axis=1)
    for p in np.nonzero(n_allowed < lo)[0].tolist():
        out.append(_blocker("project_candidates", {"project": p}, int(lo[p]), int(n_allowed[p])))
    req_p, req_i = req.sum(axis=1), req.sum(axis=0)
    for p in np.nonzero(req_p > hi)[0].tolist():
        out.append(_blocker("required_project_max", {"project": p}, int(req_p[p]), int(hi[p])))
    for i in np.nonzero(req_i > cap)[0].tolist():
        by_slots = "（受时段数限制）" if T is not None and raw_cap[i] > T else ""
        out.append(
            _blocker("required_capacity", {"institution": i}, int(req_i[i]), int(cap[i]), by_slots=by_slots)
        )
    # total supply the floor can draw on: each institution gives at most min(cap, its allowed projects)
    supply = int(np.minimum(cap, mask.sum(axis=0)).sum())
    need = int(lo.sum())
    if need > supply:
        per = supply // max(n_p, 1)
        out.append(_blocker("total_capacity", {}, need, supply, short=need - supply, per=per))
    total = problem.total_cap()
    if total is not None:
        # each project needs its floor, and at least its required pairs
        least = int(np.maximum(lo, req.sum(axis=1)).sum())
        if least > total:
            out.append(_blocker("tables", {}, least, total, short=least - total))
    for g, rule in enumerate(problem.groups):
        members = [i for i in set(rule.institutions) if 0 <= i < n_i and mask[rule.project, i]]
        usable = sum(1 for i in members if cap[i] > 0)
        if usable < rule.at_least or rule.at_least > hi[rule.project]:
            subject = {"project": rule.project, "rule": g, "label": rule.label}
            have = int(min(usable, hi[rule.project]))
            out.append(
                _blocker("group_rule", subject, int(rule.at_least), have, label=rule.label, usable=usable)
            )
    return out


def diagnose(problem: AssignmentProblem) -> list[Blocker]:
    """Explain an infeasible instance: exact checks first, else the slacks of a relaxed model."""
    mask = problem.allowed_mask()
    static = _static_blockers(problem, mask)
    if static:
        return static
    n_p, n_i = problem.shape
    cap, lo, hi = problem.bounds()
    P, C = _edges(mask)
    m = P.size
    req = _required_mask(problem)
    req_idx = np.nonzero(req[P, C])[0]
    n_g = len(problem.groups)
    # variables: x (m) | project shortfall (n_p) | required-pair slack (len req) | group slack (n_g)
    n_var = m + n_p + req_idx.size + n_g
    c = np.concatenate([np.zeros(m), np.ones(n_p), np.ones(req_idx.size), np.ones(n_g)])
    A_i, A_p = _incidence(C, n_i), _incidence(P, n_p)
    rows = [
        LinearConstraint(sp.hstack([A_i, sp.csr_matrix((n_i, n_var - m))]), -np.inf, cap),
        LinearConstraint(sp.hstack([A_p, sp.csr_matrix((n_p, n_var - m))]), -np.inf, hi),
        LinearConstraint(
            sp.hstack([A_p, sp.identity(n_p), sp.csr_matrix((n_p, req_idx.size + n_g))]), lo, np.inf
        ),
    ]
    if req_idx.size:
        R = sp.csr_matrix(
            (np.ones(req_idx.size), (np.arange(req_idx.size), req_idx)), shape=(req_idx.size, m)
        )
        rows.append(
            LinearConstraint(
                sp.hstack(
                    [
                        R,
                        sp.csr_matrix((req_idx.size, n_p)),
                        sp.identity(req_idx.size),
                        sp.csr_matrix((req_idx.size, n_g)),
                    ]
                ),
                1,
                np.inf,
            )
        )
    if n_g:
        G = _group_matrix(problem.groups, P, C, n_i)
        rows.append(
            LinearConstraint(
                sp.hstack([G, sp.csr_matrix((n_g, n_p + req_idx.size)), sp.identity(n_g)]),
                np.array([g.at_least for g in problem.groups], dtype=float),
                np.inf,
            )
        )
    integrality = np.concatenate([np.ones(m), np.zeros(n_var - m)])
    ub = np.concatenate([np.ones(m), np.full(n_var - m, np.inf)])
    res = milp(c, integrality=integrality, bounds=Bounds(np.zeros(n_var), ub), constraints=rows)
    if res.x is None:
        return []
    x = np.round(res.x[:m]) > 0.5
    load = np.bincount(C[x], minlength=n_i)
    full = load >= cap
    out: list[Blocker] = []
    short = res.x[m : m + n_p]
    for p in np.nonzero(short > 0.5)[0].tolist():
        partners = sorted(int(i) for i in C[p == P] if full[i])
        got = int(lo[p] - round(short[p]))
        subject = {"project": p, "full_institutions": partners}
        out.append(_blocker("project_floor", subject, int(lo[p]), got, full=len(partners)))
    rs = res.x[m + n_p : m + n_p + req_idx.size]
    for k in np.nonzero(rs > 0.5)[0].tolist():
        p, i = int(P[req_idx[k]]), int(C[req_idx[k]])
        out.append(_blocker("required_pair", {"project": p, "institution": i}, 1, 0))
    gs = res.x[m + n_p + req_idx.size :]
    for g in np.nonzero(gs > 0.5)[0].tolist():
        rule = problem.groups[g]
        subject = {"project": rule.project, "rule": g, "label": rule.label}
        have = int(rule.at_least - round(gs[g]))
        out.append(_blocker("group_shortfall", subject, int(rule.at_least), have, label=rule.label))
    return out


# ---------------------------------------------------------------------------------------------- checks
def check_assignment(problem: AssignmentProblem, pairs: Iterable[tuple[int, int]]) -> list[str]:
    """Return every violated constraint of a plan (empty when the plan is feasible)."""
    errors: list[str] = []
    mask = problem.allowed_mask()
    cap, lo, hi = problem.bounds()
    n_p, n_i = problem.shape
    pairs = list(pairs)
    if len(set(pairs)) != len(pairs):
        errors.append("duplicate pair")
    load_p, load_i = np.zeros(n_p, dtype=int), np.zeros(n_i, dtype=int)
    chosen = set()
    for p, i in pairs:
        if not mask[p, i]:
            errors.append(f"forbidden pair {p},{i}")
        load_p[p] += 1
        load_i[i] += 1
        chosen.add((p, i))
    errors += [f"institution {i} over capacity" for i in np.nonzero(load_i > cap)[0]]
    errors += [f"project {p} below floor" for p in np.nonzero(load_p < lo)[0]]
    errors += [f"project {p} above maximum" for p in np.nonzero(load_p > hi)[0]]
    errors += [f"required pair {p},{i} missing" for p, i in problem.required if (p, i) not in chosen]
    if problem.max_total is not None and len(pairs) > problem.max_total:
        errors.append(f"{len(pairs)} meetings exceed the total of {problem.max_total}")
    for g, rule in enumerate(problem.groups):
        if sum((rule.project, i) in chosen for i in set(rule.institutions)) < rule.at_least:
            errors.append(f"group rule {g} unmet")
    return errors


def brute_force(problem: AssignmentProblem) -> tuple[float, list[tuple[int, int]]] | None:
    """Return the best plan by enumeration (tiny instances only: at most 20 allowed pairs)."""
    P, C = _edges(problem.allowed_mask())
    if P.size > 20:
        raise ValueError("brute force is for at most 20 allowed pairs")
    scores = np.asarray(problem.scores, dtype=np.float64)
    best: tuple[float, list[tuple[int, int]]] | None = None
    for bits in range(1 << P.size):
        pairs = [(int(P[j]), int(C[j])) for j in range(P.size) if bits >> j & 1]
        if check_assignment(problem, pairs):
            continue
        value = float(sum(scores[p, i] for p, i in pairs))
        if best is None or value > best[0] + 1e-9:
            best = (value, pairs)
    return best


# ---------------------------------------------------------------------------------------------- baselines
def greedy_top_k(problem: AssignmentProblem, *, respect_capacity: bool = True) -> list[tuple[int, int]]:
    """Each project in turn takes its best allowed institutions, up to its maximum (the list-per-fund way).

    With ``respect_capacity`` an institution that is full is skipped; without it the popular
    institutions are simply overloaded, as independent top-k lists are.
    """
    mask = problem.allowed_mask()
    cap, _lo, hi = problem.bounds()
    scores = np.where(mask, np.asarray(problem.scores, dtype=np.float64), -np.inf)
    load = np.zeros(problem.shape[1], dtype=np.int64)
    order = np.argsort(-scores, axis=1, kind="stable")
    pairs = []
    for p in range(problem.shape[0]):
        taken = 0
        for i in order[p]:
            if taken >= hi[p] or not np.isfinite(scores[p, i]):
                break
            if respect_capacity and load[i] >= cap[i]:
                continue
            pairs.append((p, int(i)))
            load[i] += 1
            taken += 1
    return pairs


def _flow_stage(
    scores: NDArray[np.float64],
    mask: NDArray[np.bool_],
    cap: NDArray[np.int64],
    demand_lo: NDArray[np.int64],
    demand_hi: NDArray[np.int64],
    weight_cover: float,
) -> NDArray[np.bool_]:
    """One transportation (min-cost flow) stage solved as its LP, which is integral (a network matrix)."""
    n_p, n_i = scores.shape
    P, C = _edges(mask)
    chosen = np.zeros_like(mask)
    if P.size == 0:
        return chosen
    # cost: -(score + weight_cover) so that covering demand comes first, then score
    c = -(scores[P, C] + weight_cover)
    A = sp.vstack([_incidence(C, n_i), _incidence(P, n_p), -_incidence(P, n_p)]).tocsr()
    b = np.concatenate([cap, demand_hi, -demand_lo]).astype(float)
    res = linprog(c, A_ub=A, b_ub=b, bounds=(0, 1), method="highs-ds")
    if res.x is None:  # the floor cannot be met: cover as much as possible instead
        res = linprog(c, A_ub=A[: n_i + n_p], b_ub=b[: n_i + n_p], bounds=(0, 1), method="highs-ds")
    x = res.x > 0.5
    chosen[P[x], C[x]] = True
    return chosen


def minmax_two_stage(problem: AssignmentProblem) -> list[tuple[int, int]]:
    """openreview-matcher's MinMax idea: a flow gives each project its floor, a second flow fills by score.

    Stage 1 routes exactly ``project_min`` units per project through the institutions' capacities at
    the highest total score (a min-cost flow); stage 2 routes the remaining capacity (up to each
    project's maximum, never reusing a pair) again by score. Required pairs and group rules are not
    modelled (the benchmark has none).
    """
    mask = problem.allowed_mask()
    cap, lo, hi = problem.bounds()
    scores = np.asarray(problem.scores, dtype=np.float64)
    big = float(np.abs(scores).max() + 1.0) * 10
    first = _flow_stage(scores, mask, cap, np.zeros_like(lo), lo, big)
    load_i, load_p = first.sum(axis=0), first.sum(axis=1)
    second = _flow_stage(
        scores, mask & ~first, cap - load_i, np.zeros_like(lo), np.maximum(hi - load_p, 0), 0.0
    )
    # stage 2 only adds pairs that raise the score; non-positive scores stay out as in a max-weight flow
    second &= scores > 0
    return sorted(zip(*np.nonzero(first | second), strict=True))


def assign_reviewers(
    scores: NDArray[np.floating],
    conflicts: NDArray[np.bool_] | None,
    load: int | Sequence[int],
    coverage: int | Sequence[int],
    *,
    required: Sequence[tuple[int, int]] = (),
    groups: Sequence[GroupRule] = (),
) -> Assignment:
    """Assign judges or mentors (columns) to projects (rows): each project exactly ``coverage`` of them.

    ``scores`` is field expertise (or need fit); ``conflicts`` marks pairs that must never be assigned;
    ``load`` is each judge's limit. Same solver and the same infeasibility report as events.
    """
    allowed = None if conflicts is None else ~np.asarray(conflicts, dtype=bool)
    return solve_assignment(
        AssignmentProblem(
            scores=np.asarray(scores, dtype=np.float64),
            allowed=allowed,
            required=required,
            capacity=load,
            project_min=coverage,
            project_max=coverage,
            slots=None,
            groups=groups,
        )
    )


# ---------------------------------------------------------------------------------------------- timetable
@dataclass
class Timetable:
    """Slot and table of every meeting (same order as the input), or the reasons there is none."""

    status: str  # "ok" | "infeasible"
    slots: list[int] = field(default_factory=list)
    tables: list[int] = field(default_factory=list)
    blocking: list[Blocker] = field(default_factory=list)
    method: str = ""


def check_timetable(
    meetings: Sequence[Sequence[Hashable]],
    slots: Sequence[int],
    tables: Sequence[int],
    n_slots: int,
    n_tables: int | None = None,
    unavailable: Mapping[Hashable, Iterable[int]] | None = None,
) -> list[str]:
    """Return every violation of a timetable: double booking, unavailable slot, table clash, range."""
    errors: list[str] = []
    unavailable = unavailable or {}
    if len(slots) != len(meetings) or len(tables) != len(meetings):
        return ["one slot and one table per meeting"]
    busy: dict[tuple[Hashable, int], int] = {}
    table_use: dict[tuple[int, int], int] = {}
    for m, (parties, t, tb) in enumerate(zip(meetings, slots, tables, strict=True)):
        if not 0 <= t < n_slots:
            errors.append(f"meeting {m}: slot {t} out of range")
        if n_tables is not None and not 0 <= tb < n_tables:
            errors.append(f"meeting {m}: table {tb} out of range")
        if (t, tb) in table_use:
            errors.append(f"meeting {m}: table {tb} in slot {t} already used by meeting {table_use[(t, tb)]}")
        table_use[(t, tb)] = m
        for r in set(parties):
            if t in set(unavailable.get(r, ())):
                errors.append(f"meeting {m}: {r!r} unavailable in slot {t}")
            if (r, t) in busy:
                errors.append(f"meeting {m}: {r!r} double-booked in slot {t} (meeting {busy[(r, t)]})")
            busy[(r, t)] = m
    return errors


def _timetable_blockers(
    meetings: Sequence[Sequence[Hashable]],
    n_slots: int,
    n_tables: int | None,
    unavailable: Mapping[Hashable, Iterable[int]],
) -> list[Blocker]:
    out: list[Blocker] = []
    degree: dict[Hashable, int] = {}
    for parties in meetings:
        for r in set(parties):
            degree[r] = degree.get(r, 0) + 1
    for r, d in degree.items():
        free = n_slots - len({t for t in unavailable.get(r, ()) if 0 <= t < n_slots})
        if d > free:
            out.append(_blocker("party_slots", {"party": str(r)}, d, free, party=r))
    if n_tables is not None and len(meetings) > n_slots * n_tables:
        seats = n_slots * n_tables
        out.append(
            _blocker("tables", {}, len(meetings), seats, "timetable_tables", slots=n_slots, tables=n_tables)
        )
    return out


def build_timetable(
    meetings: Sequence[Sequence[Hashable]],
    n_slots: int,
    n_tables: int | None = None,
    unavailable: Mapping[Hashable, Iterable[int]] | None = None,
    *,
    time_limit: float = 60.0,
) -> Timetable:
    """Give every meeting a slot and a table so that no party (project, institution, person) is double-booked.

    Each meeting is the tuple of parties it occupies (e.g. ``("p", 3)``, ``("i", 7)`` and any named
    person). Greedy first-fit over meetings ordered by their most loaded party, with Kempe-chain repair
    for two-party meetings (bipartite edge colouring: with no unavailable slots, T slots always suffice
    when no party has more than T meetings, by Konig's theorem); when that fails, a 0/1 programme
    (HiGHS). Every returned timetable has passed :func:`check_timetable`.
    """
    blocked: dict[Hashable, set[int]] = {
        r: {t for t in ts if 0 <= t < n_slots} for r, ts in (unavailable or {}).items()
    }
    parties: list[tuple[Hashable, ...]] = [tuple(dict.fromkeys(m)) for m in meetings]
    blockers = _timetable_blockers(parties, n_slots, n_tables, blocked)
    if blockers:
        return Timetable("infeasible", blocking=blockers)
    slots = _greedy_slots(parties, n_slots, n_tables, blocked)
    method = "greedy"
    if slots is None:
        slots = _milp_slots(parties, n_slots, n_tables, blocked, time_limit)
        method = "milp"
    if slots is None:
        return Timetable(
            "infeasible",
            blocking=[_blocker("timetable", {}, len(meetings), 0)],
            method="milp",
        )
    tables = _tables_for(slots)
    errors = check_timetable(parties, slots, tables, n_slots, n_tables, blocked)
    if errors:  # never hand out a timetable that fails its own proof
        raise AssertionError("timetable check failed: " + "; ".join(errors[:5]))
    return Timetable("ok", slots=slots, tables=tables, method=method)


def _tables_for(slots: Sequence[int]) -> list[int]:
    used: dict[int, int] = {}
    tables = []
    for t in slots:
        tables.append(used.get(t, 0))
        used[t] = used.get(t, 0) + 1
    return tables


def _greedy_slots(
    meetings: Sequence[tuple[Hashable, ...]],
    n_slots: int,
    n_tables: int | None,
    unavailable: Mapping[Hashable, set[int]],
) -> list[int] | None:
    degree: dict[Hashable, int] = {}
    for parties in meetings:
        for r in parties:
            degree[r] = degree.get(r, 0) + 1
    order = sorted(
        range(len(meetings)),
        key=lambda m: (-max(degree[r] + len(unavailable.get(r, ())) for r in meetings[m]), m),
    )
    at: dict[tuple[Hashable, int], int] = {}  # (party, slot) -> meeting
    slot_of = [-1] * len(meetings)
    count = [0] * n_slots
    table_cap = n_tables if n_tables is not None else len(meetings) + 1

    def fits(m: int, t: int) -> bool:
        return count[t] < table_cap and all(
            (r, t) not in at and t not in unavailable.get(r, ()) for r in meetings[m]
        )

    def place(m: int, t: int) -> None:
        slot_of[m] = t
        count[t] += 1
        for r in meetings[m]:
            at[(r, t)] = m

    def unplace(m: int) -> None:
        t = slot_of[m]
        count[t] -= 1
        for r in meetings[m]:
            del at[(r, t)]
        slot_of[m] = -1

    for m in order:
        free = [t for t in range(n_slots) if fits(m, t)]
        if free:
            place(m, free[0])
            continue
        if len(meetings[m]) != 2 or not _kempe(
            m, meetings, n_slots, unavailable, at, slot_of, fits, place, unplace
        ):
            return None
    return slot_of


def _kempe(m, meetings, n_slots, unavailable, at, slot_of, fits, place, unplace) -> bool:
    """Free a slot for two-party meeting m by swapping two slots along an alternating chain."""
    u, v = meetings[m]
    free_u = [t for t in range(n_slots) if (u, t) not in at and t not in unavailable.get(u, ())]
    free_v = [t for t in range(n_slots) if (v, t) not in at and t not in unavailable.get(v, ())]
    for a in free_u:
        if a in unavailable.get(v, ()):
            continue
        for b in free_v:
            if a == b:
                continue
            # chain from v along slot a, then b, a, ...: swap a<->b on it
            chain: list[int] = []
            node, colour = v, a
            ok = True
            while (node, colour) in at:
                e = at[(node, colour)]
                if len(meetings[e]) != 2 or e in chain:
                    ok = False
                    break
                chain.append(e)
                x, y = meetings[e]
                node = y if x == node else x
                colour = b if colour == a else a
            if not ok or not chain:
                continue
            old = [(e, slot_of[e]) for e in chain]
            for e in chain:
                unplace(e)
            moved = True
            for e, t in old:
                nt = b if t == a else a
                if fits(e, nt):
                    place(e, nt)
                else:
                    moved = False
                    break
            if moved and fits(m, a):
                place(m, a)
                return True
            for e, _t in old:  # revert
                if slot_of[e] >= 0:
                    unplace(e)
            for e, t in old:
                place(e, t)
    return False


def _milp_slots(
    meetings: Sequence[tuple[Hashable, ...]],
    n_slots: int,
    n_tables: int | None,
    unavailable: Mapping[Hashable, set[int]],
    time_limit: float,
) -> list[int] | None:
    cols: list[tuple[int, int]] = []
    for m, parties in enumerate(meetings):
        for t in range(n_slots):
            if all(t not in unavailable.get(r, ()) for r in parties):
                cols.append((m, t))
    if not cols:
        return None
    M = np.array([c[0] for c in cols])
    Tt = np.array([c[1] for c in cols])
    n = len(cols)
    rows = [LinearConstraint(_incidence(M, len(meetings)), 1, 1)]
    party_ids: dict[Hashable, int] = {}
    r_idx, c_idx = [], []
    for j, (m, t) in enumerate(cols):
        for r in meetings[m]:
            k = party_ids.setdefault(r, len(party_ids))
            r_idx.append(k * n_slots + t)
            c_idx.append(j)
    R = sp.csr_matrix((np.ones(len(r_idx)), (r_idx, c_idx)), shape=(len(party_ids) * n_slots, n))
    rows.append(LinearConstraint(R, -np.inf, 1))
    if n_tables is not None:
        rows.append(LinearConstraint(_incidence(Tt, n_slots), -np.inf, n_tables))
    res = milp(
        np.zeros(n),
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        constraints=rows,
        options={"time_limit": time_limit, "disp": False},
    )
    if res.x is None:
        return None
    slots = [-1] * len(meetings)
    for col in np.nonzero(res.x > 0.5)[0]:
        slots[int(M[col])] = int(Tt[col])
    return slots
