"""The secretariat's aggregate figures of the feedback log (no one else sees any of it)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from pydantic import BaseModel
from sqlalchemy import func, select

from app.access import roles_required
from app.api.openapi import operation
from app.extensions import db
from models.enums import Role
from models.feedback import ActionKind, FeedbackAction, Impression

#: The feedback figures' JSON API, registered by create_app with the other API blueprints.
bp = Blueprint("feedback", __name__, url_prefix="/api/feedback")


class PositionRate(BaseModel):
    position: int
    shown: int
    acted: int
    rate: float


class FeedbackSummary(BaseModel):
    lists: int
    impressions: int
    demo_impressions: int
    actions: dict[str, int]
    linked_actions: int
    by_position: list[PositionRate]


@bp.get("/summary")
@roles_required(Role.ADMIN)
@operation("反馈日志汇总（秘书处）：展示次数、各类行为数、按位置的行为率", answers={200: FeedbackSummary})
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
