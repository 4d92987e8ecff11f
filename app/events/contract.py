"""The machine-readable event contract: EVENT.json in, PLAN.json out.

EVENT.json::

    {"projects": [ids], "institutions": [ids], "slots": T,
     "institution_capacity": {"<id>": n}, "project_min": a, "project_max": b,
     "forbidden": [[p, i]], "required": [[p, i]]}

``slots`` is required with the two id lists; an institution missing from ``institution_capacity``
may meet up to T projects; ``project_min`` defaults to 0 and ``project_max`` to T. Every number is a
JSON integer (``12.0``, ``true`` and ``"12"`` are refused) within the limits below; unknown keys,
unknown or repeated ids, pairs outside the lists and a pair both forbidden and required are refused.

PLAN.json::

    {"meetings": [[p, i, slot]], "objective": x, "scores": {"<p>,<i>": s},
     "status": "optimal" | "infeasible", "blocking": [...]}

``scores`` holds the product's own match score (0-100, as the ranked lists show it) of every
allowed pair; ``objective`` is the sum of the scores of the meetings; a slot is 0..T-1; an
infeasible event has no meetings and its blockers (constraint, subject ids, needed, available and
a Chinese and an English message saying what to relax).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.schemas import MAX_ID
from matching.assignment import AssignmentProblem, build_timetable, solve_assignment

MAX_SLOTS = 500
MAX_COUNT = 100_000
MAX_PROJECTS = 20_000
MAX_INSTITUTIONS = 5_000
KEYS = {
    "projects",
    "institutions",
    "slots",
    "institution_capacity",
    "project_min",
    "project_max",
    "forbidden",
    "required",
}


class EventInputError(ValueError):
    """The event file is not a valid EVENT.json; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EventSpec:
    """A parsed, validated EVENT.json."""

    projects: tuple[int, ...]
    institutions: tuple[int, ...]
    slots: int
    institution_capacity: dict[int, int]
    project_min: int
    project_max: int
    forbidden: frozenset[tuple[int, int]]
    required: tuple[tuple[int, int], ...]


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    # bool is an int in Python and 12.0 a float: both are refused, as are strings
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventInputError(field, f"expected an integer from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise EventInputError(field, f"expected an integer from {lo} to {hi}, got {value}")
    return value


def _ids(value: Any, field: str, limit: int) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise EventInputError(field, "expected a list of integer ids")
    if not value:
        raise EventInputError(field, "expected at least one id")
    if len(value) > limit:
        raise EventInputError(field, f"at most {limit} ids, got {len(value)}")
    ids = tuple(_int(v, f"{field}[{k}]", 1, MAX_ID) for k, v in enumerate(value))
    seen: set[int] = set()
    for k, i in enumerate(ids):
        if i in seen:
            raise EventInputError(f"{field}[{k}]", f"id {i} is listed twice")
        seen.add(i)
    return ids


def _pairs(value: Any, field: str, projects: set[int], institutions: set[int]) -> list[tuple[int, int]]:
    if not isinstance(value, list):
        raise EventInputError(field, "expected a list of [project id, institution id] pairs")
    out = []
    for k, pair in enumerate(value):
        where = f"{field}[{k}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise EventInputError(where, f"expected [project id, institution id], got {pair!r}")
        p = _int(pair[0], f"{where}[0]", 1, MAX_ID)
        i = _int(pair[1], f"{where}[1]", 1, MAX_ID)
        if p not in projects:
            raise EventInputError(f"{where}[0]", f"project {p} is not in projects")
        if i not in institutions:
            raise EventInputError(f"{where}[1]", f"institution {i} is not in institutions")
        out.append((p, i))
    return out


def parse_event(data: Any) -> EventSpec:
    """Validate a decoded EVENT.json strictly; raise :class:`EventInputError` naming the field."""
    if not isinstance(data, dict):
        raise EventInputError("(top level)", "expected a JSON object")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise EventInputError(unknown[0], f"unknown key (expected only {', '.join(sorted(KEYS))})")
    for key in ("projects", "institutions", "slots"):
        if key not in data:
            raise EventInputError(key, "is required")
    projects = _ids(data["projects"], "projects", MAX_PROJECTS)
    institutions = _ids(data["institutions"], "institutions", MAX_INSTITUTIONS)
    slots = _int(data["slots"], "slots", 1, MAX_SLOTS)
    project_min = _int(data.get("project_min", 0), "project_min", 0, MAX_SLOTS)
    project_max = _int(data.get("project_max", slots), "project_max", 0, MAX_COUNT)
    caps_raw = data.get("institution_capacity", {})
    if not isinstance(caps_raw, dict):
        raise EventInputError("institution_capacity", 'expected an object {"<institution id>": n}')
    inst_set, proj_set = set(institutions), set(projects)
    caps: dict[int, int] = {}
    for key, n in caps_raw.items():
        field = f"institution_capacity[{key!r}]"
        if not (isinstance(key, str) and key.isascii() and key.isdigit() and not key.startswith("0")):
            raise EventInputError(field, 'keys are institution ids written as decimal strings, e.g. "12"')
        iid = int(key)
        if iid not in inst_set:
            raise EventInputError(field, f"institution {iid} is not in institutions")
        caps[iid] = _int(n, field, 0, MAX_COUNT)
    forbidden = _pairs(data.get("forbidden", []), "forbidden", proj_set, inst_set)
    required = _pairs(data.get("required", []), "required", proj_set, inst_set)
    both = sorted(set(forbidden) & set(required))
    if both:
        raise EventInputError("required", f"pair {list(both[0])} is both forbidden and required")
    if len(set(required)) != len(required):
        raise EventInputError("required", "a pair is listed twice")
    return EventSpec(
        projects=projects,
        institutions=institutions,
        slots=slots,
        institution_capacity=caps,
        project_min=project_min,
        project_max=project_max,
        forbidden=frozenset(forbidden),
        required=tuple(required),
    )


ScoreFn = Callable[[Sequence[int], Sequence[int]], Mapping[tuple[int, int], float]]


def solve_event(spec: EventSpec, score_pairs: ScoreFn) -> dict[str, Any]:
    """Return PLAN.json for a validated event; ``score_pairs`` gives the match score of id pairs."""
    P, INST = list(spec.projects), list(spec.institutions)
    allowed = np.ones((len(P), len(INST)), dtype=bool)
    prow = {p: r for r, p in enumerate(P)}
    icol = {i: c for c, i in enumerate(INST)}
    for p, i in spec.forbidden:
        allowed[prow[p], icol[i]] = False
    found = score_pairs(P, INST)
    scores = np.zeros(allowed.shape)
    plan_scores: dict[str, float] = {}
    for r, p in enumerate(P):
        for c, i in enumerate(INST):
            if allowed[r, c]:
                s = round(float(found.get((p, i), 0.0)), 2)
                scores[r, c] = s
                plan_scores[f"{p},{i}"] = s
    problem = AssignmentProblem(
        scores=scores,
        allowed=allowed,
        required=[(prow[p], icol[i]) for p, i in spec.required],
        capacity=np.array([spec.institution_capacity.get(i, spec.slots) for i in INST]),
        project_min=spec.project_min,
        project_max=spec.project_max,
        slots=spec.slots,
    )
    result = solve_assignment(problem)
    plan: dict[str, Any] = {"meetings": [], "objective": 0.0, "scores": plan_scores}
    if result.status != "optimal":
        plan.update(status="infeasible", blocking=[b.as_dict(P, INST) for b in result.blocking])
        return plan
    tt = build_timetable([(("p", r), ("i", c)) for r, c in result.pairs], spec.slots)
    if tt.status != "ok":
        plan.update(status="infeasible", blocking=[b.as_dict(P, INST) for b in tt.blocking])
        return plan
    meetings = sorted([P[r], INST[c], t] for (r, c), t in zip(result.pairs, tt.slots, strict=True))
    plan.update(
        meetings=meetings,
        objective=round(sum(plan_scores[f"{p},{i}"] for p, i, _t in meetings), 2),
        status="optimal",
        blocking=[],
    )
    return plan
