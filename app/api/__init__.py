"""The JSON API under /api: same operations as the pages, JSON in and out, errors as JSON."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from app import services
from app.access import (
    can_delete_project,
    can_edit_institution,
    can_edit_project,
    can_see_contacts,
    can_see_institution_contacts,
    can_view_institution_private,
    check_need_write,
    check_project_write,
    contact_project_ids,
    current_user,
    deny,
    is_project_member,
    is_secretariat,
    locked_project_fields,
    login_required,
    need_owner_default,
    project_level,
    public,
    roles_required,
    visible_reasons,
)
from app.extensions import db
from app.params import institution_filter, int_param, k_param, project_filter, side_param
from app.schemas import InputError, InstitutionIn, NeedIn, ProjectIn, validate
from app.serialize import (
    contest_json,
    institution_json,
    institution_view_json,
    match_json,
    need_json,
    project_json,
    project_view_json,
)
from models import Contest, Institution, Need, Project
from models.enums import Role

bp = Blueprint("api", __name__, url_prefix="/api")


def _body() -> dict[str, Any]:
    """Return the JSON object in the request body, or raise a 4xx with a clear message."""
    if not request.is_json:
        abort(415, description="请求体应为 JSON（Content-Type: application/json）")
    try:
        data = request.get_json(force=True, silent=False)
    except RequestEntityTooLarge:
        raise
    except Exception:
        raise InputError({"_body": "请求体不是合法的 JSON"}, "请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise InputError({"_body": "请求体应为 JSON 对象"}, "请求体应为 JSON 对象")
    return data


def _page(stmt: Any, order: Any, to_json: Any, prepare: Any = None) -> Any:
    """One page of a list, ordered by id: ?after=<id> (keyset: the items after that id; the answer's `next`
    is the cursor of the following page, null on the last), or ?page=N (OFFSET, as before)."""
    args = request.args
    per_page = int_param(args, "per_page", int(current_app.config["PAGE_SIZE"]), 1, int(current_app.config["API_MAX_PAGE_SIZE"]), "每页条数")
    page = int_param(args, "page", 1, 1, 1_000_000, "页码")
    after = int_param(args, "after", 0, 0, 2**62, "分页游标") if (args.get("after") or "").strip() else None
    session = db.session
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    if after is not None:
        stmt = stmt.where(order > after)
    else:
        stmt = stmt.offset((page - 1) * per_page)
    rows = session.scalars(stmt.order_by(order).limit(per_page + 1)).all()
    more, rows = len(rows) > per_page, rows[:per_page]
    if prepare is not None:
        to_json = prepare(rows)
    return jsonify(
        {
            "items": [to_json(r) for r in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": (total + per_page - 1) // per_page,
            "next": rows[-1].id if more else None,
        }
    )


def _get_or_404(model: Any, ident: int, archived: bool = False) -> Any:
    """Return the row, or answer 404.

    An archived record answers 404 like a missing one, except, with archived=True (reads, deletes and
    restores), to the secretariat; nobody edits or ranks an archived record until it is restored.
    """
    row = db.session.get(model, ident)
    if row is None or (row_archived(row) and not (archived and is_secretariat(current_user()))):
        abort(404, description="记录不存在")
    return row


def row_archived(row: Any) -> bool:
    """Return True for an archived project, institution or need."""
    return getattr(row, "archived_at", None) is not None


def _marked(out: dict[str, Any], row: Any) -> dict[str, Any]:
    """Add archived_at to the JSON of an archived record (only the secretariat ever receives one)."""
    if row.archived_at is not None:
        out["archived_at"] = row.archived_at.isoformat()
    return out


def _removed(row: Any, outcome: str) -> Any:
    """Answer a delete: 204 when the record is gone, 200 {"archived": true} when it was archived."""
    if outcome == "deleted":
        return "", 204
    return jsonify({"id": row.id, "archived": True, "archived_at": row.archived_at.isoformat()}), 200


def _merged(current: dict[str, Any], patch: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    data = {f: current.get(f) for f in fields}
    data.update(patch)
    return data


PROJECT_FIELDS = [
    "name", "group", "contest_id", "award", "industry", "track", "province", "city", "stage", "amount_wan",
    "funding_round", "description", "team", "ip", "needs", "contact_name", "contact_phone", "contact_email",
    "employees", "revenue_wan", "assets_wan", "sme_industry", "ref", "credit_code", "team_lead",
]
INSTITUTION_FIELDS = [
    "name", "kind", "province", "city", "industries", "stages", "ticket_min_wan", "ticket_max_wan", "services",
    "space_m2", "capacity", "description", "contact_name", "contact_phone", "contact_email",
]
NEED_FIELDS = ["institution_id", "title", "description", "industries", "stages", "services", "quota", "deadline"]


def _projects_out(rows: Any) -> Any:
    """Return a serializer for a page of projects, each at the viewer's level (one contacts query)."""
    user = current_user()
    contacts = contact_project_ids(user, [p.id for p in rows], {p.id: p.contest_id for p in rows})
    return lambda p: project_view_json(p, project_level(user, p, contacts))


def _project_out(p: Project) -> dict[str, Any]:
    return project_view_json(p, project_level(current_user(), p))


def _institution_out(i: Institution) -> dict[str, Any]:
    return institution_view_json(i, can_see_institution_contacts(current_user()))


def _match_out(row: Any, m: Any, project: Project, inst: Institution, contacts: bool | None = None) -> dict[str, Any]:
    reasons = visible_reasons(current_user(), project, inst, m.reasons, contacts)
    return match_json(row, replace(m, reasons=reasons))


@bp.get("/openapi.json")
@public
def openapi() -> Any:
    """The OpenAPI 3.1 description of this API."""
    from app.api.openapi import build_openapi

    return jsonify(build_openapi(current_app))


@bp.get("/contests")
@public
def contests() -> Any:
    rows = db.session.scalars(select(Contest).order_by(Contest.code)).all()
    return jsonify({"items": [contest_json(c) for c in rows], "total": len(rows)})


# --- projects ----------------------------------------------------------------------------------------


@bp.get("/projects")
@public
def list_projects() -> Any:
    return _page(services.project_query(project_filter(request.args)), Project.id, None, _projects_out)


@bp.post("/projects")
@roles_required(Role.ADMIN, Role.ORGANISER)
def create_project() -> Any:
    values = validate(ProjectIn, _body())
    check_project_write(current_user(), values)
    p = services.save_project(db.session, values)
    return jsonify(_project_out(p)), 201


@bp.get("/projects/<int:ident>")
@public
def get_project(ident: int) -> Any:
    p = _get_or_404(Project, ident, archived=True)
    return jsonify(_marked(_project_out(p), p))


@bp.route("/projects/<int:ident>", methods=["PUT", "PATCH"])
@login_required
def update_project(ident: int) -> Any:
    p = _get_or_404(Project, ident)
    user = current_user()
    if not can_edit_project(user, p):
        deny(f"may not edit project {ident}", "只能编辑自己的项目或自己负责赛事的项目")
    body = _body()
    data = _merged(project_json(p), body, PROJECT_FIELDS) if request.method == "PATCH" else body
    values = validate(ProjectIn, locked_project_fields(user, p, data))
    check_project_write(user, values, p)
    return jsonify(_project_out(services.save_project(db.session, values, p)))


@bp.delete("/projects/<int:ident>")
@roles_required(Role.ADMIN, Role.ORGANISER)
def delete_project(ident: int) -> Any:
    p = _get_or_404(Project, ident, archived=True)
    if not can_delete_project(current_user(), p):
        deny(f"may not delete project {ident}", "只能删除自己负责赛事的项目")
    return _removed(p, services.delete_project(db.session, p))


@bp.post("/projects/<int:ident>/restore")
@roles_required(Role.ADMIN)
def restore_project(ident: int) -> Any:
    p = _get_or_404(Project, ident, archived=True)
    services.restore_project(db.session, p)
    return jsonify(_project_out(p))


@bp.get("/projects/<int:ident>/matches")
@public
def project_matches(ident: int) -> Any:
    p = _get_or_404(Project, ident)
    side = side_param(request.args)
    k = k_param(request.args)
    user = current_user()
    ranked = services.matches_for_project(
        db.session, ident, side, k, institution_filter(request.args, kind_key="institution_kind"),
        public=user is None, private=is_secretariat(user), own=is_project_member(user, ident),
    )
    contacts = can_see_contacts(current_user(), p)
    items = [_match_out(r.row, r.match, p, r.row, contacts) for r in ranked]
    return jsonify({"project_id": ident, "kind": side, "k": k, "items": items})


# --- institutions ------------------------------------------------------------------------------------


@bp.get("/institutions")
@public
def list_institutions() -> Any:
    return _page(services.institution_query(institution_filter(request.args)), Institution.id, _institution_out)


@bp.post("/institutions")
@roles_required(Role.ADMIN)
def create_institution() -> Any:
    i = services.save_institution(db.session, validate(InstitutionIn, _body()))
    return jsonify(_institution_out(i)), 201


@bp.get("/institutions/<int:ident>")
@public
def get_institution(ident: int) -> Any:
    i = _get_or_404(Institution, ident, archived=True)
    return jsonify(_marked(_institution_out(i), i))


@bp.route("/institutions/<int:ident>", methods=["PUT", "PATCH"])
@roles_required(Role.ADMIN, Role.INSTITUTION)
def update_institution(ident: int) -> Any:
    i = _get_or_404(Institution, ident)
    if not can_edit_institution(current_user(), i):
        deny(f"may not edit institution {ident}", "只能编辑本机构的信息")
    body = _body()
    data = _merged(institution_json(i), body, INSTITUTION_FIELDS) if request.method == "PATCH" else body
    return jsonify(_institution_out(services.save_institution(db.session, validate(InstitutionIn, data), i)))


@bp.delete("/institutions/<int:ident>")
@roles_required(Role.ADMIN)
def delete_institution(ident: int) -> Any:
    i = _get_or_404(Institution, ident, archived=True)
    return _removed(i, services.delete_institution(db.session, i))


@bp.post("/institutions/<int:ident>/restore")
@roles_required(Role.ADMIN)
def restore_institution(ident: int) -> Any:
    i = _get_or_404(Institution, ident, archived=True)
    services.restore_institution(db.session, i)
    return jsonify(_institution_out(i))


@bp.get("/institutions/<int:ident>/matches")
@public
def institution_matches(ident: int) -> Any:
    inst = _get_or_404(Institution, ident)
    k = k_param(request.args)
    user = current_user()
    ranked = services.matches_for_institution(
        db.session, ident, k, project_filter(request.args), public=user is None,
        private=can_view_institution_private(user, ident),
    )
    contacts = contact_project_ids(current_user(), [r.row.id for r in ranked])
    items = [_match_out(r.row, r.match, r.row, inst, r.row.id in contacts) for r in ranked]
    return jsonify({"institution_id": ident, "k": k, "items": items})


# --- needs -------------------------------------------------------------------------------------------


@bp.get("/needs")
@login_required
def list_needs() -> Any:
    stmt = select(Need).where(Need.archived_at.is_(None))
    inst = request.args.get("institution_id")
    if inst:
        stmt = stmt.where(Need.institution_id == int_param(request.args, "institution_id", 0, 1, 2**31 - 1, "发布机构"))
    return _page(stmt, Need.id, need_json)


@bp.post("/needs")
@roles_required(Role.ADMIN, Role.INSTITUTION)
def create_need() -> Any:
    user = current_user()
    check_need_write(user, None)
    values = validate(NeedIn, need_owner_default(user, _body()))
    check_need_write(user, values)
    n = services.save_need(db.session, values)
    return jsonify(need_json(n)), 201


@bp.get("/needs/<int:ident>")
@login_required
def get_need(ident: int) -> Any:
    n = _get_or_404(Need, ident, archived=True)
    return jsonify(_marked(need_json(n), n))


@bp.route("/needs/<int:ident>", methods=["PUT", "PATCH"])
@roles_required(Role.ADMIN, Role.INSTITUTION)
def update_need(ident: int) -> Any:
    n = _get_or_404(Need, ident)
    check_need_write(current_user(), None, n)
    body = _body()
    data = _merged(need_json(n), body, NEED_FIELDS) if request.method == "PATCH" else body
    values = validate(NeedIn, need_owner_default(current_user(), data))
    check_need_write(current_user(), values, n)
    return jsonify(need_json(services.save_need(db.session, values, n)))


@bp.delete("/needs/<int:ident>")
@roles_required(Role.ADMIN, Role.INSTITUTION)
def delete_need(ident: int) -> Any:
    n = _get_or_404(Need, ident, archived=True)
    check_need_write(current_user(), None, n)
    return _removed(n, services.delete_need(db.session, n))


@bp.post("/needs/<int:ident>/restore")
@roles_required(Role.ADMIN)
def restore_need(ident: int) -> Any:
    n = _get_or_404(Need, ident, archived=True)
    if n.institution.archived_at is not None:
        raise InputError({"institution_id": "发布机构已归档，请先恢复机构"}, "发布机构已归档，请先恢复机构")
    services.restore_need(db.session, n)
    return jsonify(need_json(n))


@bp.get("/needs/<int:ident>/matches")
@login_required
def need_matches(ident: int) -> Any:
    n = _get_or_404(Need, ident)
    k = k_param(request.args)
    ranked = services.matches_for_need(
        db.session, n, k, project_filter(request.args),
        private=can_view_institution_private(current_user(), n.institution_id),
    )
    contacts = contact_project_ids(current_user(), [r.row.id for r in ranked])
    items = [_match_out(r.row, r.match, r.row, n.institution, r.row.id in contacts) for r in ranked]
    return jsonify({"need_id": ident, "k": k, "items": items})


# --- bulk import -------------------------------------------------------------------------------------


@bp.post("/imports/<kind>")
@roles_required(Role.ADMIN, Role.ORGANISER)
def import_file(kind: str) -> Any:
    """Import a CSV/XLSX file of projects or institutions (multipart field `file`): all rows or none."""
    from app.web.imports import KINDS, run_import

    if kind not in KINDS:
        abort(404, description="导入类型应为 projects 或 institutions")
    report, error = run_import(kind)
    if error:
        raise InputError({"file": error}, error)
    if not report.ok:
        return jsonify({
            "error": {
                "status": 422, "code": "validation_error", "message": f"{len(report.errors)} 行有误，未导入任何数据",
                "rows": [{"row": row, "fields": fields} for row, fields in report.errors],
            }
        }), 422
    return jsonify({
        "kind": kind, "rows": report.rows, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "suspected_duplicates": [{"row": r, "message": m} for r, m in report.suspects],
        "eligibility_warnings": [
            {"row": r, "conditions": [c.as_json() for c in conditions]} for r, conditions in report.warnings
        ],
    }), 201
