"""Needs (对接需求): institutions post what they seek and see which projects fit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import feedback, services
from app.access import (
    can_view_institution_private,
    check_need_write,
    current_user,
    is_secretariat,
    login_required,
    need_owner_default,
    redact_ranked,
    roles_required,
    signed_in_user,
)
from app.api import NEED_FIELDS
from app.extensions import db
from app.params import project_filter
from app.schemas import InputError, NeedIn, validate
from app.serialize import form_values
from app.web.forms import form_data
from app.web.lists import Column, enum_rank, query_list, ranked_list
from app.web.projects import _contests
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
    need = db.session.get(Need, ident)
    if need is None or services.hidden(need):
        abort(404)
    try:
        f = project_filter(request.args)
        errors: dict[str, str] = {}
    except InputError as exc:
        f, errors = services.ProjectFilter(), exc.fields
    user = current_user()
    ranked = []
    if need.archived_at is None:
        matches = services.matches_for_need(
            db.session,
            need,
            int(current_app.config["MAX_K"]),
            f,
            private=can_view_institution_private(user, need.institution_id),
        )
        ranked = redact_ranked(user, matches, institution=need.institution)
    sent, listing = ranked_list(ranked, True, f"需求匹配项目-{need.title}", "ranked_projects")
    if sent is not None:
        return sent
    feedback.log_listing("need", ident, listing, institution_id=need.institution_id)
    return render_template(
        "needs/detail.html", need=need, f=f, errors=errors, contests=_contests(), **listing
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.INSTITUTION)
def create() -> Any:
    check_need_write(current_user(), None)
    return _form(None)


@bp.route("/<int:ident>/edit", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.INSTITUTION)
def edit(ident: int) -> Any:
    need = db.session.get(Need, ident)
    if need is None or need.archived_at is not None:  # restore first
        abort(404)
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
            flash("对接需求已发布", "success")
            return redirect(url_for("needs.detail", ident=saved.id))
    stmt = select(Institution).order_by(Institution.name)
    user = signed_in_user()  # the write checks above refused anyone signed out
    if not is_secretariat(user):
        stmt = stmt.where(Institution.id == user.institution_id)
    institutions = db.session.scalars(stmt).all()
    return render_template(
        "needs/form.html", need=need, v=values, errors=errors, institutions=institutions
    ), (422 if errors else 200)


@bp.post("/<int:ident>/delete")
@roles_required(Role.ADMIN, Role.INSTITUTION)
def delete(ident: int) -> Any:
    need = db.session.get(Need, ident)
    if need is None or services.hidden(need):
        abort(404)
    check_need_write(current_user(), None, need)
    if services.delete_need(db.session, need) == "archived":
        flash("对接需求有对接记录，已归档：不再出现在需求列表中，对接历史保留", "success")
    else:
        flash("对接需求已删除", "success")
    return redirect(url_for("needs.list_needs"))


@bp.post("/<int:ident>/restore")
@roles_required(Role.ADMIN)
def restore(ident: int) -> Any:
    need = db.session.get(Need, ident) or abort(404)
    if need.institution.archived_at is not None:
        flash("发布机构已归档，请先恢复机构", "error")
    else:
        services.restore_need(db.session, need)
        flash("对接需求已恢复", "success")
    return redirect(url_for("needs.detail", ident=need.id))
