"""Secretariat pages: accounts, registrations waiting for approval, the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app.access import current_user, roles_required
from app.auth import accounts
from app.extensions import db
from app.params import int_param
from app.schemas import MAX_ID, InputError
from app.services import text_match
from app.web.lists import paginate
from models import Contest, Institution
from models.accounts import AuditLog, Registration, User
from models.enums import AccountStatus, RegistrationStatus, Role
from models.events import RegistrationChoice

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@roles_required(Role.ADMIN)
def index() -> Any:
    return redirect(url_for("admin.registrations"))


@bp.get("/users")
@roles_required(Role.ADMIN)
def users() -> Any:
    stmt = select(User)
    role = request.args.get("role")
    if role:
        try:
            stmt = stmt.where(User.role == Role.from_label(role))
        except ValueError:
            abort(400, description="角色：不认识的取值")
    q = (request.args.get("q") or "").strip()[:64]
    if q:
        stmt = stmt.where(text_match(q, User.username, User.display_name))
    page = paginate(stmt, (User.role, User.username))
    return render_template("admin/users.html", page=page, role=role, q=q, ROLES=Role.labels())


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_user() -> Any:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"role": Role.ORGANISER.value, "contest_ids": []}
    if request.method == "POST":
        values = {
            k: request.form.get(k, "")
            for k in (
                "username",
                "password",
                "password2",
                "display_name",
                "email",
                "role",
                "institution_id",
                "project_id",
            )
        }
        values["contest_ids"] = request.form.getlist("contest_ids")
        try:
            user = accounts.create_account(db.session, values)
        except InputError as exc:
            errors = exc.fields
        else:
            flash(f"账户「{user.username}」已创建", "success")
            return redirect(url_for("admin.users"))
    contests = db.session.scalars(select(Contest).order_by(Contest.code)).all()
    institutions = db.session.scalars(select(Institution).order_by(Institution.name)).all()
    return render_template(
        "admin/user_form.html",
        v=values,
        errors=errors,
        contests=contests,
        institutions=institutions,
        ROLES=Role.labels(),
    ), (422 if errors else 200)


@bp.post("/users/<int:ident>/status")
@roles_required(Role.ADMIN)
def user_status(ident: int) -> Any:
    user = db.session.get(User, ident) or abort(404)
    if user.id == current_user().id:  # type: ignore[union-attr]
        abort(409, description="不能停用自己的账户")
    try:
        status = AccountStatus.from_label(request.form.get("status", ""))
    except ValueError:
        abort(400, description="状态：不认识的取值")
    accounts.set_status(db.session, user, status)
    flash(f"账户「{user.username}」已{status.value}", "success")
    return redirect(url_for("admin.users"))


@bp.get("/registrations")
@roles_required(Role.ADMIN)
def registrations() -> Any:
    status = request.args.get("status") or RegistrationStatus.PENDING.value
    try:
        st = RegistrationStatus.from_label(status)
    except ValueError:
        abort(400, description="状态：不认识的取值")
    page = paginate(select(Registration).where(Registration.status == st), (Registration.created_at.desc(),))
    return render_template(
        "admin/registrations.html",
        page=page,
        status=st,
        STATUSES=RegistrationStatus.labels(),
        CHOICE_LABELS={c.name: c.value for c in RegistrationChoice},
    )


@bp.post("/registrations/<int:ident>/<any(approve, reject):decision>")
@roles_required(Role.ADMIN)
def decide(ident: int, decision: str) -> Any:
    reg = db.session.get(Registration, ident) or abort(404)
    note = (request.form.get("note") or "").strip()[:500] or None
    try:
        if decision == "approve":
            accounts.approve(db.session, reg, current_user(), note)  # type: ignore[arg-type]
            flash(f"已通过「{reg.user.display_name}」的申请，账户已启用", "success")
        else:
            accounts.reject(db.session, reg, current_user(), note)  # type: ignore[arg-type]
            flash(f"已驳回「{reg.user.display_name}」的申请", "success")
    except InputError as exc:
        flash("；".join(exc.fields.values()) or exc.message, "error")
    return redirect(url_for("admin.registrations"))


def _day(name: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError({name: "日期格式应为 YYYY-MM-DD"}) from None


@bp.get("/audit")
@roles_required(Role.ADMIN)
def audit_log() -> Any:
    args = request.args
    errors: dict[str, str] = {}
    stmt = select(AuditLog)
    try:
        if args.get("action"):
            action = args["action"].strip()[:64]  # "project." means every project action
            stmt = stmt.where(
                AuditLog.action.startswith(action) if action.endswith(".") else AuditLog.action == action
            )
        if args.get("username"):
            stmt = stmt.where(AuditLog.username == args["username"].strip().lower()[:64])
        if args.get("obj_kind"):
            stmt = stmt.where(AuditLog.obj_kind == args["obj_kind"].strip()[:32])
        if args.get("obj_id"):
            stmt = stmt.where(AuditLog.obj_id == int_param(args, "obj_id", 0, 0, MAX_ID, "记录编号"))
        if args.get("ip"):
            stmt = stmt.where(AuditLog.ip == args["ip"].strip()[:64])
        start, end = _day("from"), _day("to")
        if start:
            stmt = stmt.where(AuditLog.at >= datetime.combine(start, time.min, UTC))
        if end:
            stmt = stmt.where(AuditLog.at < datetime.combine(end + timedelta(days=1), time.min, UTC))
    except InputError as exc:
        errors, stmt = exc.fields, select(AuditLog)
    page = paginate(stmt, (AuditLog.id.desc(),))
    actions = db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)).all()
    return render_template("admin/audit.html", page=page, args=args, errors=errors, actions=actions)


@bp.get("/archive")
@roles_required(Role.ADMIN)
def archive() -> Any:
    """List the archived projects, institutions and needs (kept for their history), to restore one."""
    from models import Need, Project

    def archived(model: Any) -> Any:
        stmt = select(model).where(model.archived_at.is_not(None)).order_by(model.archived_at.desc())
        return db.session.scalars(stmt.limit(200)).all()

    return render_template(
        "admin/archive.html",
        projects=archived(Project),
        institutions=archived(Institution),
        needs=archived(Need),
    )
