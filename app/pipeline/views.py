"""Pipeline pages: an institution's board and list, a project's requests, one connection with its history,
the secretariat's list (with 待跟进), the dashboard and the printable quarterly report."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.access import audit, current_user, deny, is_secretariat, login_required, roles_required
from app.extensions import db
from app.params import int_param
from app.pipeline import rules, service
from app.pipeline.figures import DIMENSIONS, Period, figures, period_from_args, short_contest
from app.pipeline.report import TALLY_COLUMNS, headline, quarterly_workbook, workbook_bytes
from app.pipeline.schemas import ConnectionIn, validate_in
from app.pipeline.serialize import history, idle_since, public_activity
from app.pipeline.states import FUNNEL, OPEN_STAGES, is_idle, next_stages, outcome_kind_of
from app.schemas import InputError
from app.security import safe_target
from models import Connection, Institution, Project
from models.enums import ConnectionStage as S
from models.enums import FundingRound, Role, ServiceKind

bp = Blueprint("pipeline", __name__)

#: Board columns, in order.
BOARD = (*FUNNEL, S.REFUSED, S.TERMINATED)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Query parameters the board understands (the only ones carried over by a redirect to it).
BOARD_PARAMS = ("view",)


def _now() -> datetime:
    return datetime.now(UTC)


def _days() -> int:
    return int(current_app.config["FOLLOW_UP_DAYS"])


def _safe_next(default: str) -> str:
    return safe_target(request.form.get("next") or request.args.get("next"), default)


def _loaded(stmt: Any) -> Any:
    return stmt.options(selectinload(Connection.project), selectinload(Connection.institution))


# --- lists ---------------------------------------------------------------------------------------------


@bp.get("/connections/")
@login_required
def index() -> Any:
    """The secretariat's list of all connections; institutions and projects go to their own view."""
    user = current_user()
    if user.role is Role.INSTITUTION and user.institution_id:
        # Only the board's own parameters travel: url_for must never see ident, endpoint or _external.
        kept = {k: v for k in BOARD_PARAMS if (v := request.args.get(k))}
        return redirect(url_for("pipeline.board", ident=user.institution_id, **kept))
    if user.role is Role.PROJECT and user.project_id:
        return redirect(url_for("pipeline.project_requests", ident=user.project_id))
    if not is_secretariat(user):
        deny("connection list is for the secretariat", "对接列表仅限大赛秘书处查看")
    args = request.args
    errors: dict[str, str] = {}
    stmt = select(Connection)
    stage = None
    if args.get("stage"):
        try:
            stage = S.from_label(args["stage"])
            stmt = stmt.where(Connection.stage == stage)
        except ValueError:
            errors["stage"] = f"阶段：应为以下之一：{'、'.join(S.labels())}"
    follow_up = args.get("follow_up") == "1"
    if follow_up:
        stmt = stmt.where(
            Connection.stage.in_(OPEN_STAGES), Connection.last_activity_at < _now() - timedelta(days=_days())
        )
    q = (args.get("q") or "").strip()[:100]
    if q:
        # autoescape: a user's % or _ is text, not a wildcard
        stmt = stmt.where(
            Connection.project_id.in_(select(Project.id).where(Project.name.contains(q, autoescape=True)))
            | Connection.institution_id.in_(
                select(Institution.id).where(Institution.name.contains(q, autoescape=True))
            )
        )
    per_page = int(current_app.config["PAGE_SIZE"])
    try:
        page = int_param(args, "page", 1, 1, 1_000_000, "页码")
    except InputError as exc:
        errors.update(exc.fields)
        page = 1
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(
        _loaded(stmt)
        .order_by(Connection.last_activity_at.desc(), Connection.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    idle_total = db.session.scalar(
        select(func.count(Connection.id)).where(
            Connection.stage.in_(OPEN_STAGES), Connection.last_activity_at < _now() - timedelta(days=_days())
        )
    )
    return render_template(
        "pipeline/list.html",
        rows=rows,
        now=_now(),
        days=_days(),
        stage=stage,
        follow_up=follow_up,
        q=q,
        errors=errors,
        idle_total=idle_total,
        page={
            "rows": rows,
            "page": page,
            "pages": max(1, (total + per_page - 1) // per_page),
            "total": total,
        },
    )


@bp.get("/connections/institution/<int:ident>")
@login_required
def board(ident: int) -> Any:
    """An institution's pipeline, as a board by stage (default) or a list."""
    inst = db.session.get(Institution, ident)
    if inst is None or not rules.can_view_institution_private(current_user(), ident):
        deny(
            f"pipeline of institution {ident}",
            "没有权限查看该机构的对接进展",
            status=404 if inst is None else 403,
        )
    rows = db.session.scalars(
        _loaded(select(Connection).where(Connection.institution_id == ident)).order_by(
            Connection.last_activity_at.desc(), Connection.id.desc()
        )
    ).all()
    now, days = _now(), _days()
    columns: dict[S, list[Connection]] = defaultdict(list)
    for c in rows:
        columns[c.stage].append(c)
    for stage in columns:
        columns[stage].sort(key=lambda c: (not c.shortlisted, not is_idle(c, now, days)))
    view = "list" if request.args.get("view") == "list" else "board"
    idle = sum(1 for c in rows if is_idle(c, now, days))
    return render_template(
        "pipeline/board.html",
        inst=inst,
        rows=rows,
        columns=columns,
        board=BOARD,
        view=view,
        now=now,
        days=days,
        idle=idle,
    )


@bp.get("/connections/project/<int:ident>")
@login_required
def project_requests(ident: int) -> Any:
    """A project's requests: the connections either side asked for (never an institution's shortlist)."""
    p = db.session.get(Project, ident)
    user = current_user()
    if p is None or not (is_secretariat(user) or rules.is_project_member(user, ident)):
        deny(f"requests of project {ident}", "没有权限查看该项目的对接", status=404 if p is None else 403)
    rows = db.session.scalars(
        _loaded(
            select(Connection).where(Connection.project_id == ident, Connection.requested_at.is_not(None))
        ).order_by(Connection.last_activity_at.desc())
    ).all()
    return render_template("pipeline/project.html", p=p, rows=rows, now=_now(), days=_days())


# --- one connection --------------------------------------------------------------------------------------


def _detail(
    c: Connection,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Any:
    user = current_user()
    private = rules.sees_private(user, c)
    return render_template(
        "pipeline/detail.html",
        c=c,
        events=list(reversed(history(c, private))),
        private=private,
        can_move=rules.can_move(user, c),
        next_stages=next_stages(c),
        outcome_kind=outcome_kind_of(c),
        idle=idle(c),
        days=_days(),
        errors=errors or {},
        v=values or {},
        rounds=FundingRound.labels(),
        service_kinds=ServiceKind.labels(),
    ), status


@bp.get("/connections/<int:ident>")
@login_required
def detail(ident: int) -> Any:
    return _detail(rules.get_visible(db.session, ident))


@bp.post("/connections/new")
@login_required
def create() -> Any:
    """Shortlist a ranked project or request an introduction (from an institution's or a project's page)."""
    form = request.form
    data = {
        k: form.get(k)
        for k in ("project_id", "institution_id", "action", "note")
        if form.get(k) not in (None, "")
    }
    user = current_user()
    try:
        values = validate_in(ConnectionIn, data)
        if not rules.can_connect(user, values.project_id, values.institution_id, values.action):
            deny("connect refused", "只能为本机构建立候选或申请对接，项目方只能为本项目申请对接")
        c, ev = service.connect(
            db.session,
            values.project_id,
            values.institution_id,
            values.action,
            rules.actor(user),
            values.note,
        )
        db.session.flush()
        audit(f"connection.{values.action}", "connection", c.id, to_stage=ev.to_stage.value)
        service.commit(db.session, c, [ev])
    except InputError as exc:
        db.session.rollback()
        flash("；".join(exc.fields.values()) or exc.message, "error")
        return redirect(_safe_next(url_for("pipeline.index")))
    flash("已加入候选名单" if values.action == "shortlist" else "已发出对接申请", "success")
    return redirect(_safe_next(url_for("pipeline.detail", ident=c.id)))


OUTCOME_FIELDS = ("amount_wan", "round", "date", "base", "area_m2", "service_kind")


@bp.post("/connections/<int:ident>/move")
@login_required
def move(ident: int) -> Any:
    session = db.session
    c = rules.get_visible(session, ident)
    user = current_user()
    if not rules.can_move(user, c):
        deny(f"move connection {ident} refused", "没有权限变更该对接")
    form = request.form
    to = form.get("to_stage", "")
    note = form.get("note") or None
    outcome = {k: form.get(k) for k in OUTCOME_FIELDS if (form.get(k) or "").strip()}
    frm = c.stage
    try:
        signing = to.strip() in (S.SIGNED.value, S.SIGNED.name)
        ev = service.move(session, c, to, rules.actor(user), note, outcome if (outcome or signing) else None)
        audit("connection.move", "connection", c.id, from_stage=frm.value, to_stage=ev.to_stage.value)
        service.commit(session, c, [ev])
    except InputError as exc:
        session.rollback()
        fields = {k.removeprefix("outcome."): v for k, v in exc.fields.items()}
        return _detail(session.get(Connection, ident), fields, dict(form), 422)  # type: ignore[arg-type]
    flash(f"已变更为「{c.stage.value}」", "success")
    return redirect(url_for("pipeline.detail", ident=c.id))


@bp.post("/connections/<int:ident>/shortlist")
@login_required
def shortlist(ident: int) -> Any:
    session = db.session
    c = rules.get_visible(session, ident)
    user = current_user()
    if not rules.sees_private(user, c):
        deny(f"shortlist connection {ident} refused", "候选名单是机构的内部记录")
    flag = request.form.get("shortlisted", "1") == "1"
    try:
        ev = service.shortlist(session, c, flag, rules.actor(user), request.form.get("note"))
        audit("connection.shortlist", "connection", c.id, shortlisted=flag)
        service.commit(session, c, [ev])
    except InputError as exc:
        session.rollback()
        return _detail(session.get(Connection, ident), exc.fields, dict(request.form), 422)  # type: ignore[arg-type]
    flash("候选名单已更新", "success")
    return redirect(_safe_next(url_for("pipeline.detail", ident=c.id)))


@bp.post("/connections/<int:ident>/note")
@login_required
def note(ident: int) -> Any:
    session = db.session
    c = rules.get_visible(session, ident)
    user = current_user()
    if not rules.can_move(user, c):
        deny(f"note on connection {ident} refused", "没有权限记录该对接")
    private = request.form.get("private") == "1" and rules.sees_private(user, c)
    try:
        ev = service.note(session, c, rules.actor(user), request.form.get("note") or "", private)
        audit("connection.note", "connection", c.id, private=private)
        service.commit(session, c, [ev])
    except InputError as exc:
        session.rollback()
        return _detail(session.get(Connection, ident), exc.fields, dict(request.form), 422)  # type: ignore[arg-type]
    flash("已记录跟进情况", "success")
    return redirect(url_for("pipeline.detail", ident=c.id))


# --- dashboard and report ---------------------------------------------------------------------------------


def _period(errors: dict[str, str]) -> Period:
    from app.services import today

    try:
        return period_from_args(request.args, today())
    except InputError as exc:
        errors.update(exc.fields)
        return Period.last_full_quarter(today())


def _scope_label(scope: set[int] | None) -> str:
    if scope is None:
        return "全部赛事"
    from models import Contest

    names = db.session.scalars(select(Contest.name).where(Contest.id.in_(scope)).order_by(Contest.code)).all()
    return "、".join(short_contest(n) for n in names) or "（未分配赛事）"


def _quarters(period: Period) -> list[Period]:
    from app.services import today

    latest = Period.containing(today())
    out = [latest]
    while len(out) < 8:
        out.append(out[-1].previous())
    return out


@bp.get("/dashboard")
@roles_required(Role.ADMIN, Role.ORGANISER)
def dashboard() -> Any:
    scope = rules.report_scope(current_user())
    errors: dict[str, str] = {}
    period = _period(errors)
    fig = figures(db.session, period, scope, _days())
    data = fig.as_json()
    charts = {
        "funnel": data["funnel"],
        "regions": sorted(data["breakdowns"]["region"], key=lambda r: (-r["signed"], -r["opened"]))[:12],
        "months": data["months"],
    }
    return render_template(
        "pipeline/dashboard.html",
        fig=fig,
        data=data,
        charts=charts,
        headline=headline(fig),
        errors=errors,
        dimensions=DIMENSIONS,
        columns=TALLY_COLUMNS,
        quarters=_quarters(period),
        scope_label=_scope_label(scope),
        query=_period_query(period),
        event_rows=_event_rows(period, scope),
    ), (422 if errors else 200)


def _event_rows(period: Period, scope: set[int] | None) -> list[dict[str, Any]]:
    """The matchmaking events figure: the four quarters ending with the period's last day."""
    from app.events.dashboard import event_quarters, quarters_ending

    return event_quarters(db.session, quarters_ending(Period.containing(period.last_day)), scope)


def _period_query(period: Period) -> dict[str, str]:
    if period.quarter:
        return {"quarter": period.quarter}
    return {"from": period.start.isoformat(), "to": period.last_day.isoformat()}


@bp.get("/reports/quarterly")
@roles_required(Role.ADMIN, Role.ORGANISER)
def report_page() -> Any:
    scope = rules.report_scope(current_user())
    errors: dict[str, str] = {}
    period = _period(errors)
    if errors:
        raise InputError(errors)
    fig = figures(db.session, period, scope, _days())
    audit("export", "report", None, format="html", period=period.label)
    db.session.commit()
    return render_template(
        "pipeline/report.html",
        fig=fig,
        rows=[r for r in fig.rows if scope is None or r["requested"]],
        filings=_filed_plans(scope),
        data=fig.as_json(),
        headline=headline(fig),
        dimensions=DIMENSIONS,
        columns=TALLY_COLUMNS,
        scope_label=_scope_label(scope),
        query=_period_query(period),
    )


@bp.get("/reports/quarterly.xlsx")
@roles_required(Role.ADMIN, Role.ORGANISER)
def report_xlsx() -> Any:
    return send_report()


def _filed_plans(scope: set[int] | None) -> list[dict[str, Any]]:
    """Return the filed 备案表 plans of the contests in scope (their follow-up plans belong in the report)."""
    from app.intake.filings import filed_plans

    return filed_plans(db.session, scope)


def send_report() -> Response:
    """Answer with the period's report workbook (pages and API share this)."""
    scope = rules.report_scope(current_user())
    errors: dict[str, str] = {}
    period = _period(errors)
    if errors:
        raise InputError(errors)
    fig = figures(db.session, period, scope, _days())
    plans = _filed_plans(scope)
    body = workbook_bytes(quarterly_workbook(fig, _scope_label(scope), shortlists=scope is None, filings=plans))
    audit("export", "report", None, format="xlsx", period=period.label, bytes=len(body))
    db.session.commit()
    name = f"赛事专报-{period.quarter or period.start.isoformat() + '_' + period.last_day.isoformat()}.xlsx"
    response = send_file(io.BytesIO(body), mimetype=XLSX, as_attachment=True, download_name=name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- template helpers ---------------------------------------------------------------------------------


def nav_links() -> list[tuple[str, str]]:
    """Return the pipeline's navigation links for the current account."""
    user = current_user()
    if user is None:
        return []
    links: list[tuple[str, str]] = []
    if user.role is Role.INSTITUTION and user.institution_id:
        links.append(("对接跟进", url_for("pipeline.board", ident=user.institution_id)))
    elif user.role is Role.PROJECT and user.project_id:
        links.append(("我的对接", url_for("pipeline.project_requests", ident=user.project_id)))
    elif is_secretariat(user):
        links.append(("对接跟进", url_for("pipeline.index")))
    if user.role in (Role.ADMIN, Role.ORGANISER):
        links.append(("数据看板", url_for("pipeline.dashboard")))
    return links


def pairs(institution_id: int | None = None, project_id: int | None = None) -> dict[int, Connection]:
    """Return {other side's id: connection} of an institution or a project, as far as the viewer may see."""
    user = current_user()
    if user is None:
        return {}
    if institution_id is not None:
        if not rules.can_view_institution_private(user, institution_id):
            return {}
        rows = db.session.scalars(select(Connection).where(Connection.institution_id == institution_id))
        return {c.project_id: c for c in rows}
    if project_id is not None:
        rows = db.session.scalars(select(Connection).where(Connection.project_id == project_id))
        return {c.institution_id: c for c in rows if rules.can_view(user, c)}
    return {}


def can_connect(project_id: int | None, institution_id: int | None, action: str = "request") -> bool:
    """True when the current account may shortlist / request for this pair (buttons on ranked lists)."""
    user = current_user()
    if user is None:
        return False
    if project_id is None or institution_id is None:
        # "May this account act for this side at all?" (one check for a whole list)
        if is_secretariat(user):
            return True
        if institution_id is not None:
            return bool(user.role is Role.INSTITUTION and user.institution_id == institution_id)
        return action == "request" and project_id is not None and rules.is_project_member(user, project_id)
    return rules.can_connect(user, project_id, institution_id, action)


def activity(c: Connection) -> datetime:
    """Return the connection's last activity as the current account may see it (private notes count
    only for the institution and the secretariat)."""
    if rules.sees_private(current_user(), c):
        return c.last_activity_at
    return public_activity(c) or c.last_activity_at


def idle(c: Connection) -> bool:
    """True when the connection is flagged 待跟进 now (by the activity the current account may see)."""
    if rules.sees_private(current_user(), c):
        return is_idle(c, _now(), _days())
    return idle_since(c, activity(c), _now(), _days())
