"""The JSON API under /api: same operations as the pages, JSON in and out, errors as JSON.

__init__.py   the records' routes (projects, institutions, needs, matches, imports); one PUT/PATCH path
models.py     what the routes read from query strings and answer, as pydantic models
openapi.py    @operation (each route's declaration, which also checks its query and body) and the
              document /api/openapi.json, generated from the url map and the declarations
answers.py    the anonymous ranked-list answers kept per ranking state (@kept_for_visitors)

The pipeline (app.pipeline.api), the alerts (app.alerts.views.api_bp) and the feedback figures
(app.feedback.views) have their own API blueprints; create_app registers each with the rate limit
and the CSRF exemption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from app import feedback, services
from app.access import (
    can_delete_project,
    can_edit_institution,
    can_edit_project,
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
    project_level,
    public,
    readable_reasons,
    roles_required,
    visible_reasons,
)
from app.api.answers import kept_for_visitors
from app.api.models import (
    AnyObject,
    Archived,
    ContestList,
    ImportFile,
    ImportReport,
    InstitutionListQuery,
    InstitutionMatches,
    InstitutionOut,
    InstitutionPage,
    NeedListQuery,
    NeedMatches,
    NeedOut,
    NeedPage,
    ProjectListQuery,
    ProjectMatches,
    ProjectMatchQuery,
    ProjectOut,
    ProjectPage,
    ProjectRankQuery,
)
from app.api.openapi import Answer, check_body, operation
from app.extensions import db
from app.params import institution_filter, int_param, k_param, project_filter, side_param
from app.schemas import MAX_ID, InputError, InstitutionIn, NeedIn, ProjectIn, validate
from app.serialize import (
    contest_json,
    institution_json,
    institution_view_json,
    match_json,
    need_json,
    project_json,
    project_view_json,
)
from app.web.lists import paginate
from models import Contest, Institution, Need, Project
from models.enums import Role

R = TypeVar("R")

bp = Blueprint("api", __name__, url_prefix="/api")


def _body() -> dict[str, Any]:
    """Return the JSON object in the request body, or raise a 4xx with a clear message.

    The body is checked against the schema the view's @operation publishes (app.api.openapi.check_body).
    """
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
    check_body(data)
    return data


def _page(stmt: Any, order: Any, to_json: Any, prepare: Any = None) -> Any:
    """Answer one page of a list as {items, page, per_page, total, pages, next}.

    ?page=N reads it through the one paginator (app.web.lists.paginate); on a list ordered by one column
    (the records' id), ?after=<id> reads the items after that id by keyset instead, and `next` is the
    cursor of the following page (null on the last).

    Args:
        order: an ORDER BY expression, or a tuple of them.
        to_json: row -> JSON object; or None with `prepare`: rows -> such a function (one query per page).
    """
    args = request.args
    config = current_app.config
    per_page = int_param(
        args, "per_page", int(config["PAGE_SIZE"]), 1, int(config["API_MAX_PAGE_SIZE"]), "每页条数"
    )
    keyset = not isinstance(order, tuple)
    after = (
        int_param(args, "after", 0, 0, 2**62, "分页游标")
        if keyset and (args.get("after") or "").strip()
        else None
    )
    if after is None:
        page = paginate(stmt, order if isinstance(order, tuple) else (order,), per_page)
        rows, number, total, pages = page["rows"], page["page"], page["total"], page["pages"]
        more = number < pages
    else:
        total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        fetched = db.session.scalars(stmt.where(order > after).order_by(order).limit(per_page + 1)).all()
        more, rows = len(fetched) > per_page, fetched[:per_page]
        number, pages = int_param(args, "page", 1, 1, 1_000_000, "页码"), max(1, -(-total // per_page))
    if prepare is not None:
        to_json = prepare(rows)
    return jsonify(
        {
            "items": [to_json(r) for r in rows],
            "page": number,
            "per_page": per_page,
            "total": total,
            "pages": pages,
            "next": rows[-1].id if keyset and more and rows else None,
        }
    )


def _ranked_answer(
    query: str,
    ident: int,
    k: int,
    ranked: list[Any],
    items: list[dict[str, Any]],
    head: dict[str, Any] | None = None,
    **log: Any,
) -> Response:
    """Answer a ranked list (`query`: project, institution or need; `head`: fields after its id) and log
    what it shows; a logged list's "list_id" opens an item with ?from=<list_id>&pos=<n>.

    Args:
        log: passed to feedback.log_shown (the side ranked, a need's institution).
    """
    shown = feedback.log_shown(query, ident, ranked, surface="api", **log)
    listed = {"list_id": shown} if shown else {}
    return jsonify({f"{query}_id": ident, **(head or {}), "k": k, "items": items, **listed})


def _found(row: R | None) -> R:
    """Return the row, or answer 404 when there is none."""
    if row is None:
        abort(404, description="记录不存在")
    return row


def _get_or_404(model: Any, ident: int, archived: bool = False) -> Any:
    """Return the row, or answer 404.

    An archived record answers 404 like a missing one, except, with archived=True (reads, deletes and
    restores), to the secretariat; nobody edits or ranks an archived record until it is restored.
    """
    row = _found(db.session.get(model, ident))
    if row_archived(row) and not (archived and is_secretariat(current_user())):
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


def ticket_range(data: dict[str, Any]) -> dict[str, Any]:
    """Return an institution's input with its two ticket bounds in order (the API takes them either way).

    A range is the same whichever bound is named first; the form, where a person typed them, says so
    instead (InstitutionIn refuses a lower bound above the upper one).
    """
    lo, hi = data.get("ticket_min_wan"), data.get("ticket_max_wan")
    if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:  # the gate refused booleans
        return {**data, "ticket_min_wan": hi, "ticket_max_wan": lo}
    return data


#: The fields of each record a form or a PUT sends (the input models' fields).
PROJECT_FIELDS = list(ProjectIn.model_fields)
INSTITUTION_FIELDS = list(InstitutionIn.model_fields)
NEED_FIELDS = list(NeedIn.model_fields)

_DELETED = Answer(None, "无对接记录：已删除")
_ARCHIVED = Answer(Archived, "有对接记录：已归档（列表与匹配中隐藏，对接历史与统计保留）")


def _projects_out(rows: Any) -> Any:
    """Return a serializer for a page of projects, each at the viewer's level (one contacts query)."""
    user = current_user()
    contacts = contact_project_ids(user, [p.id for p in rows], {p.id: p.contest_id for p in rows})
    return lambda p: project_view_json(p, project_level(user, p, contacts))


def _project_out(p: Project) -> dict[str, Any]:
    return project_view_json(p, project_level(current_user(), p))


def _institution_out(i: Institution) -> dict[str, Any]:
    return institution_view_json(i, can_see_institution_contacts(current_user()))


def _match_out(
    row: Any, m: Any, project: Project, inst: Institution, contacts: bool | None = None
) -> dict[str, Any]:
    return match_json(row, m, visible_reasons(current_user(), project, inst, m.reasons, contacts))


def _ranked_out(
    row: Any, m: Any, user: Any, contacts: bool, pipeline: bool, project_text: str, inst_text: str
) -> dict[str, Any]:
    """Return a match of the ranked lists read from the ranking core's profiles, with the reasons this
    viewer may read (access.readable_reasons; the profiles' texts are the records' ranked texts)."""
    reasons = readable_reasons(user, m.reasons, contacts, pipeline, lambda: project_text + " " + inst_text)
    return match_json(row, m, reasons)


@bp.get("/openapi.json")
@public
@operation("本 API 的 OpenAPI 描述（由路由与 pydantic 模型生成）", answers={200: AnyObject})
def openapi() -> Any:
    """The OpenAPI 3.1 description of this API."""
    from app.api.openapi import build_openapi

    return jsonify(build_openapi(current_app))


@bp.get("/contests")
@public
@operation("赛事目录", answers={200: ContestList})
def contests() -> Any:
    rows = db.session.scalars(select(Contest).order_by(Contest.code)).all()
    return jsonify({"items": [contest_json(c) for c in rows], "total": len(rows)})


# --- projects ----------------------------------------------------------------------------------------


@bp.get("/projects")
@public
@operation("项目展示列表（按调用者可见范围返回字段）", query=ProjectListQuery, answers={200: ProjectPage})
def list_projects() -> Any:
    return _page(services.project_query(project_filter(request.args)), Project.id, None, _projects_out)


@bp.post("/projects")
@roles_required(Role.ADMIN, Role.ORGANISER)
@operation(
    "新增项目（秘书处；赛事组织方限本人负责赛事）",
    body=ProjectIn,
    answers={201: ProjectOut},
    errors=(403, 404),
)
def create_project() -> Any:
    values = validate(ProjectIn, _body())
    check_project_write(current_user(), values)
    p = services.save_project(db.session, values)
    return jsonify(_project_out(p)), 201


@bp.get("/projects/<int:ident>/matches")
@public
@operation("为项目推荐机构", query=ProjectMatchQuery, answers={200: ProjectMatches})
@kept_for_visitors(
    lambda: (
        (side_param(request.args), k_param(request.args))
        if institution_filter(request.args, kind_key="institution_kind").is_empty()
        else None
    )
)
def project_matches(ident: int) -> Any:
    # The ranking core's profiles of the project and of the institutions shown hold every field the
    # answer shows: no row is read (a record changed in another worker: see app.index_sync).
    p = _found(services.ranked_project(ident))
    side = side_param(request.args)
    k = k_param(request.args)
    user = current_user()
    ranked = services.matches_for_project(
        db.session,
        ident,
        side,
        k,
        institution_filter(request.args, kind_key="institution_kind"),
        public=user is None,
        private=is_secretariat(user),
        own=is_project_member(user, ident),
        member_of=user.institution_id if user is not None else None,
        profiles=True,
    )
    contacts = ident in contact_project_ids(user, [ident], {ident: p.contest_id})
    items = [
        _ranked_out(
            r.row, r.match, user, contacts, can_view_institution_private(user, r.row.id), p.text, r.row.text
        )
        for r in ranked
    ]
    return _ranked_answer("project", ident, k, ranked, items, {"kind": side}, side=side)


# --- institutions ------------------------------------------------------------------------------------


@bp.get("/institutions")
@public
@operation("机构名录", query=InstitutionListQuery, answers={200: InstitutionPage})
def list_institutions() -> Any:
    return _page(
        services.institution_query(institution_filter(request.args)), Institution.id, _institution_out
    )


@bp.post("/institutions")
@roles_required(Role.ADMIN)
@operation("新增机构（秘书处）", body=InstitutionIn, answers={201: InstitutionOut})
def create_institution() -> Any:
    i = services.save_institution(db.session, validate(InstitutionIn, ticket_range(_body())))
    return jsonify(_institution_out(i)), 201


@bp.get("/institutions/<int:ident>/matches")
@public
@operation("为机构推荐项目", query=ProjectRankQuery, answers={200: InstitutionMatches})
@kept_for_visitors(lambda: k_param(request.args) if project_filter(request.args).is_empty() else None)
def institution_matches(ident: int) -> Any:
    # As project_matches: the answer is made from the ranking core's profiles, no row is read.
    inst = _found(services.ranked_institution(ident))
    k = k_param(request.args)
    user = current_user()
    private = can_view_institution_private(user, ident)
    ranked = services.matches_for_institution(
        db.session,
        ident,
        k,
        project_filter(request.args),
        public=user is None,
        private=private,
        profiles=True,
    )
    contacts = contact_project_ids(
        user, [r.row.id for r in ranked], {r.row.id: r.row.contest_id for r in ranked}
    )
    items = [
        _ranked_out(r.row, r.match, user, r.row.id in contacts, private, r.row.text, inst.text)
        for r in ranked
    ]
    return _ranked_answer("institution", ident, k, ranked, items)


# --- needs -------------------------------------------------------------------------------------------


@bp.get("/needs")
@login_required
@operation("对接需求列表（需登录）", query=NeedListQuery, answers={200: NeedPage})
def list_needs() -> Any:
    stmt = select(Need).where(Need.archived_at.is_(None))
    inst = request.args.get("institution_id")
    if inst:
        stmt = stmt.where(
            Need.institution_id == int_param(request.args, "institution_id", 0, 1, MAX_ID, "发布机构")
        )
    return _page(stmt, Need.id, need_json)


@bp.post("/needs")
@roles_required(Role.ADMIN, Role.INSTITUTION)
@operation("发布对接需求（机构成员限本机构）", body=NeedIn, answers={201: NeedOut}, errors=(403, 404))
def create_need() -> Any:
    user = current_user()
    check_need_write(user, None)
    values = validate(NeedIn, _body())
    check_need_write(user, values)
    n = services.save_need(db.session, values)
    return jsonify(need_json(n)), 201


@bp.get("/needs/<int:ident>/matches")
@login_required
@operation("符合需求的项目", query=ProjectRankQuery, answers={200: NeedMatches})
def need_matches(ident: int) -> Any:
    n = _get_or_404(Need, ident)
    k = k_param(request.args)
    ranked = services.matches_for_need(
        db.session,
        n,
        k,
        project_filter(request.args),
        private=can_view_institution_private(current_user(), n.institution_id),
    )
    contacts = contact_project_ids(current_user(), [r.row.id for r in ranked])
    items = [_match_out(r.row, r.match, r.row, n.institution, r.row.id in contacts) for r in ranked]
    return _ranked_answer("need", ident, k, ranked, items, institution_id=n.institution_id)


# --- one record: read, delete, restore (one registration for every record kind) ---------------------


def _may_delete_project(user: Any, p: Project) -> None:
    if not can_delete_project(user, p):
        deny(f"may not delete project {p.id}", "只能删除自己负责赛事的项目")


def _restore_need(session: Any, n: Need) -> None:
    if n.institution.archived_at is not None:  # the state of another record, not a bad value: 409
        message = "发布机构已归档，请先恢复机构"
        raise InputError({"institution_id": message}, message, status=409)
    services.restore_need(session, n)


@dataclass(frozen=True)
class Record:
    """The routes of one kind of record under /api/<kind>s/<id>: GET, DELETE and POST .../restore."""

    kind: str
    what: str
    model: type[Any]
    out: Callable[[Any], dict[str, Any]]
    answer: type[Any]
    read: Callable[..., Any]
    delete: Callable[..., Any]
    #: (user, row): refuse (403) a caller who may not delete this record (beyond the role rule).
    may_delete: Callable[[Any, Any], None]
    remove: Callable[[Any, Any], Any]
    restore: Callable[[Any, Any], None]
    delete_summary: str
    restore_errors: tuple[int, ...] = ()


def _reading(r: Record) -> Callable[[int], Any]:
    def view(ident: int) -> Any:
        row = _get_or_404(r.model, ident, archived=True)
        return jsonify(_marked(r.out(row), row))

    return view


def _deleting(r: Record) -> Callable[[int], Any]:
    def view(ident: int) -> Any:
        row = _get_or_404(r.model, ident, archived=True)
        r.may_delete(current_user(), row)
        return _removed(row, r.remove(db.session, row))

    return view


def _restoring(r: Record) -> Callable[[int], Any]:
    def view(ident: int) -> Any:
        row = _get_or_404(r.model, ident, archived=True)
        r.restore(db.session, row)
        return jsonify(r.out(row))

    return view


RECORDS = (
    Record(
        "project",
        "项目",
        Project,
        _project_out,
        ProjectOut,
        public,
        roles_required(Role.ADMIN, Role.ORGANISER),
        _may_delete_project,
        services.delete_project,
        services.restore_project,
        "删除项目（有对接记录的归档，否则删除）",
    ),
    Record(
        "institution",
        "机构",
        Institution,
        _institution_out,
        InstitutionOut,
        public,
        roles_required(Role.ADMIN),
        lambda _user, _i: None,
        services.delete_institution,
        services.restore_institution,
        "删除机构（秘书处；有对接记录的连同需求归档，否则连同需求删除）",
    ),
    Record(
        "need",
        "对接需求",
        Need,
        need_json,
        NeedOut,
        login_required,
        roles_required(Role.ADMIN, Role.INSTITUTION),
        lambda user, n: check_need_write(user, None, n),
        services.delete_need,
        _restore_need,
        "删除对接需求（有对接记录的归档，否则删除）",
        (409,),
    ),
)

for _r in RECORDS:
    _one = f"/{_r.kind}s/<int:ident>"
    _get = operation(f"{_r.what}详情", answers={200: _r.answer})(_reading(_r))
    bp.add_url_rule(_one, f"get_{_r.kind}", _r.read(_get), methods=["GET"])
    _delete = operation(_r.delete_summary, answers={204: _DELETED, 200: _ARCHIVED})(_deleting(_r))
    bp.add_url_rule(_one, f"delete_{_r.kind}", _r.delete(_delete), methods=["DELETE"])
    _restore = operation(
        f"恢复已归档的{_r.what}（秘书处" + ("；发布机构已归档时 409）" if _r.restore_errors else "）"),
        answers={200: _r.answer},
        errors=_r.restore_errors,
    )(_restoring(_r))
    bp.add_url_rule(
        f"{_one}/restore", f"restore_{_r.kind}", roles_required(Role.ADMIN)(_restore), methods=["POST"]
    )


# --- changes: one PUT/PATCH path for every record kind ---------------------------------------------


@dataclass(frozen=True)
class Editable:
    """How PUT (the whole record) and PATCH (some fields, the rest kept) change one kind of record."""

    model: type[Any]
    schema: type[Any]
    #: The stored values, as the input model reads them (PATCH starts from these).
    current: Callable[[Any], dict[str, Any]]
    #: (user, row): refuse (403) a caller who may not edit this record at all.
    may_edit: Callable[[Any, Any], None]
    #: (user, row, data) -> data: what the caller may not change is put back (locked fields, owner).
    prepare: Callable[[Any, Any, dict[str, Any]], dict[str, Any]]
    #: (user, values, row): refuse values outside the caller's scope (another contest, institution).
    may_write: Callable[[Any, Any, Any], None]
    save: Callable[[Any, Any, Any], Any]
    out: Callable[[Any], dict[str, Any]]


def _may_edit_project(user: Any, p: Project) -> None:
    if not can_edit_project(user, p):
        deny(f"may not edit project {p.id}", "只能编辑自己的项目或自己负责赛事的项目")


def _may_edit_institution(user: Any, i: Institution) -> None:
    if not can_edit_institution(user, i):
        deny(f"may not edit institution {i.id}", "只能编辑本机构的信息")


PROJECTS = Editable(
    Project,
    ProjectIn,
    project_json,
    _may_edit_project,
    locked_project_fields,
    lambda user, values, p: check_project_write(user, values, p),
    services.save_project,
    _project_out,
)
INSTITUTIONS = Editable(
    Institution,
    InstitutionIn,
    institution_json,
    _may_edit_institution,
    lambda _user, _i, data: ticket_range(data),
    lambda _user, _values, _i: None,
    services.save_institution,
    _institution_out,
)
NEEDS = Editable(
    Need,
    NeedIn,
    need_json,
    lambda user, n: check_need_write(user, None, n),
    lambda _user, _n, data: data,
    lambda user, values, n: check_need_write(user, values, n),
    services.save_need,
    need_json,
)


def update(kind: Editable, ident: int) -> Any:
    """Replace (PUT) or change part of (PATCH) a record, after the same checks as its form."""
    row = _get_or_404(kind.model, ident)
    user = current_user()
    kind.may_edit(user, row)
    data = _body()
    if request.method == "PATCH":
        stored = kind.current(row)
        data = {**{f: stored.get(f) for f in kind.schema.model_fields}, **data}
    values = validate(kind.schema, kind.prepare(user, row, data))
    kind.may_write(user, values, row)
    return jsonify(kind.out(kind.save(db.session, values, row)))


def _editing(kind: Editable) -> Callable[..., Any]:
    def view(ident: int) -> Any:
        return update(kind, ident)

    return view


for _rule, _endpoint, _access, _kind, _summary, _out in (
    (
        "/projects/<int:ident>",
        "update_project",
        login_required,
        PROJECTS,
        "修改项目（PUT 全量，PATCH 部分；项目方不能改组别、赛事和获奖）",
        ProjectOut,
    ),
    (
        "/institutions/<int:ident>",
        "update_institution",
        roles_required(Role.ADMIN, Role.INSTITUTION),
        INSTITUTIONS,
        "修改机构（PUT 全量，PATCH 部分；本机构成员或秘书处）",
        InstitutionOut,
    ),
    (
        "/needs/<int:ident>",
        "update_need",
        roles_required(Role.ADMIN, Role.INSTITUTION),
        NEEDS,
        "修改对接需求（PUT 全量，PATCH 部分）",
        NeedOut,
    ),
):
    _view = operation(_summary, body=_kind.schema, answers={200: _out}, errors=(403,))(_editing(_kind))
    bp.add_url_rule(_rule, _endpoint, _access(_view), methods=["PUT", "PATCH"])


# --- bulk import -------------------------------------------------------------------------------------


@bp.post("/imports/<kind>")
@roles_required(Role.ADMIN, Role.ORGANISER)
@operation(
    "批量导入 CSV/XLSX（multipart 字段 file；全部成功或全部不导入）",
    multipart=ImportFile,
    answers={201: ImportReport},
)
def import_file(kind: str) -> Any:
    """Import a CSV/XLSX file of projects or institutions (multipart field `file`): all rows or none."""
    from app.web.imports import KINDS, run_import

    if kind not in KINDS:
        abort(404, description="导入类型应为 projects 或 institutions")
    report, error = run_import(kind)
    if error:
        raise InputError({"file": error}, error)
    if not report.ok:
        return jsonify(
            {
                "error": {
                    "status": 422,
                    "code": "validation_error",
                    "message": f"{len(report.errors)} 行有误，未导入任何数据",
                    "rows": [{"row": row, "fields": fields} for row, fields in report.errors],
                }
            }
        ), 422
    return jsonify(
        {
            "kind": kind,
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "suspected_duplicates": [{"row": r, "message": m} for r, m in report.suspects],
            "eligibility_warnings": [
                {"row": r, "conditions": [c.as_json() for c in conditions]}
                for r, conditions in report.warnings
            ],
        }
    ), 201
