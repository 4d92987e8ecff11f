"""Project pages: showcase list and search, a project with its three ranked lists, add and edit."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Blueprint, render_template, request

from app import feedback, services
from app.access import (
    can_delete_project,
    can_edit_project,
    check_project_write,
    current_user,
    deny,
    is_project_member,
    is_secretariat,
    login_required,
    organiser_contest_ids,
    project_level,
    public,
    redact_ranked,
    roles_required,
)
from app.api import PROJECT_FIELDS
from app.extensions import db
from app.params import institution_filter, project_filter
from app.schemas import InputError, ProjectIn, validate
from app.serialize import form_values
from app.web import records
from app.web.forms import form_data
from app.web.lists import project_columns, query_list
from models import Project
from models.enums import SIDES, Role

bp = Blueprint("projects", __name__, url_prefix="/projects")


@bp.get("/")
@public
def list_projects() -> Any:
    columns = project_columns(current_user() is not None)
    f, errors = records.read_filter(project_filter, services.ProjectFilter)
    sent, page, sort = query_list(
        services.project_query(f), columns, "award", Project.id, "项目展示", "projects", errors
    )
    if sent is not None:
        return sent
    return render_template(
        "projects/list.html",
        page=page,
        f=f,
        errors=errors,
        contests=records.contests(),
        columns=columns,
        sort=sort,
    )


@bp.get("/<int:ident>")
@public
def detail(ident: int) -> Any:
    p = records.shown_or_404(Project, ident)
    f, errors = records.read_filter(
        partial(institution_filter, kind_key="institution_kind"), services.InstitutionFilter
    )
    user = current_user()
    lists = {
        side: []
        if p.archived_at
        else redact_ranked(
            user,
            services.matches_for_project(
                db.session,
                ident,
                side,
                10,
                f,
                public=user is None,
                private=is_secretariat(user),
                own=is_project_member(user, ident),
                member_of=user.institution_id if user is not None else None,
            ),
            project=p,
        )
        for side in SIDES
    }
    for side, shown in lists.items():
        feedback.log_shown("project", ident, shown, side=side)
    return render_template(
        "projects/detail.html", p=p, lists=lists, f=f, errors=errors, level=project_level(user, p)
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.ORGANISER)
def create() -> Any:
    return _form(None)


@bp.route("/<int:ident>/edit", methods=["GET", "POST"])
@login_required
def edit(ident: int) -> Any:
    return _form(
        records.editable_or_404(Project, ident, can_edit_project, "只能编辑自己的项目或自己负责赛事的项目")
    )


def _form(p: Project | None) -> Any:
    errors: dict[str, str] = {}
    values: dict[str, Any] = form_values(p, PROJECT_FIELDS) if p else {"award": "无", "needs": []}
    user = current_user()
    locked = p is not None and user is not None and user.role is Role.PROJECT
    if request.method == "POST":
        values = form_data(request.form, PROJECT_FIELDS)
        if locked:  # contest and award come from the contest, not from the project
            assert p is not None
            values["contest_id"], values["award"] = p.contest_id, p.award.value
        try:
            parsed = validate(ProjectIn, values)
            check_project_write(user, parsed, p)  # on the parsed value, the one that is saved
            saved = services.save_project(db.session, parsed, p)
        except InputError as exc:
            errors = exc.fields
        else:
            return records.saved("项目已保存，匹配结果已更新", "projects.detail", saved.id)
    only = {p.contest_id} if p is not None and locked else organiser_contest_ids(user)
    return records.form_page(
        "projects/form.html", errors, p=p, v=values, contests=records.contests(only), locked=locked
    )


@bp.post("/<int:ident>/delete")
@roles_required(Role.ADMIN, Role.ORGANISER)
def delete(ident: int) -> Any:
    p = records.shown_or_404(Project, ident)
    if not can_delete_project(current_user(), p):
        deny(f"may not delete project {ident}", "只能删除自己负责赛事的项目")
    return records.removed(
        services.delete_project(db.session, p),
        f"项目「{p.name}」",
        "：不再出现在列表和匹配中，对接历史和统计保留",
        "projects.list_projects",
    )


records.add_restore_route(bp, Project, services.restore_project, lambda p: f"项目「{p.name}」")
