"""flask event solve: the EVENT.json -> PLAN.json contract on the demo data."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select

from models import Institution, Project


def _ids(session, n_projects=12, n_institutions=5):
    projects = list(session.scalars(select(Project.id).order_by(Project.id).limit(n_projects)))
    institutions = list(
        session.scalars(select(Institution.id).order_by(Institution.id).limit(n_institutions))
    )
    return projects, institutions


def _run(runner, tmp_path, event):
    src, out = tmp_path / "event.json", tmp_path / "plan.json"
    src.write_text(json.dumps(event) if not isinstance(event, str) else event, encoding="utf-8")
    r = runner.invoke(args=["event", "solve", "--input", str(src), "--out", str(out)])
    return r, out


def test_plan_meets_every_constraint_and_scores_every_allowed_pair(app, runner, session, tmp_path):
    P, INST = _ids(session)
    forbidden = [[P[0], INST[0]], [P[1], INST[1]]]
    required = [[P[2], INST[4]]]
    event = {
        "projects": P,
        "institutions": INST,
        "slots": 4,
        "institution_capacity": {str(INST[0]): 2, str(INST[4]): 3},
        "project_min": 1,
        "project_max": 3,
        "forbidden": forbidden,
        "required": required,
    }
    r, out = _run(runner, tmp_path, event)
    assert r.exit_code == 0, r.output
    plan = json.loads(out.read_text(encoding="utf-8"))
    assert plan["status"] == "optimal" and plan["blocking"] == []
    allowed = {f"{p},{i}" for p in P for i in INST} - {f"{p},{i}" for p, i in forbidden}
    assert set(plan["scores"]) == allowed
    assert all(0 <= s <= 100 for s in plan["scores"].values())
    meetings = plan["meetings"]
    pairs = [(p, i) for p, i, _t in meetings]
    assert plan["objective"] == pytest.approx(sum(plan["scores"][f"{p},{i}"] for p, i in pairs))
    assert (P[2], INST[4]) in pairs and not {(P[0], INST[0]), (P[1], INST[1])} & set(pairs)
    per_p, per_i = Counter(p for p, _ in pairs), Counter(i for _, i in pairs)
    assert all(1 <= per_p[p] <= 3 for p in P)
    assert per_i[INST[0]] <= 2 and per_i[INST[4]] <= 3 and max(per_i.values()) <= 4
    assert all(0 <= t < 4 for _p, _i, t in meetings)
    assert len({(p, t) for p, _i, t in meetings}) == len(meetings)  # no project twice in a slot
    assert len({(i, t) for _p, i, t in meetings}) == len(meetings)  # no institution twice in a slot


def test_scores_are_the_ranked_lists_scores(app, runner, session, tmp_path):
    from app.services import get_matching
    from matching.types import Filters

    P, INST = _ids(session, 3, 8)
    r, out = _run(runner, tmp_path, {"projects": P, "institutions": INST, "slots": 3})
    assert r.exit_code == 0, r.output
    plan = json.loads(out.read_text(encoding="utf-8"))
    with app.app_context():
        service = get_matching()
        side = service.institution(INST[0]).side
        same_side = frozenset(i for i in INST if service.institution(i).side == side)
        ranked = service.match_project(P[0], side, k=len(same_side), filters=Filters(allowed_ids=same_side))
    assert ranked
    for m in ranked:
        assert plan["scores"][f"{P[0]},{m.id}"] == pytest.approx(m.score)


def test_infeasible_event_explains_itself(app, runner, session, tmp_path):
    P, INST = _ids(session)
    event = {
        "projects": P,
        "institutions": INST,
        "slots": 4,
        "institution_capacity": {str(i): 1 for i in INST},
        "project_min": 2,
    }
    r, out = _run(runner, tmp_path, event)
    assert r.exit_code == 0, r.output
    plan = json.loads(out.read_text(encoding="utf-8"))
    assert plan["status"] == "infeasible" and plan["meetings"] == [] and plan["objective"] == 0
    blocker = plan["blocking"][0]
    assert blocker["constraint"] == "total_capacity"
    assert (blocker["needed"], blocker["available"]) == (24, 5)
    assert "提高机构容量" in blocker["message_zh"] and "raise capacities" in blocker["message_en"]
    assert "total_capacity" in r.output


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"slots": 12.0}, "slots"),
        ({"slots": True}, "slots"),
        ({"slots": "4"}, "slots"),
        ({"slots": -1}, "slots"),
        ({"slots": 10**12}, "slots"),
        ({"project_min": 1.5}, "project_min"),
        ({"projects": [1, 1]}, "projects[1]"),
        ({"projects": [999999]}, "projects[0]"),
        ({"institutions": [0]}, "institutions[0]"),
        ({"institutions": []}, "institutions"),
        ({"institution_capacity": {"abc": 1}}, "institution_capacity['abc']"),
        ({"institution_capacity": {"999999": 1}}, "institution_capacity['999999']"),
        ({"forbidden": [[1]]}, "forbidden[0]"),
        ({"required": [[1, 999999]]}, "required[0][1]"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_event_files_are_refused_with_the_field(app, runner, session, tmp_path, patch, field):
    P, INST = _ids(session, 2, 2)
    event = {"projects": P, "institutions": INST, "slots": 2, **patch}
    if patch.get("projects") == [1, 1]:
        event["projects"] = [P[0], P[0]]
    if patch.get("forbidden") == [[1]]:
        event["forbidden"] = [[P[0]]]
    if "required" in patch:
        event["required"] = [[P[0], 999999]]
    r, out = _run(runner, tmp_path, event)
    assert r.exit_code == 2, r.output
    assert f"invalid event file: {field}:" in r.output
    assert not out.exists()


@pytest.mark.parametrize("text", ["{not json", '{"projects": [NaN]}', "[1, 2]", '{"slots": 3}'])
def test_malformed_files_are_refused(app, runner, tmp_path, text):
    r, out = _run(runner, tmp_path, text)
    assert r.exit_code == 2 and "invalid event file" in r.output
    assert not out.exists()
