"""The secretariat's aggregate figures of the feedback log (no one else sees any of it)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify
from sqlalchemy import func, select

from app.access import roles_required
from app.api.openapi import document
from app.extensions import db
from models.enums import Role
from models.feedback import ActionKind, FeedbackAction, Impression

bp = Blueprint("feedback", __name__, url_prefix="/api/feedback")

_COUNT = {"type": "integer"}
SUMMARY = {
    "type": "object",
    "required": ["lists", "impressions", "actions", "by_position"],
    "properties": {
        "lists": _COUNT,
        "impressions": _COUNT,
        "demo_impressions": _COUNT,
        "actions": {"type": "object", "additionalProperties": _COUNT},
        "linked_actions": _COUNT,
        "by_position": {"type": "array", "items": {"type": "object"}},
    },
}


@bp.get("/summary")
@roles_required(Role.ADMIN)
@document("反馈日志汇总（秘书处）：展示次数、各类行为数、按位置的行为率", ok=(200, SUMMARY))
def summary() -> Any:
    """Return counts only: lists served, rows shown, actions by kind, action rate by position (1-20)."""
    s = db.session
    lists = s.scalar(select(func.count(func.distinct(Impression.list_id)))) or 0
    shown = s.scalar(select(func.count(Impression.id))) or 0
    demo = s.scalar(select(func.count(Impression.id)).where(Impression.demo.is_(True))) or 0
    actions = dict(
        s.execute(select(FeedbackAction.action, func.count()).group_by(FeedbackAction.action)).all()
    )
    linked = s.scalar(select(func.count(FeedbackAction.id)).where(FeedbackAction.impression_id.is_not(None)))
    per_pos = dict(
        s.execute(
            select(Impression.position, func.count())
            .where(Impression.position <= 20)
            .group_by(Impression.position)
        ).all()
    )
    acted = dict(
        s.execute(
            select(Impression.position, func.count(func.distinct(Impression.id)))
            .join(FeedbackAction, FeedbackAction.impression_id == Impression.id)
            .where(Impression.position <= 20)
            .group_by(Impression.position)
        ).all()
    )
    return jsonify(
        {
            "lists": lists,
            "impressions": shown,
            "demo_impressions": demo,
            "actions": {k.name.lower(): int(actions.get(k, 0)) for k in ActionKind},
            "linked_actions": int(linked or 0),
            "by_position": [
                {
                    "position": p,
                    "shown": int(n),
                    "acted": int(acted.get(p, 0)),
                    "rate": round(acted.get(p, 0) / n, 4),
                }
                for p, n in sorted(per_pos.items())
            ],
        }
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
