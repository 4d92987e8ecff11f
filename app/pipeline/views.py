"""Pipeline pages: an institution's board and list, a project's requests, one connection with its history,
the secretariat's list (with 待跟进), the dashboard and the printable quarterly report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import aliased, selectinload

from app.access import (
    audit,
    can_see_contacts,
    current_user,
    deny,
    is_secretariat,
    login_required,
    roles_required,
    signed_in_user,
)
from app.extensions import db
from app.pipeline import rules, service
from app.pipeline.figures import DIMENSIONS, Period, figures, period_from_args, short_contest
from app.pipeline.report import TALLY_COLUMNS, headline, quarterly_workbook, workbook_bytes
from app.pipeline.schemas import ConnectionIn, validate_in
from app.pipeline.serialize import history, idle_since, public_activity
from app.pipeline.states import (
    FUNNEL,
    china_date,
    is_idle,
    moves_for,
    next_stages,
    outcome_kind_of,
)
from app.schemas import InputError
from app.security import safe_target
from app.services import text_match
from app.web.lists import (
    Column,
    all_rows,
    export,
    order_by,
    paginate,
    query_filters,
    send_xlsx,
    sort_param,
    sorted_rows,
    wants_export,
)
from models import Connection, Institution, Need, Project
from models.enums import ConnectionStage as S
from models.enums import FundingRound, Role, ServiceKind
from models.pipeline import EventAction, Party

bp = Blueprint("pipeline", __name__)

#: Board columns, in order.
BOARD = (*FUNNEL, S.REFUSED, S.TERMINATED)
#: Query parameters the board understands (the only ones carried over by a redirect to it).
BOARD_PARAMS = ("view", "shortlisted", "sort")


def _now() -> datetime:
    return datetime.now(UTC)


def _days() -> int:
    return int(current_app.config["FOLLOW_UP_DAYS"])


def _safe_next(default: str) -> str:
    return safe_target(request.form.get("next") or request.args.get("next"), default)


def _loaded(stmt: Any) -> Any:
    return stmt.options(selectinload(Connection.project), selectinload(Connection.institution))


# --- lists ---------------------------------------------------------------------------------------------


def connection_columns(viewer: str) -> list[Column]:
    """Return the columns of a connection list.

    Args:
        viewer: "all" (the secretariat's list, sorted in SQL), "institution" (its own board: the shortlist
            flag and private notes too) or "project" (its requests: the activity it may see); the last two
            are sorted in memory.
    """
    from app.web.lists import enum_rank
    from models.enums import Award

    sql = viewer == "all"

    def col(key: str, label: str, get: Any, expr: Any, mem: Any = None, numeric: bool = False) -> Column:
        return Column(key, label, get, expr if sql else (mem or get), numeric)

    award = enum_rank(Award)
    stage = enum_rank(S)
    rnd = enum_rank(FundingRound)
    out = [
        col("project", "项目", lambda c: c.project.name, Project.name),
        col("institution", "机构", lambda c: c.institution.name, Institution.name),
        col("stage", "阶段", lambda c: c.stage, enum_rank(S, Connection.stage), lambda c: stage(c.stage)),
        col(
            "initiated_by",
            "发起方",
            lambda c: party_label(c.initiated_by) if c.initiated_by else None,
            Connection.initiated_by,
        ),
        col(
            "award",
            "获奖",
            lambda c: c.project.award,
            enum_rank(Award, Project.award),
            lambda c: award(c.project.award),
        ),
        col("amount", "拟融资（万元）", lambda c: c.project.amount_wan, Project.amount_wan, numeric=True),
        col(
            "round",
            "轮次",
            lambda c: c.project.funding_round,
            enum_rank(FundingRound, Project.funding_round),
            lambda c: rnd(c.project.funding_round),
        ),
        col(
            "signed_amount",
            "签约金额（万元）",
            lambda c: c.outcome_amount_wan,
            Connection.outcome_amount_wan,
            numeric=True,
        ),
        col(
            "activity",
            "最近活动",
            lambda c: china_date(activity(c)),
            Connection.last_activity_at,
            lambda c: activity(c),
        ),
    ]
    if viewer == "institution":
        out.insert(
            3,
            Column("shortlisted", "候选", lambda c: "★" if c.shortlisted else "", lambda c: (c.shortlisted,)),
        )
        out.append(Column("note", "备注", lambda c: c.note))
    if viewer == "project":
        out = [c for c in out if c.key != "project"]
    return out


def _sorted(columns: list[Column], default: str, errors: dict[str, str]) -> tuple[str, bool]:
    try:
        return sort_param(columns, default)
    except InputError as exc:
        errors.update(exc.fields)
        return default.lstrip("-"), default.startswith("-")


#: What a dashboard figure counts, as a filter of the connection list behind it (?event=...&from=&to=).
DRILL_EVENTS = {"opened": "新建", "signed": "签约", "refused": "被拒绝", "terminated": "终止"}
SIDE_NAMES = {"fund": "投融资", "base": "落地", "platform": "服务"}


def _drill_down(stmt: Any, args: Any, errors: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """Filter the connection list to what a dashboard figure counted: the connections opened, signed,
    refused or terminated in a period (Beijing dates, as the figures count them), on one side of the market.

    Returns the statement and the filters applied, named for people ({} when none).
    """
    from app.pipeline.figures import period_from_args
    from app.services import today
    from models.enums import InstitutionKind
    from models.pipeline import ConnectionEvent

    drill: dict[str, str] = {}
    event = (args.get("event") or "").strip()
    if event and event not in DRILL_EVENTS:
        errors["event"] = f"统计口径：应为以下之一：{'、'.join(DRILL_EVENTS)}"
        event = ""
    side = (args.get("side") or "").strip()
    if side and side not in SIDE_NAMES:
        errors["side"] = f"类别：应为以下之一：{'、'.join(SIDE_NAMES)}"
        side = ""
    if side:
        kinds = [k for k in InstitutionKind if k.side == side]
        stmt = stmt.where(
            Connection.institution_id.in_(select(Institution.id).where(Institution.kind.in_(kinds)))
        )
        drill["类别"] = SIDE_NAMES[side]
    stmt = _drill_dimension(stmt, args, errors, drill)
    has_period = any((args.get(k) or "").strip() for k in ("quarter", "from", "to"))
    if not (event or has_period):
        return stmt, drill
    try:
        period = period_from_args(args, today(), current=True)
    except InputError as exc:
        errors.update(exc.fields)
        return stmt, drill
    start, end = period.start_at, period.end_at
    drill["区间"] = period.label
    if event in ("", "opened"):
        stmt = stmt.where(Connection.created_at >= start, Connection.created_at < end)
        drill["口径"] = "本期新建"
        return stmt, drill
    to = {"signed": S.SIGNED, "refused": S.REFUSED, "terminated": S.TERMINATED}[event]
    moved = select(ConnectionEvent.connection_id).where(
        ConnectionEvent.action == EventAction.MOVED,
        ConnectionEvent.to_stage == to,
        ConnectionEvent.at >= start,
        ConnectionEvent.at < end,
    )
    if to is S.SIGNED:
        # as the figures count it: a signature dissolved before the period's end is no signature
        later = aliased(ConnectionEvent)
        moved = moved.where(
            ~select(later.id)
            .where(
                later.connection_id == ConnectionEvent.connection_id,
                later.action == EventAction.MOVED,
                later.from_stage == S.SIGNED,
                later.at > ConnectionEvent.at,
                later.at < end,
            )
            .exists()
        )
    drill["口径"] = f"本期{DRILL_EVENTS[event]}"
    return stmt.where(Connection.id.in_(moved)), drill


def _drill_dimension(stmt: Any, args: Any, errors: dict[str, str], drill: dict[str, str]) -> Any:
    """Filter to one row of a dashboard breakdown (?dim=region&key=浙江省): the connections that row counts,
    keyed exactly as app.pipeline.figures keys them."""
    from app.pipeline.figures import DIMENSIONS, short_contest
    from models import Contest
    from models.enums import Award, ContestKind, InstitutionKind

    dim, key = (args.get("dim") or "").strip(), (args.get("key") or "").strip()[:100]
    if not dim and not key:
        return stmt
    if dim not in DIMENSIONS or not key:
        errors["dim"] = f"分项：应为以下之一：{'、'.join(DIMENSIONS)}，并给出取值"
        return stmt
    project_ids = select(Project.id)
    try:
        if dim == "institution_kind":
            kind = InstitutionKind.from_label(key)
            drill[DIMENSIONS[dim]] = key
            return stmt.where(
                Connection.institution_id.in_(select(Institution.id).where(Institution.kind == kind))
            )
        if dim == "contest_kind":
            contests = select(Contest.id).where(Contest.kind == ContestKind.from_label(key))
            project_ids = project_ids.where(Project.contest_id.in_(contests))
        elif dim == "contest":
            ids = [c.id for c in db.session.scalars(select(Contest)) if short_contest(c.name) == key]
            project_ids = project_ids.where(Project.contest_id.in_(ids))
        elif dim == "award":
            project_ids = project_ids.where(Project.award == Award.from_label(key))
        else:  # region, industry: a project without one is counted under 未填
            column = Project.province if dim == "region" else Project.industry
            project_ids = project_ids.where(column.is_(None) if key == "未填" else column == key)
    except ValueError:
        errors["key"] = f"{DIMENSIONS[dim]}：没有“{key}”这一项"
        return stmt
    drill[DIMENSIONS[dim]] = key
    return stmt.where(Connection.project_id.in_(project_ids))


@bp.get("/connections/")
@login_required
def index() -> Any:
    """The secretariat's list of all connections; institutions and projects go to their own view."""
    user = signed_in_user()
    if user.role is Role.INSTITUTION and user.institution_id:
        # Only the board's own parameters travel: url_for must never see ident, endpoint or _external.
        kept: dict[str, Any] = {k: v for k in BOARD_PARAMS if (v := request.args.get(k))}
        return redirect(url_for("pipeline.board", **{**kept, "ident": user.institution_id}))
    if user.role is Role.PROJECT and user.project_id:
        return redirect(url_for("pipeline.project_requests", ident=user.project_id))
    if user.role not in (Role.ADMIN, Role.ORGANISER):
        deny("connection list is for the secretariat", "对接列表仅限大赛秘书处和赛事组织方查看")
    # An organiser reads the list behind its dashboard: its contests' connections, without their details.
    scope = rules.report_scope(user)
    args = request.args
    errors: dict[str, str] = {}
    in_scope = Connection.project_id.in_(select(Project.id).where(Project.contest_id.in_(scope or ())))
    stmt = select(Connection)
    if scope is not None:
        stmt = stmt.where(in_scope)
    stmt, drill = _drill_down(stmt, args, errors)
    stage = None
    if args.get("stage"):
        try:
            stage = S.from_label(args["stage"])
            stmt = stmt.where(Connection.stage == stage)
        except ValueError:
            errors["stage"] = f"阶段：应为以下之一：{'、'.join(S.labels())}"
    follow_up = args.get("follow_up") == "1"
    if follow_up:
        stmt = stmt.where(service.idle_condition(_now(), _days()))
    q = (args.get("q") or "").strip()[:100]
    if q:
        stmt = stmt.where(
            Connection.project_id.in_(select(Project.id).where(text_match(q, Project.name)))
            | Connection.institution_id.in_(select(Institution.id).where(text_match(q, Institution.name)))
        )
    columns = connection_columns("all")
    sort = _sorted(columns, "-activity", errors)
    order = order_by(columns, *sort, Connection.id.desc())
    stmt = stmt.join(Connection.project).join(Connection.institution)
    if wants_export() and not errors:
        return export("对接列表", columns, all_rows(_loaded(stmt), order), "connections", query_filters())
    try:
        page = paginate(_loaded(stmt), order)
    except InputError as exc:
        errors.update(exc.fields)
        page = {"rows": [], "page": 1, "pages": 1, "total": 0}
    rows = page["rows"]
    idle_stmt = select(func.count(Connection.id)).where(service.idle_condition(_now(), _days()))
    if scope is not None:
        idle_stmt = idle_stmt.where(in_scope)
    idle_total = db.session.scalar(idle_stmt)
    return render_template(
        "pipeline/list.html",
        drill=drill,
        details=scope is None,
        rows=rows,
        now=_now(),
        days=_days(),
        stage=stage,
        follow_up=follow_up,
        q=q,
        errors=errors,
        idle_total=idle_total,
        page=page,
        columns=columns,
        sort=sort,
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
    shortlist_only = request.args.get("shortlisted") == "1"
    return _connections_page(
        "pipeline/board.html",
        [c for c in rows if c.shortlisted or not shortlist_only],
        [c for c in connection_columns("institution") if c.key != "institution"],
        f"{'候选名单' if shortlist_only else '对接进展'}-{inst.name}",
        {"institution": inst.id},
        inst=inst,
        shortlist_only=shortlist_only,
        view="list" if request.args.get("view") == "list" else "board",
        **_board(rows),
    )


def _board(rows: Sequence[Connection]) -> dict[str, Any]:
    """Return what the board shows of an institution's connections: them all (`rows`), the board's
    stages (`board`) and the connections in each (`columns`: shortlisted first, then the idle ones), how
    many are idle, and the clock and idle threshold it judged by."""
    now, days = _now(), _days()
    columns: dict[S, list[Connection]] = defaultdict(list)
    for c in rows:
        columns[c.stage].append(c)
    for stage in columns:
        columns[stage].sort(key=lambda c: (not c.shortlisted, not is_idle(c, now, days)))
    idle = sum(1 for c in rows if is_idle(c, now, days))
    return {"rows": rows, "board": BOARD, "columns": columns, "idle": idle, "now": now, "days": days}


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
    return _connections_page(
        "pipeline/project.html",
        rows,
        connection_columns("project"),
        f"对接申请-{p.name}",
        {"project": p.id},
        p=p,
    )


def _connections_page(
    template: str,
    connections: Sequence[Connection],
    columns: list[Column],
    name: str,
    scope: dict[str, int],
    /,
    **values: Any,
) -> Any:
    """Answer a list of connections read in memory: sorted by ?sort= (latest activity first by default),
    exported as `name`.xlsx (the audit notes `scope` and the filters), or rendered as `listed` in
    `list_columns` with the clock and the idle threshold (unless `values` bring them)."""
    errors: dict[str, str] = {}
    sort = _sorted(columns, "-activity", errors)
    listed = sorted_rows(connections, columns, *sort)
    if wants_export() and not errors:
        return export(name, columns, listed, "connections", {**scope, **query_filters()})
    values = {"now": _now(), "days": _days(), **values}
    return render_template(template, listed=listed, list_columns=columns, sort=sort, errors=errors, **values)


# --- one connection --------------------------------------------------------------------------------------


def _detail(
    c: Connection,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Any:
    user = current_user()
    private = rules.sees_private(user, c)
    can_move = rules.can_move(user, c)
    return render_template(
        "pipeline/detail.html",
        c=c,
        events=list(reversed(shown_history(c, private))),
        private=private,
        can_move=can_move,
        moves=moves_for(c, rules.actor(user)) if can_move else (),
        next_stages=next_stages(c),
        outcome_kind=outcome_kind_of(c),
        idle=idle(c),
        days=_days(),
        errors=errors or {},
        v=values or {},
        rounds=FundingRound.labels(),
        service_kinds=ServiceKind.labels(),
        contacts=can_see_contacts(user, c.project),
    ), status


#: What each party is called in a history line and a list (one wording everywhere: 项目方, not 项目).
PARTY_LABELS = {Party.PROJECT: "项目方", Party.INSTITUTION: "机构"}
#: The verb of a move, by the stage it reaches (the button and the history line say the same).
MOVE_LABELS = {
    S.REQUESTED: "申请对接",
    S.ACCEPTED: "接受",
    S.REFUSED: "拒绝",
    S.MET: "已会谈",
    S.DUE_DILIGENCE: "进入尽职调查",
    S.SIGNED: "签约",
    S.TERMINATED: "终止对接",
}


@bp.app_template_global("pipeline_party")
def party_label(party: Party | None) -> str:
    """Return how a party is named on the pages ("项目方", "机构", "大赛秘书处", ...)."""
    if party is None:
        return "—"
    return PARTY_LABELS.get(party, party.value)


@bp.app_template_global("pipeline_move_label")
def move_label(stage: S) -> str:
    """Return the verb of a move to this stage (a button's label)."""
    return MOVE_LABELS.get(stage, stage.value)


def shown_history(c: Connection, private: bool) -> list[dict[str, Any]]:
    """Return the history lines this viewer may read, oldest first, worded for people.

    Outside the institution the first line is the request itself ("申请对接"), whatever came before it.
    """
    out = []
    for e in history(c, private):
        if e.action is EventAction.MOVED or (e.action is EventAction.CREATED and e.to_stage is S.REQUESTED):
            label = MOVE_LABELS.get(e.to_stage, e.action.value)
        elif e.action is EventAction.CREATED:
            label = "加入推荐"
        else:
            label = e.action.value
        if e.to_stage is S.ACCEPTED:
            label = "接受对接"
        elif e.to_stage is S.REFUSED and e.action is EventAction.MOVED:
            label = "拒绝对接"
        out.append(
            {
                "at": e.at,
                "label": label,
                "from_stage": e.from_stage if e.from_stage != e.to_stage else None,
                "to_stage": e.to_stage,
                "party": party_label(e.actor_kind),
                "actor": e.actor_name,
                "note": e.note,
                "private": e.private,
            }
        )
    return out


@bp.get("/connections/<int:ident>")
@login_required
def detail(ident: int) -> Any:
    return _detail(rules.get_visible(db.session, ident))


def _connect_values(source: Any) -> Any:
    data = {
        k: source.get(k)
        for k in ("project_id", "institution_id", "action", "note", "need_id")
        if source.get(k) not in (None, "")
    }
    return validate_in(ConnectionIn, data)


@bp.get("/connections/new")
@login_required
def confirm() -> Any:
    """The confirmation step of a request: both sides named, a short message to the other side."""
    try:
        values = _connect_values(request.args)
    except InputError as exc:
        flash("；".join(exc.fields.values()) or exc.message, "error")
        return redirect(_safe_next(url_for("pipeline.index")))
    service.check_connect(current_user(), values)
    project = db.session.get(Project, values.project_id)
    inst = db.session.get(Institution, values.institution_id)
    need = db.session.get(Need, values.need_id) if values.need_id else None
    if project is None or project.archived_at or inst is None or inst.archived_at:
        deny("connect to a missing record", "项目或机构不存在", status=404)
    if need is not None and (need.institution_id != inst.id or need.archived_at is not None):
        need = None
    existing = service.pair(db.session, project.id, inst.id)
    if (
        existing is not None
        and rules.can_view(current_user(), existing)
        and existing.requested_at is not None
    ):
        return redirect(url_for("pipeline.detail", ident=existing.id))
    user = signed_in_user()
    return render_template(
        "pipeline/confirm.html",
        project=project,
        inst=inst,
        need=need,
        action=values.action,
        to_project=user.role is not Role.PROJECT,
        next=_safe_next(url_for("pipeline.index")),
    )


@bp.post("/connections/new")
@login_required
def create() -> Any:
    """Shortlist a ranked project or request an introduction (from an institution's or a project's page)."""
    try:
        values = _connect_values(request.form)
        c, _existed = service.connect_action(db.session, current_user(), values)
    except InputError as exc:
        flash("；".join(exc.fields.values()) or exc.message, "error")
        return redirect(_safe_next(url_for("pipeline.index")))
    flash("已加入候选名单" if values.action == "shortlist" else "已发出对接申请", "success")
    return redirect(_safe_next(url_for("pipeline.detail", ident=c.id)))


OUTCOME_FIELDS = ("amount_wan", "round", "date", "base", "area_m2", "service_kind")


@bp.post("/connections/<int:ident>/move")
@login_required
def move(ident: int) -> Any:
    session = db.session
    form = request.form
    to = form.get("to_stage", "")
    outcome = {k: form.get(k) for k in OUTCOME_FIELDS if (form.get(k) or "").strip()}
    signing = to.strip() in (S.SIGNED.value, S.SIGNED.name)  # a bare signature: name the missing outcome
    data = {"to_stage": to, "note": form.get("note"), "outcome": outcome if (outcome or signing) else None}
    try:
        c = service.move_action(session, current_user(), ident, data)
    except InputError as exc:
        fields = {k.removeprefix("outcome."): v for k, v in exc.fields.items()}
        return _detail(session.get(Connection, ident), fields, dict(form), 422)  # type: ignore[arg-type]
    flash(f"已变更为「{c.stage.value}」", "success")
    return redirect(url_for("pipeline.detail", ident=c.id))


@bp.post("/connections/<int:ident>/shortlist")
@login_required
def shortlist(ident: int) -> Any:
    session = db.session
    data = {"shortlisted": request.form.get("shortlisted", "1") == "1", "note": request.form.get("note")}
    try:
        c = service.shortlist_action(session, current_user(), ident, data)
    except InputError as exc:
        return _detail(session.get(Connection, ident), exc.fields, dict(request.form), 422)  # type: ignore[arg-type]
    flash("候选名单已更新", "success")
    return redirect(_safe_next(url_for("pipeline.detail", ident=c.id)))


@bp.post("/connections/<int:ident>/note")
@login_required
def note(ident: int) -> Any:
    session = db.session
    private = request.form.get("private") == "1"
    try:
        c = service.note_action(session, current_user(), ident, request.form.get("note") or "", private)
    except InputError as exc:
        return _detail(session.get(Connection, ident), exc.fields, dict(request.form), 422)  # type: ignore[arg-type]
    flash("已记录跟进情况", "success")
    return redirect(url_for("pipeline.detail", ident=c.id))


# --- dashboard and report ---------------------------------------------------------------------------------


def _period(errors: dict[str, str], current: bool = False) -> Period:
    from app.services import today

    try:
        return period_from_args(request.args, today(), current=current)
    except InputError as exc:
        errors.update(exc.fields)
        return Period.containing(today()) if current else Period.last_full_quarter(today())


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


#: The connection list behind each headline figure: the label -> its drill-down filter.
KPI_FILTERS: dict[str, dict[str, str]] = {
    "新建对接": {"event": "opened"},
    "签约": {"event": "signed"},
    "融资金额（万元）": {"event": "signed", "side": "fund"},
    "融资项目数": {"event": "signed", "side": "fund"},
    "落地项目数": {"event": "signed", "side": "base"},
    "落地面积（㎡）": {"event": "signed", "side": "base"},
    "服务交付数": {"event": "signed", "side": "platform"},
    "被拒绝": {"event": "refused"},
    "终止": {"event": "terminated"},
}


def _kpi_links(period: Period) -> dict[str, str]:
    """Return {headline label: URL of the connection list it counts}."""
    query = _period_query(period)
    links = {}
    for label, f in KPI_FILTERS.items():
        params: dict[str, Any] = {**f, **query}
        links[label] = url_for("pipeline.index", **params)
    links["待跟进（期末）"] = url_for("pipeline.index", follow_up=1)
    return links


@bp.get("/dashboard")
@roles_required(Role.ADMIN, Role.ORGANISER)
def dashboard() -> Any:
    from app.services import today

    scope = rules.report_scope(current_user())
    errors: dict[str, str] = {}
    period = _period(errors, current=True)
    fig = figures(db.session, period, scope, _days())
    data = fig.as_json()
    charts = _charts(data)
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
        kpi_links=_kpi_links(period),
        this_quarter=Period.containing(today()),
        last_quarter=Period.last_full_quarter(today()),
    ), (422 if errors else 200)


def _charts(data: dict[str, Any]) -> dict[str, Any]:
    """Return the data the charts draw (the dashboard's and the printable report's)."""
    return {
        "funnel": data["funnel"],
        "regions": sorted(data["breakdowns"]["region"], key=lambda r: (-r["signed"], -r["opened"]))[:12],
        "months": data["months"],
    }


def _event_rows(period: Period, scope: set[int] | None) -> list[dict[str, Any]]:
    """The matchmaking events figure: the four quarters ending with the period's last day."""
    from app.events.dashboard import event_quarters, quarters_ending

    return event_quarters(db.session, quarters_ending(Period.containing(period.last_day)), scope)


def _period_query(period: Period) -> dict[str, str]:
    if period.quarter:
        return {"quarter": period.quarter}
    return {"from": period.start.isoformat(), "to": period.last_day.isoformat()}


def _report_figures() -> tuple[set[int] | None, Period, Any]:
    """Return the viewer's report scope, the period asked for (InputError names a bad field) and its
    figures."""
    scope = rules.report_scope(current_user())
    errors: dict[str, str] = {}
    period = _period(errors)
    if errors:
        raise InputError(errors)
    return scope, period, figures(db.session, period, scope, _days())


@bp.get("/reports/quarterly")
@roles_required(Role.ADMIN, Role.ORGANISER)
def report_page() -> Any:
    scope, period, fig = _report_figures()
    audit("export", "report", None, format="html", period=period.label)
    db.session.commit()
    data = fig.as_json()
    return render_template(
        "pipeline/report.html",
        fig=fig,
        rows=[r for r in fig.rows if scope is None or r["requested"]],
        data=data,
        charts=_charts(data),
        top=10,
        filings=_filed_plans(scope),
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
    scope, period, fig = _report_figures()
    plans = _filed_plans(scope)
    body = workbook_bytes(
        quarterly_workbook(fig, _scope_label(scope), shortlists=scope is None, filings=plans)
    )
    audit("export", "report", None, format="xlsx", period=period.label, bytes=len(body))
    db.session.commit()
    name = f"赛事专报-{period.quarter or period.start.isoformat() + '_' + period.last_day.isoformat()}.xlsx"
    return send_xlsx(body, name)


# --- template helpers ---------------------------------------------------------------------------------


def nav_links() -> list[tuple[str, str]]:
    """Return the navigation links of the current account's own work: its institution, project or contests."""
    user = current_user()
    if user is None:
        return []
    links: list[tuple[str, str]] = []
    if user.role is Role.INSTITUTION and user.institution_id:
        links.append(("我的机构", url_for("institutions.detail", ident=user.institution_id)))
        links.append(("对接跟进", url_for("pipeline.board", ident=user.institution_id)))
    elif user.role is Role.PROJECT and user.project_id:
        links.append(("我的项目", url_for("projects.detail", ident=user.project_id)))
        links.append(("我的对接", url_for("pipeline.project_requests", ident=user.project_id)))
    elif user.role in (Role.ADMIN, Role.ORGANISER):
        links.append(("对接跟进", url_for("pipeline.index")))
    if user.role is Role.ORGANISER:
        contests = sorted(user.contests, key=lambda c: c.code)
        if len(contests) == 1:
            links.append(("我的赛事", url_for("projects.list_projects", contest=contests[0].id)))
        elif contests:
            links.append(("我的赛事", url_for("pipeline.dashboard")))
    if user.role in (Role.ADMIN, Role.ORGANISER):
        links.append(("数据看板", url_for("pipeline.dashboard")))
    return links


@bp.app_template_global()
def account_label(user: Any) -> str:
    """Return what the top bar calls an account: its institution or project, else its own name."""
    if user.role is Role.INSTITUTION and user.institution is not None:
        return str(user.institution.name)
    if user.role is Role.PROJECT and user.project is not None:
        return str(user.project.name)
    if user.role is Role.ORGANISER and len(user.contests) == 1:
        return short_contest(user.contests[0].name)
    return str(user.display_name or user.username)


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
