"""The pipeline's JSON API, on the /api blueprint (so it shares its auth, limits and error format).

GET  /api/connections                  list (filters: institution_id, project_id, stage, follow_up=1)
POST /api/connections                  {project_id, institution_id, action?, note?, need_id?}
                                       (action: shortlist | request, the default)
GET  /api/connections/<id>             one connection with its next stages and history
GET  /api/connections/<id>/history     its history
POST /api/connections/<id>/move        {to_stage, note?, outcome?}
POST /api/connections/<id>/shortlist   {shortlisted, note?}
GET  /api/pipeline/stages              the stages and the legal moves
GET  /api/dashboard                    the figures (?quarter=2026Q3 or ?from=&to=)
GET  /api/reports/quarterly.xlsx       the quarterly report workbook
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app, jsonify, request

from app.access import current_user, deny, login_required, roles_required
from app.api import _body, _page, bp
from app.api.openapi import body_schema, document
from app.extensions import db
from app.params import int_param
from app.pipeline import rules, service
from app.pipeline.figures import figures, period_from_args
from app.pipeline.schemas import ConnectionIn, MoveIn, ShortlistIn, validate_in
from app.pipeline.serialize import connection_json, event_json, history
from app.pipeline.states import MOVES, OPEN_STAGES, parse_stage
from app.schemas import MAX_ID
from models import Connection
from models.enums import ConnectionStage, Role

_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_PERIOD = [
    {
        "name": "quarter",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]{4}Q[1-4]$"},
        "description": "季度，如 2026Q3（默认：最近一个完整季度）",
    },
    {
        "name": "from",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date"},
        "description": "开始日期（与 to 同用，代替 quarter）",
    },
    {
        "name": "to",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date"},
        "description": "结束日期（含）",
    },
]
_LIST = [
    {"name": "institution_id", "in": "query", "required": False, "schema": _ID, "description": "机构"},
    {"name": "project_id", "in": "query", "required": False, "schema": _ID, "description": "项目"},
    {
        "name": "stage",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ConnectionStage.labels()},
        "description": "阶段",
    },
    {
        "name": "follow_up",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["0", "1"]},
        "description": "1 = 只看待跟进",
    },
    {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1},
        "description": "页码",
    },
    {
        "name": "per_page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        "description": "每页条数",
    },
]


def _now() -> datetime:
    return datetime.now(UTC)


def _days() -> int:
    return int(current_app.config["FOLLOW_UP_DAYS"])


def _json(c: Connection, with_history: bool = False) -> dict[str, Any]:
    user = current_user()
    private = rules.sees_private(user, c)
    out = connection_json(c, private, _now(), _days())
    if with_history:
        out["history"] = [event_json(e) for e in history(c, private)]
    return out


@bp.get("/connections")
@login_required
@document("对接列表（机构：本机构；项目：本项目已申请的对接；秘书处：全部）", query=_LIST)
def list_connections() -> Any:
    user = current_user()
    stmt = rules.visible_query(user)
    if stmt is None:
        deny("no connection list for this role")
    args = request.args
    for key, column, label in (
        ("institution_id", Connection.institution_id, "机构"),
        ("project_id", Connection.project_id, "项目"),
    ):
        if args.get(key):
            stmt = stmt.where(column == int_param(args, key, 0, 1, MAX_ID, label))
    if args.get("stage"):
        stmt = stmt.where(Connection.stage == parse_stage(args["stage"], field="stage"))
    if args.get("follow_up") in ("1", "true"):
        stmt = stmt.where(service.idle_condition(_now(), _days()))
    return _page(stmt, (Connection.last_activity_at.desc(), Connection.id.desc()), _json)


@bp.post("/connections")
@login_required
@document(
    "加入候选（shortlist）或申请对接（request）",
    body=body_schema(ConnectionIn),
    ok=("2XX", {"type": "object"}),
)
def create_connection() -> Any:
    values = validate_in(ConnectionIn, _body())
    c, existed = service.connect_action(db.session, current_user(), values)
    return jsonify(_json(c, with_history=True)), (200 if existed else 201)


@bp.get("/connections/<int:ident>")
@login_required
@document("一个对接及其可变更阶段和变更记录")
def get_connection(ident: int) -> Any:
    return jsonify(_json(rules.get_visible(db.session, ident), with_history=True))


@bp.get("/connections/<int:ident>/history")
@login_required
@document("对接的变更记录（只增不改）")
def connection_history(ident: int) -> Any:
    c = rules.get_visible(db.session, ident)
    return jsonify(
        {
            "connection_id": c.id,
            "items": [event_json(e) for e in history(c, rules.sees_private(current_user(), c))],
        }
    )


@bp.post("/connections/<int:ident>/move")
@login_required
@document("变更阶段：终止须填原因 note，签约须填成果 outcome", body=body_schema(MoveIn))
def move_connection(ident: int) -> Any:
    c = service.move_action(db.session, current_user(), ident, _body())
    return jsonify(_json(c, with_history=True))


@bp.post("/connections/<int:ident>/shortlist")
@login_required
@document("候选名单标记与机构备注（仅机构与秘书处）", body=body_schema(ShortlistIn))
def shortlist_connection(ident: int) -> Any:
    c = service.shortlist_action(db.session, current_user(), ident, _body())
    return jsonify(_json(c, with_history=True))


@bp.get("/pipeline/stages")
@login_required
@document("阶段与合法变更表")
def stages() -> Any:
    return jsonify(
        {
            "stages": ConnectionStage.labels(),
            "open": [s.value for s in ConnectionStage if s in OPEN_STAGES],
            "moves": {frm.value: [to.value for to in tos] for frm, tos in MOVES.items()},
            "notes": {
                "尽职调查": "仅投融资机构；投融资机构须经尽职调查后签约",
                "终止": "须填写原因（note）",
                "已签约": "须填写成果（outcome）：融资 {amount_wan, round, date}；"
                "落地 {base, area_m2, date}；服务 {service_kind, date}",
            },
        }
    )


@bp.get("/dashboard")
@roles_required(Role.ADMIN, Role.ORGANISER)
@document("看板数据：漏斗、成果、分维度、月度趋势、成功案例", query=_PERIOD)
def dashboard_figures() -> Any:
    scope = rules.report_scope(current_user())
    from app.services import today

    period = period_from_args(request.args, today())
    return jsonify(figures(db.session, period, scope, _days()).as_json())


@bp.get("/reports/quarterly.xlsx")
@roles_required(Role.ADMIN, Role.ORGANISER)
@document("赛事专报 Excel", query=_PERIOD, ok=(200, None))
def report_xlsx() -> Any:
    from app.pipeline.views import send_report

    return send_report()
