"""Intake pages: the organiser's project list with entry conditions, duplicate review, contest filings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.access import (
    audit,
    can_see_contacts,
    current_user,
    deny,
    is_secretariat,
    organiser_contest_ids,
    roles_required,
)
from app.extensions import db
from app.intake import duplicates, eligibility, filings
from app.intake.similarity import shared_passages
from app.schemas import InputError
from app.web import records
from app.web.lists import paginate
from models import Contest, ContestFiling, DuplicatePair, DuplicateStatus, Project
from models.enums import Role
from models.intake import DUPLICATE_KIND_LABELS, DUPLICATE_STATUS_LABELS

bp = Blueprint("intake", __name__, url_prefix="/intake")

PAGE = 50


def init_app(app: Flask) -> None:
    """Template helpers: a project's entry conditions and duplicate flags, for those who may see them."""

    @app.template_global()
    def intake_flags(project: Project) -> dict[str, Any] | None:
        user = current_user()
        if (
            user is None
            or user.role not in (Role.ADMIN, Role.ORGANISER)
            or not can_see_contacts(user, project)
        ):
            return None
        conditions = eligibility.evaluate(project)
        return {
            "conditions": conditions,
            "summary": eligibility.summary(conditions),
            "pairs": duplicates.flags_for(db.session, project.id),
            "review": is_secretariat(user),
        }

    app.jinja_env.globals.update(
        ELIGIBILITY_LABELS=eligibility.STATUS_LABELS,
        DUPLICATE_KIND_LABELS=DUPLICATE_KIND_LABELS,
        DUPLICATE_STATUS_LABELS=DUPLICATE_STATUS_LABELS,
    )


# --- the organiser's projects, filtered by entry conditions -----------------------------------------


@bp.get("/projects")
@roles_required(Role.ADMIN, Role.ORGANISER)
def projects() -> Any:
    contests = records.my_contests()
    ids = {c.id for c in contests}
    wanted = request.args.get("eligibility", "")
    if wanted not in ("", "holds", "fails", "unknown"):
        wanted = ""
    contest = request.args.get("contest", "")
    chosen = next((c for c in contests if c.code == contest), None)
    stmt = select(Project).where(Project.archived_at.is_(None)).options(selectinload(Project.contest))
    stmt = (
        stmt.where(Project.contest_id == chosen.id)
        if chosen
        else stmt.where(Project.contest_id.in_(ids or {-1}))
    )
    rows = []
    counts = {"holds": 0, "fails": 0, "unknown": 0}
    for p in db.session.scalars(stmt.order_by(Project.id)):
        conditions = eligibility.evaluate(p)
        status = eligibility.summary(conditions)
        counts[status] += 1
        if not wanted or status == wanted:
            rows.append((p, status, [c for c in conditions if c.status != "holds"]))
    page = max(1, request.args.get("page", 1, type=int) or 1)
    flagged = _flagged_ids([p.id for p, _s, _c in rows[(page - 1) * PAGE : page * PAGE]])
    return render_template(
        "intake/projects.html",
        rows=rows[(page - 1) * PAGE : page * PAGE],
        total=len(rows),
        page=page,
        pages=max(1, -(-len(rows) // PAGE)),
        counts=counts,
        wanted=wanted,
        contests=contests,
        chosen=chosen,
        flagged=flagged,
    )


def _flagged_ids(ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = db.session.execute(
        select(DuplicatePair.project_a_id, DuplicatePair.project_b_id).where(
            DuplicatePair.status != DuplicateStatus.DISMISSED,
            DuplicatePair.project_a_id.in_(ids) | DuplicatePair.project_b_id.in_(ids),
        )
    )
    return {i for pair in rows for i in pair} & set(ids)


# --- duplicates: the secretariat reviews -------------------------------------------------------------


@bp.get("/duplicates")
@roles_required(Role.ADMIN)
def duplicate_list() -> Any:
    status = request.args.get("status", "open")
    try:
        wanted = DuplicateStatus(status)
    except ValueError:
        wanted = DuplicateStatus.OPEN
    stmt = duplicates.pairs_query(None, wanted).options(
        selectinload(DuplicatePair.project_a).selectinload(Project.contest),
        selectinload(DuplicatePair.project_b).selectinload(Project.contest),
    )
    page = paginate(stmt, (), PAGE)  # the query's own order (best score first)
    pairs = list(page["rows"])
    confirmed = _confirmed_by_contest()
    return render_template(
        "intake/duplicates.html",
        pairs=pairs,
        wanted=wanted,
        page=page["page"],
        confirmed=confirmed,
        statuses=list(DuplicateStatus),
    )


def _confirmed_by_contest() -> list[tuple[Contest, list[DuplicatePair]]]:
    """Return each contest with its confirmed duplicate pairs (the plan's rule: 取消参赛资格)."""
    stmt = duplicates.pairs_query(None, DuplicateStatus.CONFIRMED).options(
        selectinload(DuplicatePair.project_a).selectinload(Project.contest),
        selectinload(DuplicatePair.project_b).selectinload(Project.contest),
    )
    by_contest: dict[int, tuple[Contest, list[DuplicatePair]]] = {}
    for pair in db.session.scalars(stmt):
        for p in (pair.project_a, pair.project_b):
            entry = by_contest.setdefault(p.contest_id, (p.contest, []))
            if pair not in entry[1]:
                entry[1].append(pair)
    return sorted(by_contest.values(), key=lambda e: e[0].code)


@bp.get("/duplicates/<int:ident>")
@roles_required(Role.ADMIN)
def duplicate_detail(ident: int) -> Any:
    pair = db.session.get(DuplicatePair, ident) or abort(404)
    a, b = pair.project_a, pair.project_b
    desc_a, desc_b = shared_passages(a.description, b.description)
    return render_template("intake/duplicate.html", pair=pair, a=a, b=b, desc_a=desc_a, desc_b=desc_b)


@bp.post("/duplicates/<int:ident>")
@roles_required(Role.ADMIN)
def duplicate_decide(ident: int) -> Any:
    pair = db.session.get(DuplicatePair, ident) or abort(404)
    action = request.form.get("action", "")
    status = {
        "confirm": DuplicateStatus.CONFIRMED,
        "dismiss": DuplicateStatus.DISMISSED,
        "reopen": DuplicateStatus.OPEN,
    }.get(action)
    if status is None:
        abort(400, description="操作应为确认重复、排除或重新审核")
    note = (request.form.get("note") or "").strip()[:1000]
    from app.schemas import has_control

    if has_control(note, multiline=True):
        abort(400, description="备注不能包含控制字符")
    user = current_user()
    duplicates.decide(db.session, pair, status, user.id if user else None, note)
    audit(f"duplicate.{action}", "duplicate_pair", pair.id, projects=[pair.project_a_id, pair.project_b_id])
    db.session.commit()
    flash(
        {
            "confirm": "已确认为重复参赛",
            "dismiss": "已排除，此对项目不会再被标记",
            "reopen": "已重新列入待审核",
        }[action]
    )
    return redirect(url_for("intake.duplicate_detail", ident=pair.id))


# --- filings (备案表) --------------------------------------------------------------------------------


@bp.get("/filings")
@roles_required(Role.ADMIN, Role.ORGANISER)
def filing_list() -> Any:
    contests = records.my_contests()
    filed = {
        f.contest_id: f
        for f in db.session.scalars(
            select(ContestFiling).where(ContestFiling.contest_id.in_([c.id for c in contests] or [-1]))
        )
    }
    return render_template("intake/filings.html", contests=contests, filed=filed)


def _own_contest(code: str) -> Contest:
    contest = db.session.scalar(select(Contest).where(Contest.code == code)) or abort(404)
    ids = organiser_contest_ids(current_user())
    if ids is not None and contest.id not in ids:
        deny(f"filing of contest {code}", "只能填写本单位负责赛事的备案表")
    return contest


@bp.route("/filings/<code>", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.ORGANISER)
def filing_form(code: str) -> Any:
    contest = _own_contest(code)
    row = db.session.scalar(select(ContestFiling).where(ContestFiling.contest_id == contest.id))
    errors: dict[str, str] = {}
    form: dict[str, Any] = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in filings.LABELS}
        form["declaration"] = request.form.get("declaration", "")
        try:
            values = filings.check_filing(contest, form)
        except InputError as exc:
            errors = exc.fields
        else:
            user = current_user()
            saved = filings.save_filing(db.session, contest, values, user.id if user else None)
            db.session.flush()
            audit("filing.save", "contest_filing", saved.id, contest=contest.code)
            db.session.commit()
            flash("备案表已保存")
            return redirect(url_for("intake.filing_form", code=contest.code))
    elif row is not None:
        form = {k: getattr(row, k) for k in filings.LABELS}
    else:
        form = {
            "name": contest.name,
            "kind": _default_kind(contest),
            "field": contest.track or "",
            "final_venue": contest.place or "",
            "organisers": contest.organisers or "",
        }
    return render_template(
        "intake/filing.html",
        contest=contest,
        form=form,
        errors=errors,
        row=row,
        kinds=list(filings.FILING_KINDS),
        labels=filings.LABELS,
        plan_max=filings.PLAN_MAX,
    ), (422 if errors else 200)


def _default_kind(contest: Contest) -> str:
    return next((k for k, v in filings.FILING_KINDS.items() if v is contest.kind), "")
