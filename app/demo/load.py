"""Load the shipped demo data (fictional projects, institutions and needs) into the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.schemas import InstitutionIn, NeedIn, ProjectIn, validate
from models import Contest, Institution, Need, Project

DATA = Path(__file__).parent / "data"


def _read(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def load_demo(session: Session, force: bool = False) -> dict[str, int]:
    """Insert the demo records through the same validation as the forms; skip when data exists."""
    from app.auth.accounts import load_demo_accounts

    if not force and session.scalar(select(func.count(Project.id))):
        return {"skipped (projects already present)": 1, **load_demo_accounts(session)}
    contests = {c.code: c.id for c in session.scalars(select(Contest))}
    if not contests:
        raise RuntimeError("the contest catalogue is empty: run `flask --app app init-db` first")

    projects = []
    for raw in _read("projects.json"):
        row = dict(raw)
        row["contest_id"] = contests[row.pop("contest")]
        row["funding_round"] = row.pop("round", None)
        projects.append(Project(**validate(ProjectIn, row).model_dump()))
    session.add_all(projects)

    institutions = {}
    for raw in _read("institutions.json"):
        inst = Institution(**validate(InstitutionIn, raw).model_dump())
        institutions[inst.name] = inst
    session.add_all(institutions.values())
    session.flush()

    needs = []
    for raw in _read("needs.json"):
        row = dict(raw)
        row["institution_id"] = institutions[row.pop("institution")].id
        needs.append(Need(**validate(NeedIn, row).model_dump()))
    session.add_all(needs)
    session.commit()
    from app.pipeline.demo import load_history

    history = load_history(session)  # a year of connections and their outcomes, for the dashboard
    from app.feedback.demo import load_demo_feedback

    history.update(load_demo_feedback(session))  # the lists that history came from (marked demo)
    accounts = load_demo_accounts(session)  # one per role, listed in the README
    return {
        "projects": len(projects),
        "institutions": len(institutions),
        "needs": len(needs),
        **history,
        **accounts,
    }
