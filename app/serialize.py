"""Rows -> plain dicts for the JSON API (and for the edit forms)."""

from __future__ import annotations

from datetime import date
from typing import Any

from matching.types import InstitutionProfile, Match, ProjectProfile
from models import Contest, Institution, Need, Project


def attrs(row: Any, names: str) -> dict[str, Any]:
    """Return a row's attributes `names` (space-separated, as namedtuple takes them) as they are: the
    plain fields of a JSON answer."""
    return {name: getattr(row, name) for name in names.split()}


def iso(at: date | None) -> str | None:
    """Return a date or time in ISO 8601 (None stays None): how every JSON answer writes one."""
    return at.isoformat() if at else None


def _stamps(row: Project | Institution) -> dict[str, str | None]:
    """Return when a record was created and last changed."""
    return {"created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def contest_json(c: Contest) -> dict[str, Any]:
    return {**attrs(c, "id code edition name place province track organisers"), "kind": c.kind.value}


def project_json(p: Project) -> dict[str, Any]:
    return {
        **attrs(
            p,
            "id name contest_id industry track province city amount_wan description team ip contact_name"
            " contact_phone contact_email employees revenue_wan assets_wan sme_industry ref credit_code"
            " team_lead",
        ),
        "group": p.group.value,
        "contest": p.contest.name if p.contest else None,
        "contest_kind": p.contest.kind.value if p.contest else None,
        "award": p.award.value,
        "stage": p.stage.value if p.stage else None,
        "funding_round": p.funding_round.value if p.funding_round else None,
        "needs": list(p.needs or []),
        **_stamps(p),
    }


def institution_json(i: Institution) -> dict[str, Any]:
    return {
        **attrs(
            i,
            "id name province city ticket_min_wan ticket_max_wan space_m2 capacity description contact_name"
            " contact_phone contact_email",
        ),
        "kind": i.kind.value,
        "side": i.kind.side,
        "industries": list(i.industries or []),
        "stages": list(i.stages or []),
        "services": list(i.services or []),
        "competitor_policy": i.competitor_policy or "avoid",
        **_stamps(i),
    }


def need_json(n: Need) -> dict[str, Any]:
    return {
        **attrs(n, "id institution_id title description quota"),
        "institution": n.institution.name if n.institution else None,
        "industries": list(n.industries or []),
        "stages": list(n.stages or []),
        "services": list(n.services or []),
        "deadline": iso(n.deadline),
        "status": n.status.value,
    }


def match_json(row: Any, m: Match, reasons: Any = None) -> dict[str, Any]:
    """Return a ranked match; `row` is its ORM row or the ranking core's profile of it (same fields).

    Args:
        reasons: the reasons shown (those this viewer may read); default: all of the match's.
    """
    if reasons is None:
        reasons = m.reasons
    if isinstance(row, InstitutionProfile):
        kind, industry = row.kind, None
    elif isinstance(row, ProjectProfile):  # its industries: the project's industry, when set
        kind, industry = None, (row.industries[0] if row.industries else None)
    else:
        kind = row.kind.value if isinstance(row, Institution) else None
        industry = getattr(row, "industry", None)
    return {
        "id": m.id,
        "name": row.name,
        "score": round(float(m.score), 2),
        "reasons": [
            {"text": r.text, "contribution": round(float(r.contribution), 3), "feature": r.feature}
            for r in reasons
        ],
        "kind": kind,
        "province": row.province,
        "industry": industry,
        # Only when the competition reason is shown (it draws on the institution's signed projects).
        "competitor_of": m.competitor_of if any(r.feature == "competitor" for r in reasons) else None,
    }


def form_values(row: Any, fields: list[str]) -> dict[str, Any]:
    """Return the editable values of a row as a form would show them."""
    data = (
        project_json(row)
        if isinstance(row, Project)
        else institution_json(row)
        if isinstance(row, Institution)
        else need_json(row)
    )
    return {f: data.get(f) for f in fields}


def project_view_json(p: Project, level: str) -> dict[str, Any]:
    """Return a project as a viewer at `level` (public, member, private) may see it.

    Fields above the viewer's level are left out and named in "hidden", so a client can tell
    "not shown to you" from "empty".
    """
    from app.access import project_fields

    allowed = project_fields(level)  # type: ignore[arg-type]
    data = project_json(p)
    out = {k: v for k, v in data.items() if k in allowed}
    out["hidden"] = sorted(k for k in data if k not in allowed)
    if "eligibility" in allowed:  # the entry conditions read private figures (head count, revenue, IP)
        from app.intake.eligibility import evaluate

        out["eligibility"] = [c.as_json() for c in evaluate(p)]
    else:
        out["hidden"].append("eligibility")
    return out


def institution_view_json(i: Institution, contacts: bool) -> dict[str, Any]:
    """Return an institution; its contact persons only for logged-in viewers."""
    from app.access import INSTITUTION_PRIVATE_FIELDS

    data = institution_json(i)
    if contacts:
        return {**data, "hidden": []}
    out = {k: v for k, v in data.items() if k not in INSTITUTION_PRIVATE_FIELDS}
    out["hidden"] = sorted(INSTITUTION_PRIVATE_FIELDS)
    return out
