"""The front page: what the service holds, and where to start."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template
from sqlalchemy import func, select

from app.access import current_user, public
from app.extensions import db
from models import Award, Contest, Institution, Need, Project

bp = Blueprint("home", __name__)


@bp.get("/")
@public
def index() -> Any:
    s = db.session
    # archived records (kept for their history) are not shown
    live_inst = Institution.archived_at.is_(None)
    counts = {
        "projects": s.scalar(select(func.count(Project.id)).where(Project.archived_at.is_(None))) or 0,
        "institutions": s.scalar(select(func.count(Institution.id)).where(live_inst)) or 0,
        "needs": s.scalar(select(func.count(Need.id)).where(Need.archived_at.is_(None))) or 0,
        "contests": s.scalar(select(func.count(Contest.id))) or 0,
    }
    by_kind = s.execute(
        select(Institution.kind, func.count()).where(live_inst).group_by(Institution.kind)
    ).all()
    winners = s.scalars(
        select(Project)
        .where(Project.award.in_([Award.FIRST, Award.SECOND, Award.THIRD]), Project.archived_at.is_(None))
        .order_by(Project.award, Project.id)
        .limit(8)
    ).all()
    needs: Sequence[Need] = []  # posted needs are for logged-in accounts
    if current_user() is not None:
        live = select(Need).where(Need.archived_at.is_(None))
        needs = s.scalars(live.order_by(Need.deadline.desc(), Need.id.desc()).limit(6)).all()
    return render_template("index.html", counts=counts, by_kind=by_kind, winners=winners, needs=needs)


@bp.get("/favicon.ico")
@public
def favicon() -> Any:
    """The site icon browsers ask for on every first visit (served, not a 404)."""
    assert current_app.static_folder is not None
    body = (Path(current_app.static_folder) / "favicon.ico").read_bytes()  # 5 kB: no open file to leak
    response = Response(body, mimetype="image/vnd.microsoft.icon")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
