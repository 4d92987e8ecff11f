"""Pages of the notification centre and saved searches, the one-click unsubscribe, the funnel, and the API.

GET  /api/alerts/searches                 the caller's saved searches
POST /api/alerts/searches                 {name, kind: institution|need, target_id, filters?, rank_threshold?,
                                           frequency?}
PATCH/DELETE /api/alerts/searches/<id>    {name?, rank_threshold?, frequency?, active?}
GET  /api/alerts/notifications            the caller's notifications (?unread=1)
POST /api/alerts/notifications/<id>/read  mark one read
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select, update

from app.access import current_user, deny, login_required, own_or_404, public, roles_required, signed_in_user
from app.alerts import mail, service
from app.alerts.service import SearchIn, SearchPatch
from app.api import _body
from app.api.models import NotificationOut, Notifications, SavedSearches, SearchOut, UnreadQuery
from app.api.openapi import Answer, operation
from app.extensions import db
from app.params import int_param
from app.schemas import InputError
from app.security import safe_target
from app.serialize import attrs
from app.web import csrf
from app.web.lists import paginate
from models import Institution, Need
from models.accounts import User
from models.alerts import AlertFrequency, AlertSettings, Notification, SavedSearch
from models.base import utcnow
from models.enums import Role

bp = Blueprint("alerts", __name__, url_prefix="/alerts")
#: The alerts' JSON API, registered by create_app with the other API blueprints.
api_bp = Blueprint("alerts_api", __name__, url_prefix="/api")


def _form_search() -> SearchIn:
    form = request.form
    data: dict[str, Any] = {
        k: form.get(k) for k in ("name", "kind", "target_id", "rank_threshold", "frequency") if k in form
    }
    data["filters"] = {
        k[len("filter_") :]: v for k, v in form.items() if k.startswith("filter_") and v.strip()
    }
    return service.parse(SearchIn, data)


def _create(values: SearchIn) -> SavedSearch:
    user = signed_in_user()
    try:
        search = service.create_search(db.session, user, values)
    except PermissionError:
        deny(f"may not watch {values.kind} {values.target_id}", "只能订阅本机构的推荐列表或本机构发布的需求")
    db.session.commit()
    return search


# --- pages --------------------------------------------------------------------------------------------


@bp.get("/")
@login_required
def centre() -> Any:
    user = signed_in_user()
    unread_only = request.args.get("unread") == "1"
    stmt = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    page = paginate(stmt, (Notification.id.desc(),))
    rows = page["rows"]
    names = service.project_names(db.session, [n.project_id for n in rows])
    return render_template(
        "alerts/centre.html",
        notes=rows,
        names=names,
        unread_only=unread_only,
        page=page["page"],
        pages=page["pages"],
        total=page["total"],
    )


@bp.post("/notifications/<int:ident>/read")
@login_required
def read(ident: int) -> Any:
    note = own_or_404(Notification, ident)
    note.read_at = note.read_at or utcnow()
    db.session.commit()
    return redirect(safe_target(request.form.get("next"), url_for("alerts.centre")))


@bp.post("/read-all")
@login_required
def read_all() -> Any:
    user = signed_in_user()
    db.session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    db.session.commit()
    flash("已全部标为已读", "success")
    return redirect(url_for("alerts.centre"))


@bp.get("/notifications/<int:ident>/open")
@login_required
def open_notification(ident: int) -> Any:
    """Follow a notification (from the centre or an e-mail): mark it read and viewed, show the project."""
    note = own_or_404(Notification, ident)
    now = utcnow()
    note.read_at = note.read_at or now
    note.viewed_at = note.viewed_at or now
    db.session.commit()
    return redirect(url_for("projects.detail", ident=note.project_id))


@bp.get("/searches")
@login_required
def searches() -> Any:
    user = signed_in_user()
    rows = db.session.scalars(
        select(SavedSearch).where(SavedSearch.user_id == user.id).order_by(SavedSearch.id.desc())
    ).all()
    settings = db.session.get(AlertSettings, user.id)
    return render_template(
        "alerts/searches.html",
        searches=rows,
        email_enabled=settings.email_enabled if settings else True,
        describe=service.describe_filters,
        FREQUENCIES=AlertFrequency.labels(),
        max_rank=service.MAX_RANK,
    )


@bp.post("/searches")
@roles_required(Role.ADMIN, Role.INSTITUTION)
def create() -> Any:
    back = safe_target(request.form.get("next"), url_for("alerts.searches"))
    try:
        search = _create(_form_search())
    except InputError as exc:
        for message in exc.fields.values():
            flash(message, "error")
        return redirect(back)
    flash(f"已保存搜索「{search.name}」：有项目新进入前 {search.rank_threshold} 名时会通知您", "success")
    return redirect(back)


@bp.post("/searches/<int:ident>")
@login_required
def edit(ident: int) -> Any:
    search = own_or_404(SavedSearch, ident)
    data = {k: request.form.get(k) for k in ("name", "rank_threshold", "frequency") if k in request.form}
    data["active"] = "1" if request.form.get("active") else "0"
    try:
        service.update_search(db.session, search, service.parse(SearchPatch, data))
    except InputError as exc:
        db.session.rollback()
        for message in exc.fields.values():
            flash(message, "error")
    else:
        db.session.commit()
        flash(f"订阅「{search.name}」已更新", "success")
    return redirect(url_for("alerts.searches"))


@bp.post("/searches/<int:ident>/delete")
@login_required
def delete(ident: int) -> Any:
    search = own_or_404(SavedSearch, ident)
    name = search.name
    db.session.delete(search)
    db.session.commit()
    return _to_searches(f"已删除订阅「{name}」")


@bp.post("/settings")
@login_required
def settings() -> Any:
    user = signed_in_user()
    enabled = request.form.get("email_enabled") == "1"
    service.set_email(db.session, user.id, enabled)
    db.session.commit()
    return _to_searches("已开启提醒邮件" if enabled else "已关闭提醒邮件（站内通知照常）")


def _to_searches(message: str) -> Any:
    """Say what was done and show the saved searches."""
    flash(message, "success")
    return redirect(url_for("alerts.searches"))


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@public
def unsubscribe(token: str) -> Any:
    """One-click unsubscribe: the signed link is the authority (no login). GET asks, POST unsubscribes.

    Mail clients POST `List-Unsubscribe=One-Click` here (RFC 8058); a link scanner's GET changes nothing.
    """
    user_id = mail.read_unsubscribe_token(current_app._get_current_object(), token)  # type: ignore[attr-defined]
    user = db.session.get(User, user_id) if user_id is not None else None
    if user is None:
        return render_template("alerts/unsubscribe.html", invalid=True, done=False, token=token), 400
    if request.method == "POST":
        service.set_email(db.session, user.id, False)
        db.session.commit()
        return render_template("alerts/unsubscribe.html", invalid=False, done=True, token=token)
    settings = db.session.get(AlertSettings, user.id)
    already = settings is not None and not settings.email_enabled
    return render_template("alerts/unsubscribe.html", invalid=False, done=already, token=token)


@bp.get("/funnel")
@roles_required(Role.ADMIN)
def funnel_page() -> Any:
    days = int_param(request.args, "days", 0, 0, 3660, "统计天数")
    counts = service.funnel(db.session, service.since_days(days) if days else None)
    recent = service.recent_notifications(db.session, 30)
    return render_template(
        "alerts/funnel.html",
        counts=counts,
        steps=service.FUNNEL_STEPS,
        days=days,
        recent=recent,
        names=service.project_names(db.session, [n.project_id for n in recent]),
        china_time=mail.china_time,
    )


# --- the JSON API -------------------------------------------------------------------------------------


def search_json(s: SavedSearch) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "kind": "need" if s.need_id is not None else "institution",
        "institution_id": s.institution_id,
        "need_id": s.need_id,
        "filters": s.filters or {},
        "rank_threshold": s.rank_threshold,
        "frequency": s.frequency.value,
        "active": s.active,
        "automatic": s.auto_key is not None,
        "created_at": s.created_at.isoformat(),
    }


def notification_json(n: Notification) -> dict[str, Any]:
    return {
        **attrs(n, "id search_id search_name project_id institution_id need_id rank rank_threshold reasons"),
        "score": round(n.score, 1),
        "created_at": n.created_at.isoformat(),
        "read": n.read_at is not None,
    }


@api_bp.get("/alerts/searches")
@login_required
@operation("我的保存搜索（订阅）", answers={200: SavedSearches})
def api_searches() -> Any:
    user = signed_in_user()
    rows = db.session.scalars(
        select(SavedSearch).where(SavedSearch.user_id == user.id).order_by(SavedSearch.id)
    ).all()
    return jsonify({"items": [search_json(s) for s in rows]})


@api_bp.post("/alerts/searches")
@roles_required(Role.ADMIN, Role.INSTITUTION)
@operation("保存搜索：有项目新进入前 N 名时提醒", body=SearchIn, answers={201: SearchOut}, errors=(403, 404))
def api_create_search() -> Any:
    data = _body()
    service.refuse_json_strings(data, ("target_id", "rank_threshold"))
    search = _create(service.parse(SearchIn, data))
    return jsonify(search_json(search)), 201


@api_bp.patch("/alerts/searches/<int:ident>")
@login_required
@operation("修改保存搜索（名称、提醒名次、邮件频率、启用）", body=SearchPatch, answers={200: SearchOut})
def api_edit_search(ident: int) -> Any:
    search = own_or_404(SavedSearch, ident)
    data = _body()
    service.refuse_json_strings(data, ("rank_threshold", "active"))
    service.update_search(db.session, search, service.parse(SearchPatch, data))
    db.session.commit()
    return jsonify(search_json(search))


@api_bp.delete("/alerts/searches/<int:ident>")
@login_required
@operation("删除保存搜索", answers={204: Answer(None, "已删除")})
def api_delete_search(ident: int) -> Any:
    search = own_or_404(SavedSearch, ident)
    db.session.delete(search)
    db.session.commit()
    return "", 204


@api_bp.get("/alerts/notifications")
@login_required
@operation("我的通知", query=UnreadQuery, answers={200: Notifications})
def api_notifications() -> Any:
    user = signed_in_user()
    stmt = select(Notification).where(Notification.user_id == user.id)
    unread = request.args.get("unread")
    if unread not in (None, "", "0", "1"):
        raise InputError({"unread": "只看未读：应为 0 或 1"})
    if unread == "1":
        stmt = stmt.where(Notification.read_at.is_(None))
    rows = db.session.scalars(stmt.order_by(Notification.id.desc()).limit(200)).all()
    return jsonify(
        {"items": [notification_json(n) for n in rows], "unread": service.unread_count(db.session, user.id)}
    )


@api_bp.post("/alerts/notifications/<int:ident>/read")
@login_required
@operation("把一条通知标为已读", answers={200: NotificationOut})
def api_read(ident: int) -> Any:
    note = own_or_404(Notification, ident)
    note.read_at = note.read_at or utcnow()
    db.session.commit()
    return jsonify(notification_json(note))


# --- wiring -------------------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Exempt the unsubscribe link from CSRF, add the template helpers and record project views."""
    csrf.exempt(unsubscribe)

    @app.template_global()
    def alerts_unread() -> int:
        user = current_user()
        return service.unread_count(db.session, user.id) if user is not None else 0

    @app.template_global()
    def alerts_can_save(target: Institution | Need | None) -> bool:
        if target is None:
            return False
        return service.may_watch(
            current_user(), "need" if isinstance(target, Need) else "institution", target
        )

    @app.template_global()
    def alerts_filter_args(f: Any) -> dict[str, str]:
        return service.filter_args(f) if f is not None else {}

    @app.after_request
    def _record_view(response: Any) -> Any:
        """An alerted user who opens the project's page has viewed it (the funnel's second step)."""
        if request.endpoint == "projects.detail" and response.status_code == 200:
            user = current_user()
            ident = (request.view_args or {}).get("ident")
            if (
                user is not None
                and isinstance(ident, int)
                and service.mark_viewed(db.session, user.id, ident)
            ):
                db.session.commit()
        return response
