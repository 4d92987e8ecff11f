"""Institution pages: directory, an institution with its ranked projects, add and edit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from app import services
from app.access import can_edit_institution, public, roles_required
from app.api import INSTITUTION_FIELDS
from app.extensions import db
from app.params import institution_filter
from app.schemas import InputError, InstitutionIn, validate
from app.serialize import form_values
from app.web import records
from app.web.forms import form_data
from app.web.lists import Column, enum_rank, query_list
from models import Institution
from models.enums import InstitutionKind, Role

bp = Blueprint("institutions", __name__, url_prefix="/institutions")


@bp.get("/")
@public
def list_institutions() -> Any:
    f, errors = records.read_filter(institution_filter, services.InstitutionFilter)
    sent, page, sort = query_list(
        services.institution_query(f), DIRECTORY, "kind", Institution.id, "机构名录", "institutions", errors
    )
    if sent is not None:
        return sent
    return render_template(
        "institutions/list.html", page=page, f=f, errors=errors, columns=DIRECTORY, sort=sort
    )


def _span(low: float | None, high: float | None) -> str | None:
    if low is None and high is None:
        return None
    return f"{low if low is not None else ''}–{high if high is not None else ''}"


#: The directory's columns: the published profile only (contact persons are never exported).
DIRECTORY = [
    Column("name", "机构", lambda i: i.name, Institution.name),
    Column("kind", "类型", lambda i: i.kind, enum_rank(InstitutionKind, Institution.kind)),
    Column(
        "province",
        "地区",
        lambda i: " ".join(x for x in (i.province, i.city) if x) or None,
        Institution.province,
    ),
    Column(
        "industries", "关注行业 / 服务", lambda i: "、".join([*i.industries[:6], *i.services[:6]]) or None
    ),
    Column(
        "ticket",
        "单笔金额（万元）",
        lambda i: _span(i.ticket_min_wan, i.ticket_max_wan),
        Institution.ticket_max_wan,
    ),
    Column("space", "空间（㎡）", lambda i: i.space_m2, Institution.space_m2, numeric=True),
]


@bp.get("/<int:ident>")
@public
def detail(ident: int) -> Any:
    inst = records.shown_or_404(Institution, ident)
    return records.ranked_projects_page(
        inst,
        services.matches_for_institution,
        ident,
        f"推荐项目-{inst.name}",
        "institutions/detail.html",
        inst=inst,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def create() -> Any:
    return _form(None)


@bp.route("/<int:ident>/edit", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.INSTITUTION)
def edit(ident: int) -> Any:
    return _form(records.editable_or_404(Institution, ident, can_edit_institution, "只能编辑本机构的信息"))


def _form(inst: Institution | None) -> Any:
    errors: dict[str, str] = {}
    values = (
        form_values(inst, INSTITUTION_FIELDS) if inst else {"industries": [], "stages": [], "services": []}
    )
    if request.method == "POST":
        values = form_data(request.form, INSTITUTION_FIELDS)
        try:
            saved = services.save_institution(db.session, validate(InstitutionIn, values), inst)
        except InputError as exc:
            errors = exc.fields
        else:
            return records.saved("机构信息已保存", "institutions.detail", saved.id)
    return records.form_page("institutions/form.html", errors, inst=inst, v=values)


@bp.post("/<int:ident>/delete")
@roles_required(Role.ADMIN)
def delete(ident: int) -> Any:
    inst = db.session.get(Institution, ident) or abort(404)
    return records.removed(
        services.delete_institution(db.session, inst),
        f"机构「{inst.name}」",
        "（含其对接需求）：对接历史和统计数据保留",
        "institutions.list_institutions",
    )


records.add_restore_route(bp, Institution, services.restore_institution, lambda inst: f"机构「{inst.name}」")
