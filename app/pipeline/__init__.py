"""The follow-up pipeline: connections from introduction to outcome, the dashboard and the quarterly report.

models/pipeline.py  the tables: Connection and its append-only history
states.py      the pure state machine (stage groups: FUNNEL, OPEN_STAGES, ACCEPTED_STAGES)
service.py     one action per thing a person does (check, change, audit, commit), for pages and API alike
rules.py       who may see and move what        figures.py   the one aggregation
views.py       pages; api.py the JSON API       report.py    the Excel workbook
demo.py        a year of demo history           labels.py    outcomes as ranking labels
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify

from app.pipeline.states import CHINA_TZ, TransitionError, china_date
from models.enums import ConnectionStage

#: HTTP status of a refused change, by its code (the rest are 422: a reason or outcome is missing).
STATUS = {"forbidden_move": 403, "exists": 409, "illegal_transition": 409, "same_stage": 409}


def init_app(app: Flask) -> None:
    """Register the pages, the error format of refused moves, the report command and template helpers.

    The JSON API (app.pipeline.api.bp) is registered by create_app with the other API blueprints.
    """
    from app.pipeline import cli, views

    app.register_blueprint(views.bp)
    cli.init_app(app)

    @app.errorhandler(TransitionError)
    def _transition_error(exc: TransitionError) -> Any:
        from app.errors import error_response, wants_json

        status = STATUS.get(exc.code, 422)
        if wants_json():
            return jsonify({"error": {"status": status, **exc.as_json()}}), status
        return error_response(status, exc.message, exc.fields)

    # Globals rather than a context processor: the imported macros (pipeline/macros.html) see them too.
    helpers: dict[str, Callable[..., Any]] = {
        "pipeline_links": views.nav_links,
        "pipeline_pairs": views.pairs,
        "pipeline_can_connect": views.can_connect,
        "pipeline_idle": views.idle,
        "pipeline_activity": views.activity,
        "pipeline_day": lambda at: china_date(at).isoformat(),
        "pipeline_time": lambda at: at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
        "pipeline_num": _num,
    }
    for name, value in helpers.items():
        app.add_template_global(value, name)
    app.jinja_env.globals["PIPELINE_STAGES"] = ConnectionStage.labels()


def _num(value: Any) -> str:
    """Format a figure: thousands separators, no trailing .0."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"
