"""Needs (对接需求): institutions post what they seek and see which projects fit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from app import services
from app.access import (
    check_need_write,
    current_user,
    is_secretariat,
    login_required,
    need_owner_default,
    roles_required,
    signed_in_user,
)
from app.api import NEED_FIELDS
from app.extensions import db
from app.schemas import InputError, NeedIn, validate
from app.serialize import form_values
from app.web import records
from app.web.forms import form_data
from app.web.lists import Column, enum_rank, query_list
from models import Institution, Need
from models.enums import NeedStatus, Role

bp = Blueprint("needs", __name__, url_prefix="/needs")


#: The needs list's columns (what every logged-in account sees on the page; the export holds the same).
NEED_COLUMNS = [
    Column("title", "需求", lambda n: n.title, Need.title),
    Column("institution", "发布机构", lambda n: n.institution.name, Institution.name),
    Column("industries", "行业 / 服务", lambda n: "、".join([*n.industries[:6], *n.services[:6]]) or None),
    Column("quota", "数量", lambda n: n.quota, Need.quota, numeric=True),
    Column("deadline", "截止", lambda n: n.deadline, Need.deadline),
    Column("status", "状态", lambda n: n.status, enum_rank(NeedStatus, Need.status)),
]


@bp.get("/")
@login_required
def list_needs() -> Any:
    errors: dict[str, str] = {}
    stmt = select(Need).join(Need.institution).where(Need.archived_at.is_(None))
    sent, page, sort = query_list(
        stmt, NEED_COLUMNS, "-deadline", Need.id.desc(), "对接需求", "needs", errors
    )
    if sent is not None:
        return sent
    return render_template("needs/list.html", page=page, errors=errors, columns=NEED_COLUMNS, sort=sort)


@bp.get("/<int:ident>")
@login_required
def detail(ident: int) -> Any:
    need = records.shown_or_404(Need, ident)
    return records.ranked_projects_page(
        need,
        services.matches_for_need,
        need,
        f"需求匹配项目-{need.title}",
        "needs/detail.html",
        institution=need.institution,
        need=need,
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.INSTITUTION)
def create() -> Any:
    check_need_write(current_user(), None)
    return _form(None)


@bp.route("/<int:ident>/edit", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.INSTITUTION)
def edit(ident: int) -> Any:
    need = records.editable_or_404(Need, ident)
    check_need_write(current_user(), None, need)
    return _form(need)


#: Fields the need form labels differently from the shared schema messages ("简介" is a project's word).
FORM_LABELS = {"description": "需求说明"}


def _form_labels(errors: dict[str, str]) -> dict[str, str]:
    """Return the errors with each message naming the field as the need form labels it."""
    return {
        k: f"{FORM_LABELS[k]}：{m.split('：', 1)[-1]}" if k in FORM_LABELS else m for k, m in errors.items()
    }


def _form(need: Need | None) -> Any:
    errors: dict[str, str] = {}
    values = (
        form_values(need, NEED_FIELDS)
        if need
        else {
            "institution_id": request.args.get("institution_id", ""),
            "industries": [],
            "stages": [],
            "services": [],
        }
    )
    if request.method == "POST":
        values = form_data(request.form, NEED_FIELDS)
        try:
            parsed = validate(NeedIn, need_owner_default(current_user(), values))
            check_need_write(current_user(), parsed, need)  # on the parsed value, the one that is saved
            saved = services.save_need(db.session, parsed, need)
        except InputError as exc:
            errors = _form_labels(exc.fields)
        else:
            return records.saved("对接需求已发布", "needs.detail", saved.id)
    stmt = select(Institution).order_by(Institution.name)
    user = signed_in_user()  # the write checks above refused anyone signed out
    if not is_secretariat(user):
        stmt = stmt.where(Institution.id == user.institution_id)
    institutions = db.session.scalars(stmt).all()
    return records.form_page("needs/form.html", errors, need=need, v=values, institutions=institutions)


@bp.post("/<int:ident>/delete")
@roles_required(Role.ADMIN, Role.INSTITUTION)
def delete(ident: int) -> Any:
    need = records.shown_or_404(Need, ident)
    check_need_write(current_user(), None, need)
    return records.removed(
        services.delete_need(db.session, need),
        "对接需求",
        "：不再出现在需求列表中，对接历史保留",
        "needs.list_needs",
    )


records.add_restore_route(
    bp,
    Need,
    services.restore_need,
    lambda _need: "对接需求",
    blocked=lambda need: "发布机构已归档，请先恢复机构" if need.institution.archived_at is not None else None,
)
