"""Writing the feedback log: served lists, opened detail links, pipeline actions on shown pairs.

Every write goes through its own short connection (never the request's session, whose transaction
stays the page's own), one bulk insert per list; any failure is logged and swallowed.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, g, has_request_context, request
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.access import current_user
from app.extensions import db
from models.accounts import User
from models.base import utcnow
from models.enums import ConnectionStage
from models.feedback import ActionKind, FeedbackAction, Impression
from models.pipeline import EventAction

log = logging.getLogger(__name__)

#: User agents of crawlers, link previews and monitors: their page views are nobody's choice.
BOTS = re.compile(r"bot|crawl|spider|slurp|preview|monitor|headless|python-requests|wget", re.I)
#: The detail pages and API reads an item of a list links to: endpoint -> the kind of item it shows.
OPENED_ENDPOINTS = {
    "projects.detail": "project",
    "institutions.detail": "institution",
    "api.get_project": "project",
    "api.get_institution": "institution",
}
#: How far back a pipeline action looks for the list that showed the pair.
LINK_WINDOW = timedelta(days=30)
_LIST_ID = re.compile(r"^[0-9a-f]{8,32}$")


def ranker_version() -> str:
    """Return the version of the ranker in use (a trained one carries its own, else its class name)."""
    service = current_app.extensions.get("matching")
    ranker = getattr(service, "ranker", None)
    if ranker is None:
        return "unknown"
    return str(getattr(ranker, "version_", None) or type(ranker).__name__)[:80]


def loggable_viewer() -> User | None:
    """Return the signed-in viewer whose request may be logged, or None (anonymous, bot, prefetch, off)."""
    if not has_request_context() or not current_app.config.get("FEEDBACK_LOG", True):
        return None
    if request.method != "GET":
        return None
    purpose = request.headers.get("Sec-Purpose", "") + request.headers.get("Purpose", "")
    if "prefetch" in purpose.lower() or BOTS.search(request.user_agent.string or ""):
        return None
    return current_user()


def log_shown(
    query_kind: str,
    query_id: int,
    rows: Sequence[Any],
    *,
    side: str | None = None,
    institution_id: int | None = None,
    surface: str = "page",
    offset: int = 0,
) -> str | None:
    """Record one served ranked list (written after the view, see flush_pending); return its list id.

    Returns None when the list is not logged (anonymous, bot, prefetch, logging off, nothing shown).

    Args:
        query_kind: "project" (its institutions of one side), "institution" or "need" (their projects).
        query_id: the project, institution or need ranked for.
        rows: the shown rows in screen order, each with ``.row.id`` and ``.match.score`` (and ``.rank``
            when the viewer sorted by another column).
        side: the institutions' side of a project's list.
        institution_id: a need's institution.
        surface: "page" or "api".
        offset: rows before these on earlier pages (positions continue across pages).
    """
    try:
        user = loggable_viewer()
        if user is None or not rows:
            return None
        list_id = secrets.token_hex(8)
        now, model = utcnow(), ranker_version()
        records = []
        for pos, r in enumerate(rows, start=offset + 1):
            item = int(r.row.id)
            if query_kind == "project":
                project_id, inst_id = int(query_id), item
            else:
                project_id, inst_id = item, int(institution_id if query_kind == "need" else query_id)  # type: ignore[arg-type]
            records.append(
                {
                    "list_id": list_id,
                    "at": now,
                    "viewer_user_id": user.id,
                    "viewer_institution_id": user.institution_id,
                    "viewer_project_id": user.project_id,
                    "query_kind": query_kind,
                    "query_id": int(query_id),
                    "side": side,
                    "project_id": project_id,
                    "institution_id": inst_id,
                    "position": pos,
                    "rank": int(getattr(r, "rank", pos)),
                    "score": float(r.match.score) if r.match.score is not None else None,
                    "model": model,
                    "surface": surface,
                    "demo": False,
                }
            )
    except Exception:  # the log must never break a page
        log.warning("could not log a ranked list of %s %s", query_kind, query_id, exc_info=True)
        return None
    g.setdefault("feedback_pending", []).extend(records)  # written once per request (flush_pending)
    shown = g.setdefault("feedback_shown", {})
    item_kind = "institution" if query_kind == "project" else "project"
    for rec in records:
        key = (item_kind, rec["institution_id"] if item_kind == "institution" else rec["project_id"])
        shown.setdefault(key, (list_id, rec["position"]))
    return list_id


def flush_pending(response: Any) -> Any:
    """After a view: write every list it logged in one bulk insert and one commit (never raises).

    The request's own session: a GET view has nothing else pending, and on SQLite a second connection
    would wait for this one's lock.
    """
    pending = g.pop("feedback_pending", None)
    if pending:
        try:
            db.session.execute(insert(Impression), pending)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.warning("could not log a ranked list (%d rows)", len(pending), exc_info=True)
    return response


def shown_link(kind: str, ident: int) -> dict[str, Any]:
    """Return the ``from``/``pos`` link parameters of an item logged on this page ({} when not logged)."""
    if not has_request_context():
        return {}
    hit = g.get("feedback_shown", {}).get((kind, ident))
    return {"from": hit[0], "pos": hit[1]} if hit else {}


def record_opened() -> None:
    """Before a detail page or API read: record the opened action of a link followed from a logged list."""
    kind = OPENED_ENDPOINTS.get(request.endpoint or "")
    if kind is None or "from" not in request.args:
        return None
    list_id, pos = request.args.get("from", ""), request.args.get("pos", "")
    if not _LIST_ID.match(list_id) or not pos.isdigit() or not 1 <= int(pos) <= 10_000:
        return None
    try:
        user = loggable_viewer()
        ident = (request.view_args or {}).get("ident")
        if user is None or ident is None:
            return None
        session = db.session
        shown = session.execute(
            select(Impression.id, Impression.project_id, Impression.institution_id, Impression.query_kind)
            .where(
                Impression.list_id == list_id,
                Impression.position == int(pos),
                Impression.viewer_user_id == user.id,
            )
            .limit(1)
        ).first()
        if shown is None:
            return None
        item = shown.institution_id if shown.query_kind == "project" else shown.project_id
        if (kind == "institution") != (shown.query_kind == "project") or item != ident:
            return None
        done = session.scalar(
            select(FeedbackAction.id).where(
                FeedbackAction.impression_id == shown.id, FeedbackAction.action == ActionKind.OPENED
            )
        )
        if done is None:
            session.execute(
                insert(FeedbackAction).values(
                    at=utcnow(),
                    action=ActionKind.OPENED,
                    project_id=shown.project_id,
                    institution_id=shown.institution_id,
                    user_id=user.id,
                    impression_id=shown.id,
                    list_id=list_id,
                    position=int(pos),
                    demo=False,
                )
            )
            session.commit()
    except Exception:
        db.session.rollback()
        log.warning("could not record an opened link of list %s", list_id, exc_info=True)
    return None


def action_of(action: EventAction, to_stage: ConnectionStage | None) -> ActionKind | None:
    """Return the feedback action a pipeline event stands for, or None (notes, unshortlisting, ...)."""
    if action is EventAction.SHORTLISTED:
        return ActionKind.SHORTLISTED
    if action in (EventAction.CREATED, EventAction.MOVED):
        return {
            ConnectionStage.REQUESTED: ActionKind.REQUESTED,
            ConnectionStage.ACCEPTED: ActionKind.ACCEPTED,
            ConnectionStage.SIGNED: ActionKind.SIGNED,
        }.get(to_stage)  # type: ignore[arg-type]
    return None


def link_for(
    session: Session, project_id: int, institution_id: int, at: datetime, user_id: int | None = None
) -> tuple[int | None, str | None, int | None]:
    """Return (impression id, list id, position) of the list a pair's action comes from.

    A pair keeps the list that started its connection (its first linked pipeline action: an accept or a
    signature months later is credited to that list); otherwise the latest list that showed the pair in
    the last :data:`LINK_WINDOW`, the actor's own lists first.
    """
    first = session.execute(
        select(FeedbackAction.impression_id, FeedbackAction.list_id, FeedbackAction.position)
        .where(
            FeedbackAction.project_id == project_id,
            FeedbackAction.institution_id == institution_id,
            FeedbackAction.impression_id.is_not(None),
            FeedbackAction.action != ActionKind.OPENED,
        )
        .order_by(FeedbackAction.at, FeedbackAction.id)
        .limit(1)
    ).first()
    if first is not None:
        return first.impression_id, first.list_id, first.position
    shown = session.execute(
        select(Impression.id, Impression.list_id, Impression.position, Impression.viewer_user_id)
        .where(
            Impression.project_id == project_id,
            Impression.institution_id == institution_id,
            Impression.at <= at,
            Impression.at >= at - LINK_WINDOW,
        )
        .order_by(Impression.at.desc(), Impression.id.desc())
        .limit(50)
    ).all()
    if not shown:
        return None, None, None
    own = [s for s in shown if user_id is not None and s.viewer_user_id == user_id]
    best = (own or shown)[0]
    return best.id, best.list_id, best.position


def record_pipeline_actions(session: Session, connection: Any, events: Sequence[Any]) -> None:
    """Record the feedback actions of committed pipeline events, linked to the list that showed the pair.

    Called once by app.pipeline.service.commit after the change is committed: a failure here loses a
    log line, never the change.
    """
    try:
        if has_request_context() and not current_app.config.get("FEEDBACK_LOG", True):
            return
        rows = []
        for ev in events:
            kind = action_of(ev.action, ev.to_stage)
            if kind is None:
                continue
            imp, list_id, pos = link_for(
                session, connection.project_id, connection.institution_id, ev.at, ev.actor_user_id
            )
            rows.append(
                FeedbackAction(
                    at=ev.at,
                    action=kind,
                    project_id=connection.project_id,
                    institution_id=connection.institution_id,
                    user_id=ev.actor_user_id,
                    impression_id=imp,
                    list_id=list_id,
                    position=pos,
                    demo=False,
                )
            )
        if rows:
            session.add_all(rows)
            session.commit()
    except Exception:
        session.rollback()
        log.warning(
            "could not record the feedback of connection %s", getattr(connection, "id", None), exc_info=True
        )


def log_listing(query_kind: str, query_id: int, listing: dict[str, Any], **kwargs: Any) -> str | None:
    """Record the page of a ranked list a page shows (app.web.lists.ranked_list's values)."""
    page = listing.get("page") or {}
    offset = (int(page.get("page", 1)) - 1) * int(current_app.config["PAGE_SIZE"])
    return log_shown(query_kind, query_id, page.get("rows") or [], offset=offset, **kwargs)
