"""What the record pages (projects, institutions, needs) share: finding the record a page shows, reading
the filter of a list, the form's answer, and what a delete or restore tells the user."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app import feedback, services
from app.access import (
    can_view_institution_private,
    current_user,
    deny,
    organiser_contest_ids,
    redact_ranked,
    roles_required,
)
from app.extensions import db
from app.params import project_filter
from app.schemas import InputError
from app.services import ProjectFilter
from app.web.lists import ranked_list
from models import Contest, Institution
from models.accounts import User
from models.enums import Role

R = TypeVar("R")
F = TypeVar("F")


def contests(only: set[int] | None = None) -> list[Contest]:
    """Return the contests (those of `only`, when given) in code order, for a filter or form's choice."""
    stmt = select(Contest).order_by(Contest.code)
    if only is not None:
        stmt = stmt.where(Contest.id.in_(only))
    return list(db.session.scalars(stmt))


def my_contests() -> list[Contest]:
    """Return the contests the current user organises (all for the secretariat, none for others)."""
    return contests(organiser_contest_ids(current_user()))


def shown_or_404(model: type[R], ident: int) -> R:
    """Return the record, or answer 404 when there is none or the viewer may not see it (archived)."""
    row = db.session.get(model, ident)
    if row is None or services.hidden(row):
        abort(404)
    return row


def editable_or_404(
    model: type[R],
    ident: int,
    may_edit: Callable[[User | None, R], bool] | None = None,
    refusal: str = "",
) -> R:
    """Return the record to edit, or answer 404: an archived one is restored first (an edit would put
    it back into lists and rankings); 403 with `refusal` when `may_edit` says the user may not."""
    row = db.session.get(model, ident)
    if row is None or getattr(row, "archived_at", None) is not None:
        abort(404)
    if may_edit is not None and not may_edit(current_user(), row):
        deny(f"may not edit {getattr(model, '__tablename__', model.__name__)} {ident}", refusal)
    return row


def read_filter(parse: Callable[[Mapping[str, Any]], F], empty: Callable[[], F]) -> tuple[F, dict[str, str]]:
    """Return the filter the query string asks for and no errors, or the empty filter and the errors."""
    try:
        return parse(request.args), {}
    except InputError as exc:
        return empty(), exc.fields


def saved(message: str, endpoint: str, ident: int) -> Response:
    """Say that the form's record is saved and show it."""
    flash(message, "success")
    return redirect(url_for(endpoint, ident=ident))


def form_page(template: str, errors: dict[str, str], **values: Any) -> tuple[str, int]:
    """Render a record's form: 422 when the posted values have errors (shown on the form), else 200."""
    return render_template(template, errors=errors, **values), (422 if errors else 200)


def removed(outcome: services.Removal, what: str, kept: str, endpoint: str) -> Response:
    """Say what a delete did (a record with connections is archived: `kept` says what stays) and go
    back to the list."""
    if outcome == "archived":
        flash(f"{what}有对接记录，已归档{kept}", "success")
    else:
        flash(f"{what}已删除", "success")
    return redirect(url_for(endpoint))


def add_restore_route(
    bp: Blueprint,
    model: type[R],
    restore: Callable[[Session, R], None],
    describe: Callable[[R], str],
    blocked: Callable[[R], str | None] = lambda _row: None,
) -> None:
    """Register the secretariat's POST /<ident>/restore on a record's blueprint (`<bp>.restore`, the
    button of _archived.html): bring the archived record back unless `blocked` says why not, then show it.

    Args:
        restore: services.restore_* (audited there).
        describe: how the flash names the record ("机构「…」").
        blocked: the reason the record cannot come back yet (shown as an error), or None.
    """

    @bp.post("/<int:ident>/restore", endpoint="restore")
    @roles_required(Role.ADMIN)
    def restore_record(ident: int) -> Response:
        row = db.session.get(model, ident) or abort(404)
        reason = blocked(row)
        if reason is not None:
            flash(reason, "error")
        else:
            restore(db.session, row)
            flash(f"{describe(row)}已恢复", "success")
        return redirect(url_for(f"{bp.name}.detail", ident=ident))


def ranked_projects_page(
    row: Any,
    rank: Callable[..., list[Any]],
    subject: Any,
    export_name: str,
    template: str,
    institution: Institution | None = None,
    **values: Any,
) -> Any:
    """Answer the page of a record with its ranked projects (an institution's, or a need's).

    Args:
        row: the institution or need; an archived one ranks nothing.
        rank: services.matches_for_institution or services.matches_for_need, called with `subject` (what
            it ranks for), the page's filter and what the viewer may see.
        export_name: the xlsx export's file name.
        template: the page; `values` are passed to it with the filter, its errors, the listing and the
            contests.
        institution: a need's institution (redaction and the shown-log name it); None for an institution.
    """
    f, errors = read_filter(project_filter, ProjectFilter)
    user = current_user()
    owner = institution or row
    ranked = []
    if row.archived_at is None:
        matches = rank(
            db.session,
            subject,
            int(current_app.config["MAX_K"]),
            f,
            public=user is None,
            private=can_view_institution_private(user, owner.id),
        )
        ranked = redact_ranked(user, matches, institution=owner)
    sent, listing = ranked_list(ranked, user is not None, export_name, "ranked_projects")
    if sent is not None:
        return sent
    if institution is None:
        feedback.log_listing("institution", row.id, listing)
    else:
        feedback.log_listing("need", row.id, listing, institution_id=institution.id)
    return render_template(template, f=f, errors=errors, contests=contests(), **values, **listing)
